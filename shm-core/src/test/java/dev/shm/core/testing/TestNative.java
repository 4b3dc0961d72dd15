package dev.shm.core.testing;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.shm.core.MemfdUnavailableException;
import dev.shm.core.memory.MappingException;
import dev.shm.core.memory.MemfdBuffer;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Native calls that tests need to set up situations the library must survive: a thread blocked in
 * a system call that holds a mapped segment, for one.
 */
@SuppressWarnings("restricted") // tests make their own downcalls to set up situations
public final class TestNative {

    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle PIPE = handle("pipe", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle READ = handle("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle WRITE = handle("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle CLOSE = handle("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle GETTID = handle("gettid", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle GETRLIMIT = handle("getrlimit", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle SETRLIMIT = handle("setrlimit", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    /** {@code RLIMIT_NOFILE} on x86_64 and aarch64. */
    private static final int RLIMIT_NOFILE = 7;
    /** The number of the read system call: 0 on x86_64, 63 on aarch64. */
    private static final String READ_SYSCALL = System.getProperty("os.arch").equals("aarch64") ? "63" : "0";

    private TestNative() {
    }

    private static MethodHandle handle(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), descriptor);
    }

    /**
     * Creates a pipe.
     *
     * @return {read end, write end}
     */
    public static int[] pipe() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(JAVA_INT, 2);
            if ((int) PIPE.invokeExact(fds) != 0) {
                throw new IllegalStateException("pipe failed");
            }
            return new int[] {fds.getAtIndex(JAVA_INT, 0), fds.getAtIndex(JAVA_INT, 1)};
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Reads from a descriptor into a segment, blocking until data arrives; the segment's memory is
     * held by the native call for as long as it blocks.
     *
     * @param fd the descriptor
     * @param into the segment to read into
     * @return the bytes read
     */
    public static long read(int fd, MemorySegment into) {
        try {
            return (long) READ.invokeExact(fd, into, into.byteSize());
        } catch (Throwable t) {
            throw t instanceof RuntimeException e ? e : new IllegalStateException(t);
        }
    }

    /**
     * Writes one byte.
     *
     * @param fd the descriptor
     */
    public static void writeByte(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            long ignored = (long) WRITE.invokeExact(fd, arena.allocate(1), 1L);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Closes a descriptor.
     *
     * @param fd the descriptor
     */
    public static void close(int fd) {
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Returns the calling thread's kernel thread id.
     *
     * @return the tid
     */
    public static int gettid() {
        try {
            return (int) GETTID.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Waits, with a bound, until the thread with kernel id {@code tid} blocks in {@code read}.
     *
     * @param tid the thread
     * @param timeout how long to wait
     */
    public static void awaitBlockedInRead(int tid, Duration timeout) {
        Path syscall = Path.of("/proc/self/task/" + tid + "/syscall");
        long deadline = System.nanoTime() + timeout.toNanos();
        String seen = "";
        while (System.nanoTime() - deadline < 0) {
            try {
                seen = Files.readString(syscall).trim();
            } catch (IOException e) {
                seen = e.toString();
            }
            if (seen.startsWith(READ_SYSCALL + " ")) {
                return;
            }
            Thread.onSpinWait();
        }
        throw new AssertionError("thread " + tid + " did not block in read within " + timeout + "; last seen: " + seen);
    }

    /**
     * Lowers this process's soft limit of open descriptors to the lowest free descriptor number, so
     * that the next open, of any thread, fails with {@code EMFILE} until {@link #restoreDescriptorLimit}.
     *
     * @return the soft limit before, for {@link #restoreDescriptorLimit}
     */
    public static long exhaustDescriptors() {
        int[] fds = pipe(); // the lowest free numbers: every number from the first one up is free after the close
        close(fds[0]);
        close(fds[1]);
        int lowestFree = Math.min(fds[0], fds[1]);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment limit = arena.allocate(JAVA_LONG, 2);
            if ((int) GETRLIMIT.invokeExact(RLIMIT_NOFILE, limit) != 0) {
                throw new IllegalStateException("getrlimit failed");
            }
            long before = limit.getAtIndex(JAVA_LONG, 0);
            limit.setAtIndex(JAVA_LONG, 0, lowestFree);
            if ((int) SETRLIMIT.invokeExact(RLIMIT_NOFILE, limit) != 0) {
                throw new IllegalStateException("setrlimit failed");
            }
            return before;
        } catch (Throwable t) {
            throw t instanceof RuntimeException e ? e : new IllegalStateException(t);
        }
    }

    /**
     * Sets this process's soft limit of open descriptors back.
     *
     * @param soft what {@link #exhaustDescriptors} returned
     */
    public static void restoreDescriptorLimit(long soft) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment limit = arena.allocate(JAVA_LONG, 2);
            if ((int) GETRLIMIT.invokeExact(RLIMIT_NOFILE, limit) != 0) {
                throw new IllegalStateException("getrlimit failed");
            }
            limit.setAtIndex(JAVA_LONG, 0, soft);
            if ((int) SETRLIMIT.invokeExact(RLIMIT_NOFILE, limit) != 0) {
                throw new IllegalStateException("setrlimit failed");
            }
        } catch (Throwable t) {
            throw t instanceof RuntimeException e ? e : new IllegalStateException(t);
        }
    }

    /**
     * Loads the classes of a failed memfd open ({@code MappingException}, the errno classes,
     * {@code MemfdUnavailableException}), by failing one: a test's classes load from directories, a
     * descriptor per class file, so a process out of descriptors could not load them then (an
     * application's classes load from jars that are open already).
     */
    public static void loadMemfdFailureClasses() {
        try {
            MemfdBuffer.open(ProcessHandle.current().pid(), Integer.MAX_VALUE, 1).close();
            throw new IllegalStateException("descriptor " + Integer.MAX_VALUE + " opened");
        } catch (MappingException expected) {
            if (expected.reason() != MappingException.Reason.NOT_FOUND) {
                throw expected;
            }
        }
        new MemfdUnavailableException("loaded", null).fillInStackTrace();
    }
}
