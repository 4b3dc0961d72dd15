package dev.shm.core.internal;

import static dev.shm.core.internal.Native.CAPTURE_ERRNO;
import static dev.shm.core.internal.Native.captureState;
import static dev.shm.core.internal.Native.downcall;
import static dev.shm.core.internal.Native.errno;
import static dev.shm.core.internal.Native.error;
import static dev.shm.core.internal.Native.rethrow;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import dev.shm.core.ErrnoException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * The C library functions that the memory layer calls: files, mappings, memfds and seals. Each
 * method retries on {@code EINTR} where the call can be interrupted, and throws
 * {@link ErrnoException} naming the call, its subject and the error otherwise.
 *
 * <p>Constants are those of Linux on x86_64 and aarch64, which agree for every value used here
 * ({@code O_DIRECTORY} and {@code O_NOFOLLOW}, which differ, are not used).
 *
 * <p>Internal API: not for use outside shm-core. Callers check
 * {@link dev.shm.core.Platform#ensureSupported()} before the first call.
 */
@SuppressWarnings("restricted") // reinterpret of the address that mmap returns
public final class Libc {

    /** Open for reading only. */
    public static final int O_RDONLY = 0;
    /** Open for reading and writing. */
    public static final int O_RDWR = 2;
    /** Create the file if it does not exist. */
    public static final int O_CREAT = 0100;
    /** With {@link #O_CREAT}: fail with {@code EEXIST} if the file exists. */
    public static final int O_EXCL = 0200;
    /** Do not block on open (a FIFO without a writer would block forever). */
    public static final int O_NONBLOCK = 04000;
    /** Close on exec: child processes do not inherit the descriptor. */
    public static final int O_CLOEXEC = 02000000;
    /** A terminal opened with it does not become the process's controlling terminal. */
    public static final int O_NOCTTY = 0400;

    /** Pages may be read. */
    public static final int PROT_READ = 1;
    /** Pages may be written. */
    public static final int PROT_WRITE = 2;
    /** Writes go to the file and are seen by every process that maps it. */
    public static final int MAP_SHARED = 1;
    /** Writes are private to this mapping (copy-on-write) and never reach the file. */
    public static final int MAP_PRIVATE = 2;
    /** {@code msync}: write back synchronously. */
    public static final int MS_SYNC = 4;

    /** {@code memfd_create}: close on exec. */
    public static final int MFD_CLOEXEC = 1;
    /** {@code memfd_create}: allow seals to be added. */
    public static final int MFD_ALLOW_SEALING = 2;
    /** {@code fcntl}: add seals. */
    public static final int F_ADD_SEALS = 1033;
    /** {@code fcntl}: read the seals. */
    public static final int F_GET_SEALS = 1034;
    /** Seal: no more seals may be added. */
    public static final int F_SEAL_SEAL = 1;
    /** Seal: the file may not shrink. */
    public static final int F_SEAL_SHRINK = 2;
    /** Seal: the file may not grow. */
    public static final int F_SEAL_GROW = 4;
    /** Seal: the contents may not be written. */
    public static final int F_SEAL_WRITE = 8;

    /** {@code fcntl}: test for a conflicting open-file-description lock. */
    private static final int F_OFD_GETLK = 36;
    /** {@code fcntl}: take or release an open-file-description lock, failing at once on conflict. */
    private static final int F_OFD_SETLK = 37;
    /** {@code fcntl}: take an open-file-description lock, waiting while another holds it. */
    private static final int F_OFD_SETLKW = 38;
    private static final short F_RDLCK = 0;
    private static final short F_WRLCK = 1;
    private static final short F_UNLCK = 2;
    /*
     * struct flock (LP64, same on x86_64 and aarch64):
     *  0 l_type (short) | 2 l_whence (short) | 8 l_start (off_t) | 16 l_len (off_t) | 24 l_pid (int) | 32 bytes
     */
    private static final long FLOCK_SIZE = 32;
    private static final long L_TYPE = 0;
    private static final long L_START = 8;
    private static final long L_LEN = 16;
    private static final long L_PID = 24;
    /** {@code clock_gettime}: the monotonic clock, the same for every process on the host. */
    private static final int CLOCK_MONOTONIC = 1;

    private static final int AT_EMPTY_PATH = 0x1000;
    /** {@code statx}: resolve a relative path against the working directory. */
    private static final int AT_FDCWD = -100;
    private static final int STATX_BASIC_STATS = 0x7ff;
    /** {@code struct statx} has the same layout on every architecture, unlike {@code struct stat}. */
    private static final long STATX_SIZE = 256;
    private static final long STX_UID = 20;
    private static final long STX_GID = 24;
    private static final long STX_MODE = 28;
    private static final long STX_SIZE = 40;
    private static final long STX_INO = 32;
    private static final long STX_DEV_MAJOR = 136;
    private static final long STX_DEV_MINOR = 140;

    private static final MethodHandle OPEN = downcall("open",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = downcall("close",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle STATX = downcall("statx",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS), CAPTURE_ERRNO);
    private static final MethodHandle FTRUNCATE = downcall("ftruncate",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle FCHMOD = downcall("fchmod",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    /** Returns the error number instead of setting {@code errno}. */
    private static final MethodHandle POSIX_FALLOCATE = downcall("posix_fallocate",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle MMAP = downcall("mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle MUNMAP = downcall("munmap",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle MSYNC = downcall("msync",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle MEMFD_CREATE = downcall("memfd_create",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle FCNTL_INT = downcall("fcntl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT),
            CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle FCNTL_FLOCK = downcall("fcntl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS),
            CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOCK_GETTIME = downcall("clock_gettime",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));

    /**
     * Whether {@link System#nanoTime()} reads {@code CLOCK_MONOTONIC} (HotSpot on Linux does): then
     * the monitor's clock reads are an intrinsic, not a native call with a buffer. Decided once,
     * by reading both clocks: a {@code nanoTime} read between two {@code clock_gettime} reads must fall
     * between them.
     */
    private static final boolean NANO_TIME_IS_MONOTONIC = nanoTimeIsMonotonic();
    private static final MethodHandle GETUID = downcall("geteuid", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle GETPAGESIZE = downcall("getpagesize", FunctionDescriptor.of(JAVA_INT));

    /** {@code (void *) -1}. */
    private static final long MAP_FAILED = -1L;

    static {
        // The C types are those of LP64 Linux: int is 32 bits, off_t and size_t 64 bits, mode_t 32 bits.
        assert JAVA_SHORT.byteSize() == 2 && ADDRESS.byteSize() == 8;
    }

    private Libc() {
    }

    /**
     * Opens a file.
     *
     * @param path the path
     * @param flags {@code O_*} flags; {@link #O_CLOEXEC} is always added
     * @param mode permission bits for a file that {@link #O_CREAT} creates (before the umask)
     * @return the new file descriptor
     * @throws ErrnoException {@code open(<path>)}
     */
    public static int open(String path, int flags, int mode) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            MemorySegment cPath = arena.allocateFrom(path);
            int fd;
            do {
                fd = (int) OPEN.invokeExact(state, cPath, flags | O_CLOEXEC, mode);
            } while (fd < 0 && errno(state) == Errno.EINTR);
            if (fd < 0) {
                throw error("open(" + path + ")", state);
            }
            return fd;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Closes a file descriptor. {@code EINTR} is not retried: on Linux the descriptor is released
     * even then, and a retry could close a descriptor that another thread just opened.
     *
     * @param fd the descriptor
     * @throws ErrnoException {@code close(<fd>)}
     */
    public static void close(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            int rc = (int) CLOSE.invokeExact(state, fd);
            if (rc < 0 && errno(state) != Errno.EINTR) {
                throw error("close(" + fd + ")", state);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Closes a file descriptor, ignoring errors: for clean-up paths where an earlier failure is
     * the one to report.
     *
     * @param fd the descriptor, or a negative number to do nothing
     */
    public static void closeQuietly(int fd) {
        if (fd < 0) {
            return;
        }
        try {
            close(fd);
        } catch (ErrnoException ignored) {
            // the descriptor is gone either way
        }
    }

    /**
     * Reads type, permissions, owner and size of an open file ({@code statx} with
     * {@code AT_EMPTY_PATH}).
     *
     * @param fd the descriptor
     * @param subject what the descriptor is, for the message (a path)
     * @return the file's status
     * @throws ErrnoException {@code statx(<subject>)}
     */
    public static FileStatus fstat(int fd, String subject) {
        return statx(fd, "", AT_EMPTY_PATH, "statx(" + subject + ")");
    }

    /**
     * Reads type, permissions, owner, size and identity of the file a path names, following
     * symbolic links.
     *
     * @param path the path
     * @return the file's status
     * @throws ErrnoException {@code statx(<path>)}, e.g. {@code ENOENT}
     */
    public static FileStatus stat(String path) {
        return statx(AT_FDCWD, path, 0, "statx(" + path + ")");
    }

    private static FileStatus statx(int dirfd, String path, int flags, String call) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            MemorySegment buf = arena.allocate(STATX_SIZE, 8);
            int rc = (int) STATX.invokeExact(state, dirfd, arena.allocateFrom(path), flags, STATX_BASIC_STATS, buf);
            if (rc < 0) {
                throw error(call, state);
            }
            return new FileStatus(
                    Short.toUnsignedInt(buf.get(JAVA_SHORT, STX_MODE)),
                    buf.get(JAVA_INT, STX_UID),
                    buf.get(JAVA_INT, STX_GID),
                    buf.get(JAVA_LONG, STX_SIZE),
                    (Integer.toUnsignedLong(buf.get(JAVA_INT, STX_DEV_MAJOR)) << 32)
                            | Integer.toUnsignedLong(buf.get(JAVA_INT, STX_DEV_MINOR)),
                    buf.get(JAVA_LONG, STX_INO));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Sets a file's length, growing (with zeros) or shrinking it. Unlike
     * {@code FileChannel.truncate}, this grows a file too.
     *
     * @param fd the descriptor
     * @param length the new length
     * @param subject what the descriptor is, for the message
     * @throws ErrnoException {@code ftruncate(<subject>, <length>)}
     */
    public static void ftruncate(int fd, long length, String subject) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            int rc;
            do {
                rc = (int) FTRUNCATE.invokeExact(state, fd, length);
            } while (rc < 0 && errno(state) == Errno.EINTR);
            if (rc < 0) {
                throw error("ftruncate(" + subject + ", " + length + ")", state);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Sets a file's permission bits exactly (not masked by the umask, unlike {@code open}).
     *
     * @param fd the descriptor
     * @param mode the permission bits
     * @param subject what the descriptor is, for the message
     * @throws ErrnoException {@code fchmod(<subject>, <mode>)}
     */
    public static void fchmod(int fd, int mode, String subject) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            int rc = (int) FCHMOD.invokeExact(state, fd, mode);
            if (rc < 0) {
                throw error("fchmod(" + subject + ", 0" + Integer.toOctalString(mode) + ")", state);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Reserves the blocks of a file range, so that a file system without room (a small
     * {@code /dev/shm}) fails now with {@code ENOSPC} instead of with {@code SIGBUS} at first touch.
     *
     * @param fd the descriptor
     * @param offset start of the range
     * @param length length of the range
     * @param subject what the descriptor is, for the message
     * @throws ErrnoException {@code posix_fallocate(<subject>, <offset>, <length>)}
     */
    public static void fallocate(int fd, long offset, long length, String subject) {
        try {
            int rc;
            do {
                rc = (int) POSIX_FALLOCATE.invokeExact(fd, offset, length);
            } while (rc == Errno.EINTR);
            if (rc != 0) {
                throw error("posix_fallocate(" + subject + ", " + offset + ", " + length + ")", rc);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Maps a range of a file and ties the mapping to an arena: closing the arena unmaps it, and
     * any later access through the returned segment throws {@link IllegalStateException} instead of
     * touching unmapped memory.
     *
     * @param fd the descriptor
     * @param offset file offset of the range, a multiple of the page size
     * @param length length of the range, positive
     * @param prot {@link #PROT_READ}, optionally with {@link #PROT_WRITE}
     * @param flags {@link #MAP_SHARED} or {@link #MAP_PRIVATE}
     * @param arena the arena that owns the mapping; a shared arena for mappings used by many threads
     * @param subject what is mapped, for the message
     * @return a segment of {@code length} bytes over the mapping, read-only unless {@code prot} has
     *     {@link #PROT_WRITE}
     * @throws ErrnoException {@code mmap(<subject>, ...)}
     */
    public static MemorySegment mmap(int fd, long offset, long length, int prot, int flags, Arena arena,
                                     String subject) {
        MemorySegment address;
        try (Arena local = Arena.ofConfined()) {
            MemorySegment state = captureState(local);
            address = (MemorySegment) MMAP.invokeExact(state, MemorySegment.NULL, length, prot, flags, fd, offset);
            if (address.address() == MAP_FAILED) {
                throw error("mmap(" + subject + ", offset " + offset + ", length " + length + ")", state);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
        long raw = address.address();
        MemorySegment segment;
        try {
            segment = address.reinterpret(length, arena, ignored -> munmap(raw, length));
        } catch (RuntimeException e) {
            munmap(raw, length); // the arena was closed before it could own the mapping
            throw e;
        }
        return (prot & PROT_WRITE) == 0 ? segment.asReadOnly() : segment;
    }

    private static void munmap(long address, long length) {
        try {
            // Can fail only for a bad range, which cannot happen for a range that mmap returned.
            int ignored = (int) MUNMAP.invokeExact(MemorySegment.ofAddress(address), length);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Writes the dirty pages of a shared mapping back to its file.
     *
     * @param segment a segment returned by {@link #mmap} (or a page-aligned part of one)
     * @param subject what is mapped, for the message
     * @throws ErrnoException {@code msync(<subject>)}
     */
    public static void msync(MemorySegment segment, String subject) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            int rc = (int) MSYNC.invokeExact(state, segment, segment.byteSize(), MS_SYNC);
            if (rc < 0) {
                throw error("msync(" + subject + ")", state);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Creates an anonymous memory file.
     *
     * @param name the name shown in {@code /proc/<pid>/fd} as {@code memfd:<name>}
     * @param flags {@link #MFD_ALLOW_SEALING}; {@link #MFD_CLOEXEC} is always added
     * @return the new file descriptor
     * @throws ErrnoException {@code memfd_create(<name>)}
     */
    public static int memfdCreate(String name, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            int fd = (int) MEMFD_CREATE.invokeExact(state, arena.allocateFrom(name), flags | MFD_CLOEXEC);
            if (fd < 0) {
                throw error("memfd_create(" + name + ")", state);
            }
            return fd;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Calls {@code fcntl} with an integer argument, e.g. {@link #F_ADD_SEALS} or {@link #F_GET_SEALS}.
     *
     * @param fd the descriptor
     * @param cmd the command
     * @param arg the argument
     * @param call the call in words, for the message, e.g. {@code "fcntl(memfd:x, F_GET_SEALS)"}
     * @return what the call returned
     * @throws ErrnoException {@code <call>}
     */
    public static int fcntl(int fd, int cmd, int arg, String call) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            int rc;
            do {
                rc = (int) FCNTL_INT.invokeExact(state, fd, cmd, arg);
            } while (rc < 0 && errno(state) == Errno.EINTR);
            if (rc < 0) {
                throw error(call, state);
            }
            return rc;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Returns the effective user id of this process.
     *
     * @return the euid; 0 for root
     */
    public static int geteuid() {
        try {
            return (int) GETUID.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Returns the size of a memory page, which mapping offsets must be multiples of.
     *
     * @return the page size in bytes (4096 on x86_64; 4, 16 or 64 KiB on aarch64)
     */
    public static int pageSize() {
        try {
            return (int) GETPAGESIZE.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Takes an open-file-description lock on a byte range ({@code F_OFD_SETLK} or
     * {@code F_OFD_SETLKW}). Such a lock belongs to the open file description, not to the process:
     * two {@code open}s of one file conflict even inside one process, closing another descriptor of
     * the file does not drop it, and the kernel drops it when the last descriptor of the
     * description closes, in particular when the process dies.
     *
     * @param fd the descriptor
     * @param exclusive a write lock when {@code true}, a read lock otherwise
     * @param start the first byte of the range (may lie past the end of the file)
     * @param length the length of the range, positive
     * @param wait whether to wait while another description holds a conflicting lock
     * @param subject what the descriptor is, for the message
     * @return {@code true} when the lock is held; {@code false} when another holds it and
     *     {@code wait} is {@code false}
     * @throws ErrnoException {@code fcntl(<subject>, F_OFD_SETLK, <start>)}
     */
    public static boolean ofdLock(int fd, boolean exclusive, long start, long length, boolean wait, String subject) {
        return setLock(fd, exclusive ? F_WRLCK : F_RDLCK, start, length, wait, subject);
    }

    /**
     * Releases this description's lock on a byte range.
     *
     * @param fd the descriptor
     * @param start the first byte of the range
     * @param length the length of the range
     * @param subject what the descriptor is, for the message
     * @throws ErrnoException {@code fcntl(<subject>, F_OFD_SETLK, <start>)}
     */
    public static void ofdUnlock(int fd, long start, long length, String subject) {
        setLock(fd, F_UNLCK, start, length, false, subject);
    }

    private static boolean setLock(int fd, short type, long start, long length, boolean wait, String subject) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            MemorySegment flock = flock(arena, type, start, length);
            int cmd = wait ? F_OFD_SETLKW : F_OFD_SETLK;
            int rc;
            do {
                rc = (int) FCNTL_FLOCK.invokeExact(state, fd, cmd, flock);
            } while (rc < 0 && errno(state) == Errno.EINTR);
            if (rc == 0) {
                return true;
            }
            int errno = errno(state);
            if (!wait && (errno == Errno.EAGAIN || errno == Errno.EACCES)) {
                return false;
            }
            throw error("fcntl(" + subject + ", F_OFD_SETLK" + (wait ? "W" : "") + ", " + start + ")", errno);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Tells whether another open file description holds a lock that conflicts with a write lock
     * on the byte range ({@code F_OFD_GETLK}). Works on a read-only descriptor. Locks of the
     * caller's own description do not count.
     *
     * @param fd the descriptor
     * @param start the first byte of the range
     * @param length the length of the range
     * @param subject what the descriptor is, for the message
     * @return {@code true} when some other description holds a lock in the range
     * @throws ErrnoException {@code fcntl(<subject>, F_OFD_GETLK, <start>)}
     */
    public static boolean ofdLocked(int fd, long start, long length, String subject) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = captureState(arena);
            MemorySegment flock = flock(arena, F_WRLCK, start, length);
            int rc = (int) FCNTL_FLOCK.invokeExact(state, fd, F_OFD_GETLK, flock);
            if (rc < 0) {
                throw error("fcntl(" + subject + ", F_OFD_GETLK, " + start + ")", state);
            }
            return flock.get(JAVA_SHORT, L_TYPE) != F_UNLCK;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static MemorySegment flock(Arena arena, short type, long start, long length) {
        MemorySegment flock = arena.allocate(FLOCK_SIZE, 8);
        flock.set(JAVA_SHORT, L_TYPE, type);
        flock.set(JAVA_LONG, L_START, start);  // l_whence 0 = SEEK_SET
        flock.set(JAVA_LONG, L_LEN, length);
        flock.set(JAVA_INT, L_PID, 0);         // must be 0 for OFD locks
        return flock;
    }

    /**
     * Reads the monotonic clock, which every process on the host shares; use it for times that
     * other processes compare, such as heartbeats.
     *
     * @return nanoseconds since an arbitrary point (boot)
     */
    public static long monotonicNanos() {
        return NANO_TIME_IS_MONOTONIC ? System.nanoTime() : clockMonotonic();
    }

    private static boolean nanoTimeIsMonotonic() {
        long before = clockMonotonic();
        long java = System.nanoTime();
        long after = clockMonotonic();
        return java >= before && java <= after;
    }

    private static long clockMonotonic() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment timespec = arena.allocate(16, 8);
            int ignored = (int) CLOCK_GETTIME.invokeExact(CLOCK_MONOTONIC, timespec); // cannot fail for this clock
            return timespec.get(JAVA_LONG, 0) * 1_000_000_000L + timespec.get(JAVA_LONG, 8);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Builds the exception for a failed call from an error number, with the system's description.
     *
     * @param call the call and its subject, e.g. {@code "bind(/tmp/x.sock)"}
     * @param errno the error number
     * @return the exception
     */
    public static ErrnoException errnoException(String call, int errno) {
        return Native.error(call, errno);
    }
}
