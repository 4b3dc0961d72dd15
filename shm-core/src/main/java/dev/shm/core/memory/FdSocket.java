package dev.shm.core.memory;

import dev.shm.core.ErrnoException;
import dev.shm.core.Platform;
import dev.shm.core.ShmException;
import dev.shm.core.ShmTimeoutException;
import dev.shm.core.internal.Errno;
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
 * <p>Nothing waits for good on a peer that stopped reading: a send waits at most the socket's
 * {@linkplain #sendTimeout() send timeout} ({@value #DEFAULT_SEND_TIMEOUT_SECONDS} s unless set) for
 * room in the peer's queue, and a connect as long for a place in the listener's backlog; either then
 * fails with a {@link ShmTimeoutException}.
 *
 * <p>Thread-safety: one thread may send while another receives; do not send (or receive) from two
 * threads at once. {@link #close()} may be called from any thread: it wakes a thread that waits in
 * {@link #receive}, and the descriptor is released only after that thread has returned.
 */
public final class FdSocket implements AutoCloseable {

    /** The send timeout of a socket that was not given one, in seconds. */
    public static final int DEFAULT_SEND_TIMEOUT_SECONDS = 10;
    /** The send timeout of a socket that was not given one. */
    public static final Duration DEFAULT_SEND_TIMEOUT = Duration.ofSeconds(DEFAULT_SEND_TIMEOUT_SECONDS);

    private final GuardedFd fd;
    private final String subject;
    private volatile Duration sendTimeout;

    /** Takes {@code fd}, whose send timeout is already {@code sendTimeout}; closes it if this fails. */
    FdSocket(int fd, String subject, Duration sendTimeout) {
        this.fd = new GuardedFd(fd, "FdSocket[" + subject + "]");
        this.subject = subject;
        this.sendTimeout = sendTimeout;
    }

    /**
     * Wraps a socket that {@link FdSocketServer} accepted, with the default send timeout.
     *
     * @param fd the connected descriptor, closed if this fails
     * @param subject the socket's path
     */
    static FdSocket accepted(int fd, String subject) {
        try {
            UnixSockets.sendTimeout(fd, DEFAULT_SEND_TIMEOUT.toMillis(), subject);
        } catch (RuntimeException e) {
            Libc.closeQuietly(fd);
            throw e;
        }
        return new FdSocket(fd, subject, DEFAULT_SEND_TIMEOUT);
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
     * Connects to a socket that an {@link FdSocketServer} listens on, with the
     * {@linkplain #DEFAULT_SEND_TIMEOUT default send timeout}.
     *
     * @param path the socket file
     * @return the connected socket
     * @throws dev.shm.core.ErrnoException {@code connect(<path>)}: {@code ENOENT} when nobody
     *     created it, {@code ECONNREFUSED} when nobody listens
     * @throws ShmTimeoutException when the listener's backlog stayed full (nobody accepts)
     */
    public static FdSocket connect(Path path) {
        return connect(path, DEFAULT_SEND_TIMEOUT);
    }

    /**
     * Connects to a socket that an {@link FdSocketServer} listens on, waiting at most {@code timeout}
     * for a place in its backlog; the socket's sends then wait as long at most ({@link #sendTimeout}).
     *
     * @param path the socket file
     * @param timeout at least 1 ms
     * @return the connected socket
     * @throws dev.shm.core.ErrnoException {@code connect(<path>)}: {@code ENOENT} when nobody
     *     created it, {@code ECONNREFUSED} when nobody listens
     * @throws ShmTimeoutException when the listener's backlog stayed full (nobody accepts) for {@code timeout}
     */
    public static FdSocket connect(Path path, Duration timeout) {
        Platform.ensureSupported();
        long millis = checkedMillis(timeout);
        try {
            return new FdSocket(UnixSockets.connect(path.toString(), millis), path.toString(), timeout);
        } catch (ErrnoException e) {
            if (e.errno() == Errno.EAGAIN) {
                throw new ShmTimeoutException("a place in the backlog of " + path
                        + " (the process listening there does not accept connections)", timeout);
            }
            throw e;
        }
    }

    /**
     * Returns how long a send waits at most for room in the peer's queue.
     *
     * @return the send timeout
     */
    public Duration sendTimeout() {
        return sendTimeout;
    }

    /**
     * Sets how long a send waits at most for room in the peer's queue (one that does not read fills it).
     *
     * @param timeout at least 1 ms
     * @throws IllegalStateException when the socket was closed
     */
    public void sendTimeout(Duration timeout) {
        long millis = checkedMillis(timeout);
        int socket = fd.acquire();
        try {
            UnixSockets.sendTimeout(socket, millis, subject);
            sendTimeout = timeout;
        } finally {
            fd.release();
        }
    }

    private static long checkedMillis(Duration timeout) {
        if (timeout.isNegative() || timeout.toMillis() < 1) {
            throw new IllegalArgumentException("timeout=" + timeout + " must be at least 1 ms");
        }
        return timeout.toMillis();
    }

    /**
     * Sends a message that carries one descriptor. The receiver gets its own descriptor for the
     * same open file; this process keeps its own.
     *
     * @param descriptor the descriptor to pass
     * @param data the message, at least one byte
     * @throws dev.shm.core.ErrnoException {@code sendmsg(<path>)}, e.g. {@code EPIPE} when the peer is gone
     * @throws ShmTimeoutException when the peer's queue stayed full (it does not read) for the
     *     {@linkplain #sendTimeout() send timeout}; nothing was sent
     */
    public void send(int descriptor, byte[] data) {
        int socket = fd.acquire();
        try {
            UnixSockets.send(socket, descriptor, data, subject);
        } catch (ErrnoException e) {
            if (e.errno() == Errno.EAGAIN) {
                throw new ShmTimeoutException("room on " + this + " (the process at the other end does not read it)",
                        sendTimeout);
            }
            throw e;
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
