package dev.shm.core.internal;

import static dev.shm.core.internal.Native.CAPTURE_ERRNO;
import static dev.shm.core.internal.Native.captureState;
import static dev.shm.core.internal.Native.downcall;
import static dev.shm.core.internal.Native.errno;
import static dev.shm.core.internal.Native.error;
import static dev.shm.core.internal.Native.rethrow;
import static java.lang.foreign.MemoryLayout.PathElement.groupElement;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import dev.shm.core.ErrnoException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Unix domain sockets of type {@code SOCK_SEQPACKET} (connection-oriented, message boundaries
 * kept) that carry file descriptors as {@code SCM_RIGHTS} ancillary data.
 *
 * <p>The JDK's {@code SocketChannel} cannot send descriptors, so these sockets are made with
 * downcalls. Passing a descriptor this way works between processes in different PID namespaces
 * (containers), where {@code /proc/<pid>/fd/<fd>} does not.
 *
 * <p>Internal API: not for use outside shm-core.
 */
public final class UnixSockets {

    private static final int AF_UNIX = 1;
    private static final int SOCK_SEQPACKET = 5;
    private static final int SOCK_CLOEXEC = 02000000;
    private static final int SOCK_NONBLOCK = 04000;
    private static final int SHUT_RDWR = 2;
    private static final int MSG_DONTWAIT = 0x40;
    private static final int SOL_SOCKET = 1;
    /** {@code SO_SNDTIMEO} (Linux, every architecture that runs this code). */
    private static final int SO_SNDTIMEO = 21;
    private static final int SCM_RIGHTS = 1;
    private static final int MSG_CTRUNC = 0x8;
    private static final int MSG_TRUNC = 0x20;
    private static final int MSG_NOSIGNAL = 0x4000;
    private static final int MSG_CMSG_CLOEXEC = 0x40000000;
    private static final short POLLIN = 0x1;

    /** {@code sun_path} is 108 bytes, the last of which holds the terminating NUL. */
    public static final int MAX_PATH_BYTES = 107;

    /** The most descriptors one message may carry; more are closed and the message refused. */
    public static final int MAX_FDS = 4;

    /*
     * struct msghdr (LP64):
     *  0                   8        12       16                  24                  32
     *  +-------------------+--------+--------+-------------------+-------------------+
     *  | msg_name          |namelen |  pad   | msg_iov           | msg_iovlen        |
     *  +-------------------+--------+--------+-------------------+-------------------+
     *  | msg_control       | msg_controllen    | flags  |  pad   |  (56 bytes)
     *  +-------------------+-------------------+--------+--------+
     *  32                  40                  48       52       56
     */
    private static final StructLayout MSGHDR = MemoryLayout.structLayout(
            ADDRESS.withName("msg_name"),
            JAVA_INT.withName("msg_namelen"),
            MemoryLayout.paddingLayout(4),
            ADDRESS.withName("msg_iov"),
            JAVA_LONG.withName("msg_iovlen"),
            ADDRESS.withName("msg_control"),
            JAVA_LONG.withName("msg_controllen"),
            JAVA_INT.withName("msg_flags"),
            MemoryLayout.paddingLayout(4));
    private static final long MSG_IOV = MSGHDR.byteOffset(groupElement("msg_iov"));
    private static final long MSG_IOVLEN = MSGHDR.byteOffset(groupElement("msg_iovlen"));
    private static final long MSG_CONTROL = MSGHDR.byteOffset(groupElement("msg_control"));
    private static final long MSG_CONTROLLEN = MSGHDR.byteOffset(groupElement("msg_controllen"));
    private static final long MSG_FLAGS = MSGHDR.byteOffset(groupElement("msg_flags"));

    /** struct iovec: base pointer, then length. */
    private static final StructLayout IOVEC = MemoryLayout.structLayout(
            ADDRESS.withName("iov_base"), JAVA_LONG.withName("iov_len"));

    /*
     * struct cmsghdr: 0 cmsg_len (size_t) | 8 cmsg_level (int) | 12 cmsg_type (int) | 16 data...
     * CMSG_LEN(n) = 16 + n; CMSG_SPACE(n) = 16 + n rounded up to 8.
     */
    private static final long CMSG_HEADER = 16;
    private static final long CMSG_LEVEL = 8;
    private static final long CMSG_TYPE = 12;

    /** struct sockaddr_un: sa_family_t sun_family; char sun_path[108]. */
    private static final long SOCKADDR_UN_SIZE = 110;

