package dev.shm.core.memory;

import dev.shm.core.Platform;
import dev.shm.core.ShmException;
import dev.shm.core.internal.Libc;
import dev.shm.core.internal.UnixSockets;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A connected Unix domain socket that carries file descriptors ({@code SCM_RIGHTS}) with small
 * messages, one message per send. This is how a memfd reaches a process that did not inherit it,
 * including one in another PID namespace (another container), where
 * {@code /proc/<pid>/fd/<fd>} cannot be opened. See {@link MemfdBuffer#sendTo} and
 * {@link MemfdBuffer#receive}.
 *
 * <p>Thread-safety: one thread may send while another receives; do not send (or receive) from two
 * threads at once. {@link #close()} may be called from any thread: it wakes a thread that waits in
 * {@link #receive}, and the descriptor is released only after that thread has returned.
 */
public final class FdSocket implements AutoCloseable {

    private final GuardedFd fd;
    private final String subject;

    FdSocket(int fd, String subject) {
        this.fd = new GuardedFd(fd, "FdSocket[" + subject + "]");
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

        /**
         * Tells whether this is the end of the stream: the peer closed the connection.
         *
         * @return {@code true} for no data and no descriptors
         */
        public boolean isEndOfStream() {
            return data.length == 0 && fds.length == 0;
        }

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
        int socket = fd.acquire();
        try {
            UnixSockets.send(socket, descriptor, data, subject);
        } finally {
            fd.release();
        }
    }

    /**
     * Waits for a message.
     *
     * @param maxBytes the longest message accepted
     * @param timeout how long to wait
     * @return the message, or {@code null} when none arrived in time
     * @throws ShmException when the message has more than {@code maxBytes} bytes or more than
     *     {@value UnixSockets#MAX_FDS} descriptors (which are closed)
     * @throws dev.shm.core.ErrnoException {@code recvmsg(<path>)}
     * @throws IllegalStateException when the socket was closed
     */
    public Message receive(int maxBytes, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        int socket = fd.acquire();
        try {
            while (true) {
                long left = deadline - System.nanoTime();
                if (left <= 0 || !UnixSockets.awaitReadable(socket, millis(left), subject)) {
                    return null;
                }
                if (fd.isClosed()) {
                    throw new IllegalStateException(this + " was closed while receiving");
                }
                UnixSockets.Message message = UnixSockets.receive(socket, maxBytes, subject);
                if (message == null) {
                    continue; // woken without a message
                }
                if (message.truncated()) {
                    throw new ShmException(this + " refused a message over the limits of " + maxBytes + " bytes and "
                            + UnixSockets.MAX_FDS + " descriptors; the descriptors it carried were closed");
                }
                return new Message(message.data(), message.fds());
            }
        } finally {
            fd.release();
        }
    }

    /** Closes the socket, waking a thread that waits in {@link #receive}. Idempotent. */
    @Override
    public void close() {
        fd.close(UnixSockets::shutdown);
    }

    @Override
    public String toString() {
        return "FdSocket[" + subject + "]";
    }

    static int millis(long nanos) {
        return (int) Math.min(Integer.MAX_VALUE, Math.max(1, (nanos + 999_999) / 1_000_000));
    }
}
