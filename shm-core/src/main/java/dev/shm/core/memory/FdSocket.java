package dev.shm.core.memory;

import dev.shm.core.Platform;
import dev.shm.core.internal.Libc;
import dev.shm.core.internal.UnixSockets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A connected Unix domain socket that carries file descriptors ({@code SCM_RIGHTS}) with small
 * messages, one message per send. This is how a memfd reaches a process that did not inherit it,
 * including one in another PID namespace (another container), where
 * {@code /proc/<pid>/fd/<fd>} cannot be opened. See {@link MemfdBuffer#sendTo} and
 * {@link MemfdBuffer#receive}.
 *
 * <p>Thread-safety: one thread may send while another receives; do not send (or receive) from two
 * threads at once.
 */
public final class FdSocket implements AutoCloseable {

    private final int fd;
    private final String subject;
    private final AtomicBoolean closed = new AtomicBoolean();

    FdSocket(int fd, String subject) {
        this.fd = fd;
        this.subject = subject;
    }

    /**
     * A received message and the descriptors it carried. The receiver owns the descriptors: adopt
     * them (e.g. {@link MemfdBuffer#adopt}) or {@link #closeDescriptors() close} them.
     *
     * @param data the message bytes; empty when the peer closed the connection
     * @param fds the descriptors, open and close-on-exec
     */
    public record Message(byte[] data, int[] fds) {

        /** Closes every descriptor of the message. */
        public void closeDescriptors() {
            for (int fd : fds) {
                Libc.closeQuietly(fd);
            }
        }
    }

    /**
     * Connects to a socket that an {@link FdSocketServer} listens on.
     *
     * @param path the socket file
     * @return the connected socket
     * @throws dev.shm.core.ErrnoException {@code connect(<path>)}: {@code ENOENT} when nobody
     *     created it, {@code ECONNREFUSED} when nobody listens
     */
    public static FdSocket connect(Path path) {
        Platform.ensureSupported();
        return new FdSocket(UnixSockets.connect(path.toString()), path.toString());
    }

    /**
     * Sends a message that carries one descriptor. The receiver gets its own descriptor for the
     * same open file; this process keeps its own.
     *
     * @param descriptor the descriptor to pass
     * @param data the message, at least one byte
     * @throws dev.shm.core.ErrnoException {@code sendmsg(<path>)}, e.g. {@code EPIPE} when the peer is gone
     */
    public void send(int descriptor, byte[] data) {
        ensureOpen();
        UnixSockets.send(fd, descriptor, data, subject);
    }

    /**
     * Waits for a message.
     *
     * @param maxBytes the longest message accepted; a longer one is refused (and its descriptors closed)
     * @param timeout how long to wait
     * @return the message, or {@code null} when none arrived in time
     * @throws dev.shm.core.ErrnoException {@code recvmsg(<path>)}
     */
    public Message receive(int maxBytes, Duration timeout) {
        ensureOpen();
        if (!UnixSockets.awaitReadable(fd, timeoutMillis(timeout), subject)) {
            return null;
        }
        UnixSockets.Message message = UnixSockets.receive(fd, maxBytes, subject);
        return new Message(message.data(), message.fds());
    }

    /** Closes the socket. Idempotent. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            Libc.closeQuietly(fd);
        }
    }

    @Override
    public String toString() {
        return "FdSocket[" + subject + "]";
    }

    private void ensureOpen() {
        if (closed.get()) {
            throw new IllegalStateException(this + " is closed");
        }
    }

    static int timeoutMillis(Duration timeout) {
        return (int) Math.min(Integer.MAX_VALUE, Math.max(0, timeout.toMillis()));
    }
}