    private static final MethodHandle SOCKET = downcall("socket",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle BIND = downcall("bind",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle LISTEN = downcall("listen",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle ACCEPT4 = downcall("accept4",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle CONNECT = downcall("connect",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle SENDMSG = downcall("sendmsg",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle RECVMSG = downcall("recvmsg",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle SHUTDOWN = downcall("shutdown",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle POLL = downcall("poll",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle SETSOCKOPT = downcall("setsockopt",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT), CAPTURE_ERRNO);

    private UnixSockets() {
    }

    /**
     * A message received from a socket: its bytes and the descriptors it carried, which the
     * receiver now owns and must close.
     *
     * @param data the message bytes; empty when the peer closed the connection
     * @param fds the descriptors received, open and close-on-exec; empty when {@code truncated}
     * @param truncated whether the message was over the limits; its descriptors were closed then
     */
    public record Message(byte[] data, int[] fds, boolean truncated) {
    }

    /**
     * Creates a non-blocking socket bound to a path, not yet listening: connections are refused
     * until {@link #listen(int, int, String)}, so the caller can set the file's mode first.
     *
     * @param path the socket file to create; must not exist
     * @return the bound descriptor
     * @throws ErrnoException {@code socket} or {@code bind(<path>)}
     */
    public static int bind(String path) {
        int fd = socket(SOCK_NONBLOCK);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            MemorySegment address = sockaddr(arena, path);
            if ((int) BIND.invokeExact(state, fd, address, (int) address.byteSize()) < 0) {
                throw error("bind(" + path + ")", state);
            }
            return fd;
        } catch (Throwable t) {
            Libc.closeQuietly(fd);
            throw rethrow(t);
        }
    }

    /**
     * Starts listening on a bound socket.
     *
     * @param fd a descriptor from {@link #bind}
     * @param backlog how many connections may wait for {@link #accept}
     * @param subject the socket's path, for the message
     * @throws ErrnoException {@code listen(<subject>)}
     */
    public static void listen(int fd, int backlog, String subject) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            if ((int) LISTEN.invokeExact(state, fd, backlog) < 0) {
                throw error("listen(" + subject + ")", state);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Accepts a connection if one is waiting; the listener does not block.
     *
     * @param listener a descriptor from {@link #bind}
     * @param subject the socket's path, for the message
     * @return the connected descriptor (blocking, close-on-exec), or -1 when none is waiting
     * @throws ErrnoException {@code accept(<subject>)}
     */
    public static int accept(int listener, String subject) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            int fd;
            do {
                fd = (int) ACCEPT4.invokeExact(state, listener, MemorySegment.NULL, MemorySegment.NULL, SOCK_CLOEXEC);
            } while (fd < 0 && errno(state) == Errno.EINTR);
            if (fd < 0) {
                if (errno(state) == Errno.EAGAIN || errno(state) == Errno.ECONNABORTED) {
                    return -1; // the connection vanished between poll and accept
                }
                throw error("accept(" + subject + ")", state);
            }
            return fd;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Shuts a socket down in both directions, which wakes threads that wait on it in {@code poll}.
     * Errors are ignored: the socket is being closed.
     *
     * @param fd the descriptor
     */
    public static void shutdown(int fd) {
        try {
            int ignored = (int) SHUTDOWN.invokeExact(fd, SHUT_RDWR);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Bounds how long a send on {@code fd} waits for room ({@code SO_SNDTIMEO}): a peer that does
     * not read fills its socket's queue, and {@code sendmsg} then fails with {@code EAGAIN} once the
     * time is up instead of blocking for good. It bounds {@code connect} to a listener whose backlog
     * is full the same way.
     *
     * @param fd the socket
     * @param timeoutMillis at least 1 (0 would mean "for ever")
     * @param subject what the socket is, for the message
     * @throws ErrnoException {@code setsockopt(<subject>, SO_SNDTIMEO)}
     */
    public static void sendTimeout(int fd, long timeoutMillis, String subject) {
        if (timeoutMillis < 1) {
            throw new IllegalArgumentException("a send timeout of " + timeoutMillis + " ms; at least 1 ms");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            MemorySegment timeval = arena.allocate(16, 8); // long tv_sec; long tv_usec
            timeval.set(JAVA_LONG, 0, timeoutMillis / 1000);
            timeval.set(JAVA_LONG, 8, (timeoutMillis % 1000) * 1000);
            if ((int) SETSOCKOPT.invokeExact(state, fd, SOL_SOCKET, SO_SNDTIMEO, timeval, 16) < 0) {
                throw error("setsockopt(" + subject + ", SO_SNDTIMEO)", state);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Connects to a listening socket, waiting at most {@code timeoutMillis} for a place in its
     * backlog; later sends on the socket wait as long at most ({@link #sendTimeout}).
     *
     * @param path the socket file
     * @param timeoutMillis at least 1
     * @return the connected descriptor, close-on-exec
     * @throws ErrnoException {@code connect(<path>)}, e.g. {@code ENOENT}, {@code ECONNREFUSED}, or
     *     {@code EAGAIN} when the backlog stayed full for the timeout
     */
    public static int connect(String path, long timeoutMillis) {
        int fd = socket(0);
        try (Arena arena = Arena.ofConfined()) {
            sendTimeout(fd, timeoutMillis, path);
            MemorySegment state = captureState(arena);
            MemorySegment address = sockaddr(arena, path);
            int rc;
            do {
                rc = (int) CONNECT.invokeExact(state, fd, address, (int) address.byteSize());
            } while (rc < 0 && errno(state) == Errno.EINTR);
            if (rc < 0) {
                throw error("connect(" + path + ")", state);
            }
            return fd;
        } catch (Throwable t) {
            Libc.closeQuietly(fd);
            throw rethrow(t);
        }
    }

    /**
     * Waits until a descriptor has something to read (a connection, a message or end of stream).
     *
     * @param fd the descriptor
     * @param timeoutMillis how long to wait, in milliseconds
     * @param subject what the descriptor is, for the message
     * @return {@code true} when readable, {@code false} when the time ran out
     * @throws ErrnoException {@code poll(<subject>)}
     */
    public static boolean awaitReadable(int fd, int timeoutMillis, String subject) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            MemorySegment pollfd = arena.allocate(8, 4); // int fd; short events; short revents
            pollfd.set(JAVA_INT, 0, fd);
            pollfd.set(JAVA_SHORT, 4, POLLIN);
            long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
            while (true) {
                int remaining = (int) Math.max(0, (deadline - System.nanoTime()) / 1_000_000L);
                int rc = (int) POLL.invokeExact(state, pollfd, 1L, remaining);
                if (rc > 0) {
                    return true;
                }
                if (rc == 0) {
                    return false;
                }
                if (errno(state) != Errno.EINTR) {
                    throw error("poll(" + subject + ")", state);
                }
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Sends one message that carries one descriptor. The receiver gets its own descriptor for the
     * same open file.
     *
     * @param socket a connected descriptor
     * @param fd the descriptor to pass
     * @param data the message bytes; at least one byte (Linux drops descriptors sent with no data)
     * @param subject what the socket is, for the message
     * @throws ErrnoException {@code sendmsg(<subject>)}, e.g. {@code EPIPE} when the peer is gone, or
     *     {@code EAGAIN} when the peer's queue stayed full for the socket's {@link #sendTimeout}
     */
    public static void send(int socket, int fd, byte[] data, String subject) {
        if (data.length == 0) {
            throw new IllegalArgumentException("a message that carries a descriptor needs at least one byte of data");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            MemorySegment bytes = arena.allocate(data.length);
            MemorySegment.copy(data, 0, bytes, JAVA_BYTE, 0, data.length);
            MemorySegment control = arena.allocate(cmsgSpace(Integer.BYTES), 8);
            control.set(JAVA_LONG, 0, CMSG_HEADER + Integer.BYTES);
            control.set(JAVA_INT, CMSG_LEVEL, SOL_SOCKET);
            control.set(JAVA_INT, CMSG_TYPE, SCM_RIGHTS);
            control.set(JAVA_INT, CMSG_HEADER, fd);
            MemorySegment msg = msghdr(arena, bytes, control);
            long sent;
            do {
                sent = (long) SENDMSG.invokeExact(state, socket, msg, MSG_NOSIGNAL);
            } while (sent < 0 && errno(state) == Errno.EINTR);
            if (sent < 0) {
                throw error("sendmsg(" + subject + ")", state);
            }
            if (sent != data.length) { // cannot happen for SOCK_SEQPACKET, which sends whole messages
                throw new IllegalStateException("sendmsg(" + subject + ") sent " + sent + " of " + data.length + " bytes");
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Receives one message and the descriptors it carries, without blocking. A message longer
     * than {@code maxBytes}, or with more than {@link #MAX_FDS} descriptors, comes back
     * {@linkplain Message#truncated() truncated}, with every descriptor it brought closed.
     *
     * @param socket a connected descriptor
     * @param maxBytes the longest message accepted
     * @param subject what the socket is, for the message
     * @return the message (empty data and no descriptors when the peer closed the connection), or
     *     {@code null} when none is waiting
     * @throws ErrnoException {@code recvmsg(<subject>)}
     */
    public static Message receive(int socket, int maxBytes, String subject) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            MemorySegment bytes = arena.allocate(Math.max(1, maxBytes));
            MemorySegment control = arena.allocate(cmsgSpace((long) Integer.BYTES * MAX_FDS), 8);
            MemorySegment msg = msghdr(arena, bytes, control);
            long received;
            do {
                received = (long) RECVMSG.invokeExact(state, socket, msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
            } while (received < 0 && errno(state) == Errno.EINTR);
            if (received < 0) {
                if (errno(state) == Errno.EAGAIN) {
                    return null;
                }
                throw error("recvmsg(" + subject + ")", state);
            }
            int[] fds = descriptors(control, msg.get(JAVA_LONG, MSG_CONTROLLEN));
            int flags = msg.get(JAVA_INT, MSG_FLAGS);
            byte[] data = bytes.asSlice(0, Math.min(received, bytes.byteSize())).toArray(JAVA_BYTE);
            if ((flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
                for (int fd : fds) {
                    Libc.closeQuietly(fd);
                }
                return new Message(data, new int[0], true);
            }
            return new Message(data, fds, false);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** A message header with one data buffer and a control buffer, as sendmsg and recvmsg take. */
    private static MemorySegment msghdr(Arena arena, MemorySegment bytes, MemorySegment control) {
        MemorySegment iov = arena.allocate(IOVEC);
        iov.set(ADDRESS, 0, bytes);
        iov.set(JAVA_LONG, 8, bytes.byteSize());
        MemorySegment msg = arena.allocate(MSGHDR);
        msg.set(ADDRESS, MSG_IOV, iov);
        msg.set(JAVA_LONG, MSG_IOVLEN, 1);
        msg.set(ADDRESS, MSG_CONTROL, control);
        msg.set(JAVA_LONG, MSG_CONTROLLEN, control.byteSize());
        return msg;
    }

    /** Reads the SCM_RIGHTS descriptors out of a control buffer; the lengths come from the kernel. */
    private static int[] descriptors(MemorySegment control, long length) {
        int[] fds = new int[0];
        long offset = 0;
        while (offset + CMSG_HEADER <= length) {
            long cmsgLen = control.get(JAVA_LONG, offset);
            if (cmsgLen < CMSG_HEADER || offset + cmsgLen > length) {
                break;
            }
            if (control.get(JAVA_INT, offset + CMSG_LEVEL) == SOL_SOCKET
                    && control.get(JAVA_INT, offset + CMSG_TYPE) == SCM_RIGHTS) {
                int count = (int) ((cmsgLen - CMSG_HEADER) / Integer.BYTES);
                int[] more = Arrays.copyOf(fds, fds.length + count);
                for (int i = 0; i < count; i++) {
                    more[fds.length + i] = control.get(JAVA_INT, offset + CMSG_HEADER + (long) i * Integer.BYTES);
                }
                fds = more;
            }
            offset += align8(cmsgLen);
        }
        return fds;
    }

    private static int socket(int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            int fd = (int) SOCKET.invokeExact(state, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | flags, 0);
            if (fd < 0) {
                throw error("socket(AF_UNIX, SOCK_SEQPACKET)", state);
            }
            return fd;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static MemorySegment sockaddr(Arena arena, String path) {
        byte[] bytes = path.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > MAX_PATH_BYTES) {
            throw new IllegalArgumentException("a Unix socket path holds at most " + MAX_PATH_BYTES
                    + " bytes; path=" + path + " has " + bytes.length + ": use a shorter directory");
        }
        MemorySegment address = arena.allocate(SOCKADDR_UN_SIZE, 2);
        address.set(JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(bytes, 0, address, JAVA_BYTE, 2, bytes.length);
        return address.asSlice(0, 2 + bytes.length + 1);
    }

    private static long cmsgSpace(long dataLength) {
        return CMSG_HEADER + align8(dataLength);
    }

    private static long align8(long value) {
        return (value + 7) & ~7L;
    }
}
