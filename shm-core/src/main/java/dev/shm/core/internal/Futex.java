package dev.shm.core.internal;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Locale;

/**
 * Linux futexes on a 32-bit word in a shared mapping: {@code FUTEX_WAIT} and {@code FUTEX_WAKE}
 * without the private flag, so a wake in one process reaches a waiter in another that maps the
 * same file. The word's address must be 4-byte aligned.
 *
 * <p>A waiter blocks its carrier thread inside the system call: on a virtual thread the carrier is
 * pinned for the wait. Internal API: not for use outside shm-core.
 */
public final class Futex {

    private static final long SYS_FUTEX = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT)
            .equals("aarch64") ? 98 : 202;
    private static final int FUTEX_WAIT = 0;
    private static final int FUTEX_WAKE = 1;
    /** struct timespec: tv_sec (long), tv_nsec (long). */
    private static final long TIMESPEC_SIZE = 16;

    private static final MethodHandle SYSCALL = Native.downcall("syscall",
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT),
            Linker.Option.firstVariadicArg(1));

    private Futex() {
    }

    /**
     * A waiter's own timeout buffer, so that waiting allocates nothing. One per thread.
     */
    public static final class Waiter {
        private final MemorySegment timespec = Arena.ofAuto().allocate(TIMESPEC_SIZE, 8);

        /**
         * Sleeps while {@code word} (a 4-byte aligned address in a shared mapping) holds
         * {@code expected}, at most {@code timeoutNanos}. Returns early on a wake, a signal, a
         * changed value or the timeout; callers re-check their condition.
         *
         * @param word the futex word
         * @param expected the value seen before deciding to sleep
         * @param timeoutNanos the longest sleep, in nanoseconds (positive)
         */
        public void await(MemorySegment word, int expected, long timeoutNanos) {
            timespec.set(JAVA_LONG, 0, timeoutNanos / 1_000_000_000L);
            timespec.set(JAVA_LONG, 8, timeoutNanos % 1_000_000_000L);
            try {
                long _ = (long) SYSCALL.invokeExact(SYS_FUTEX, word, FUTEX_WAIT, expected, timespec,
                        MemorySegment.NULL, 0);
            } catch (Throwable t) {
                throw Native.rethrow(t);
            }
        }
    }

    /**
     * Wakes every process and thread sleeping on {@code word}.
     *
     * @param word the futex word, in a shared mapping
     * @return how many were woken, or a negative value on error
     */
    public static long wakeAll(MemorySegment word) {
        try {
            return (long) SYSCALL.invokeExact(SYS_FUTEX, word, FUTEX_WAKE, Integer.MAX_VALUE, MemorySegment.NULL,
                    MemorySegment.NULL, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }
}
