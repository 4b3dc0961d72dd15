package dev.shm.core.memory;

import dev.shm.core.Platform;
import dev.shm.core.internal.Errno;
import dev.shm.core.internal.Libc;
import dev.shm.core.internal.UnixSockets;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A Unix domain socket that listens for {@link FdSocket} connections. The socket file is
 * owner-only ({@code rw-------}) from the moment it appears under its name, and removed on
 * {@link #close()}.
 *
 * {@snippet :
 * try (FdSocketServer server = FdSocketServer.bind(Path.of("/dev/shm/frames.sock"));
 *      MemfdBuffer frames = MemfdBuffer.create("frames", 1 << 20)) {
 *     try (FdSocket client = server.accept(Duration.ofSeconds(5))) {
 *         frames.sendTo(client);
 *     }
 * }
 * }
 *
 * <p>Thread-safety: {@link #accept} from one thread at a time; {@link #close()} from any thread.
 */
public final class FdSocketServer implements AutoCloseable {

    private final GuardedFd fd;
    private final Path path;

    private FdSocketServer(int fd, Path path) {
        this.fd = new GuardedFd(fd, "FdSocketServer[" + path + "]");
        this.path = path;
    }

    /**
     * Creates the socket file and listens on it. The socket is bound under a temporary name in the
     * same directory, made owner-only, set listening, and only then linked to {@code path}, so
     * nobody else can connect in between.
     *
     * @param path the socket file to create; must not exist, at most 107 bytes long
     * @return the listening server
     * @throws dev.shm.core.ErrnoException {@code bind(<path>)}: {@code EADDRINUSE} when the file exists
     */
    public static FdSocketServer bind(Path path) {
        Platform.ensureSupported();
        String name = path.toString();
        if (name.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > UnixSockets.MAX_PATH_BYTES) {
            throw new IllegalArgumentException("a Unix socket path holds at most " + UnixSockets.MAX_PATH_BYTES
                    + " bytes; path=" + path + " is longer: use a shorter directory");
        }
        Path temporary = path.resolveSibling(".s" + Integer.toHexString(ThreadLocalRandom.current().nextInt()));
        int fd = UnixSockets.bind(temporary.toString()); // fails, touching nothing, if the name is taken
        try {
            Files.setPosixFilePermissions(temporary, PosixFilePermissions.fromString("rw-------"));
            UnixSockets.listen(fd, 16, name);
            try {
                Files.createLink(path, temporary);
            } catch (FileAlreadyExistsException e) {
                throw Libc.errnoException("bind(" + path + ")", Errno.EADDRINUSE);
            }
            return new FdSocketServer(fd, path);
        } catch (IOException e) {
            Libc.closeQuietly(fd);
            throw new UncheckedIOException("cannot publish the socket " + path, e);
        } catch (RuntimeException | Error e) {
            Libc.closeQuietly(fd);
            throw e;
        } finally {
            deleteQuietly(temporary);
        }
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
     * @return the connected socket (with the {@linkplain FdSocket#DEFAULT_SEND_TIMEOUT default send
     *     timeout}), or {@code null} when nobody connected in time
     * @throws IllegalStateException when the server was closed
     */
    public FdSocket accept(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        int listener = fd.acquire();
        try {
            while (true) {
                long left = deadline - System.nanoTime();
                if (left <= 0 || !UnixSockets.awaitReadable(listener, FdSocket.millis(left), path.toString())) {
                    return null;
                }
                if (fd.isClosed()) {
                    throw new IllegalStateException(this + " was closed while accepting");
                }
                int connection = UnixSockets.accept(listener, path.toString());
                if (connection >= 0) {
                    return FdSocket.accepted(connection, path.toString());
                }
            }
        } finally {
            fd.release();
        }
    }

    /** Stops listening, waking a thread in {@link #accept}, and removes the socket file. Idempotent. */
    @Override
    public void close() {
        if (!fd.isClosed()) {
            fd.close(UnixSockets::shutdown);
            deleteQuietly(path);
        }
    }

    @Override
    public String toString() {
        return "FdSocketServer[" + path + "]";
    }

    private static void deleteQuietly(Path path) {
        try {
            Files.deleteIfExists(path);
        } catch (IOException ignored) {
            // nothing listens on it any more; a stale file only blocks a later bind
        }
    }
}
