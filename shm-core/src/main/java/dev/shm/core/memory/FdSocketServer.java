package dev.shm.core.memory;

import dev.shm.core.Platform;
import dev.shm.core.internal.Libc;
import dev.shm.core.internal.UnixSockets;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A Unix domain socket that listens for {@link FdSocket} connections. The socket file is made
 * owner-only ({@code rw-------}) and removed on {@link #close()}.
 *
 * {@snippet :
 * try (FdSocketServer server = FdSocketServer.bind(Path.of("/dev/shm/frames.sock"));
 *      MemfdBuffer frames = MemfdBuffer.create("frames", 1 << 20)) {
 *     try (FdSocket client = server.accept(Duration.ofSeconds(5))) {
 *         frames.sendTo(client);
 *     }
 * }
 * }
 */
public final class FdSocketServer implements AutoCloseable {

    private final int fd;
    private final Path path;
    private final AtomicBoolean closed = new AtomicBoolean();

    private FdSocketServer(int fd, Path path) {
        this.fd = fd;
        this.path = path;
    }

    /**
     * Creates the socket file and listens on it.
     *
     * @param path the socket file to create; must not exist, at most 107 bytes long
     * @return the listening server
     * @throws dev.shm.core.ErrnoException {@code bind(<path>)}: {@code EADDRINUSE} when the file exists
     */
    public static FdSocketServer bind(Path path) {
        Platform.ensureSupported();
        int fd = UnixSockets.listen(path.toString(), 16);
        try {
            Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-------"));
        } catch (IOException e) {
            Libc.closeQuietly(fd);
            throw new UncheckedIOException("cannot make " + path + " owner-only", e);
        }
        return new FdSocketServer(fd, path);
    }

    /**
     * Returns the socket file.
     *
     * @return the path
     */
    public Path path() {
        return path;
    }

    /**
     * Waits for a connection.
     *
     * @param timeout how long to wait
     * @return the connected socket, or {@code null} when nobody connected in time
     */
    public FdSocket accept(Duration timeout) {
        if (closed.get()) {
            throw new IllegalStateException("FdSocketServer[" + path + "] is closed");
        }
        if (!UnixSockets.awaitReadable(fd, FdSocket.timeoutMillis(timeout), path.toString())) {
            return null;
        }
        return new FdSocket(UnixSockets.accept(fd, path.toString()), path.toString());
    }

    /** Stops listening and removes the socket file. Idempotent. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            Libc.closeQuietly(fd);
            try {
                Files.deleteIfExists(path);
            } catch (IOException ignored) {
                // nothing listens on it any more; a stale file only blocks a later bind
            }
        }
    }
}
