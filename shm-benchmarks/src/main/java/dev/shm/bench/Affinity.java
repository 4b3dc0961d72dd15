package dev.shm.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Pins the calling thread to one CPU with {@code sched_setaffinity(0, ...)} (Linux: pid 0 is the
 * calling thread), so that the two spinning threads of a run sit on different cores while the JVMs'
 * other threads (JIT, GC, Aeron's conductors) float.
 */
final class Affinity {

    private static final int MASK_BYTES = 128; // 1024 CPUs, glibc's cpu_set_t

    private Affinity() {
    }

    /**
     * Pins the calling thread. Threads it starts afterwards inherit the mask: pin after starting them.
     *
     * @param cpu the CPU, 0-based
     * @return {@code true} when the kernel accepted the mask
     */
    static boolean pinCurrentThread(int cpu) {
        if (cpu < 0 || cpu >= MASK_BYTES * 8) {
            return false;
        }
        return setMask(new long[] {cpu});
    }

    /**
     * Lets the calling thread run on the given CPUs again.
     *
     * @param cpus how many CPUs, from 0
     * @return {@code true} when the kernel accepted the mask
     */
    static boolean unpinCurrentThread(int cpus) {
        long[] all = new long[Math.min(cpus, MASK_BYTES * 8)];
        for (int i = 0; i < all.length; i++) {
            all[i] = i;
        }
        return setMask(all);
    }

    @SuppressWarnings("restricted")
    private static boolean setMask(long[] cpus) {
        Linker linker = Linker.nativeLinker();
        MemorySegment function = linker.defaultLookup().find("sched_setaffinity").orElse(MemorySegment.NULL);
        if (function.equals(MemorySegment.NULL)) {
            return false;
        }
        MethodHandle handle = linker.downcallHandle(function,
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment mask = arena.allocate(MASK_BYTES, 8);
            for (long cpu : cpus) {
                long word = (cpu / 64) * 8L;
                mask.set(ValueLayout.JAVA_LONG, word, mask.get(ValueLayout.JAVA_LONG, word) | 1L << (cpu % 64));
            }
            return (int) handle.invokeExact(0, (long) MASK_BYTES, mask) == 0;
        } catch (Throwable t) {
            return false;
        }
    }
}
