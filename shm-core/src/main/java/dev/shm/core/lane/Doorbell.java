package dev.shm.core.lane;

import dev.shm.core.internal.Futex;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.function.BooleanSupplier;

/**
 * A futex doorbell in shared memory for one sleeper: the reader of a lane, or the provider of a
 * service, which polls every lane of the service on one thread. Two 4-byte words: a sequence that
 * {@link #ring} bumps, and a flag that says the sleeper sleeps. Whoever has something for the
 * sleeper rings after it published it; the ring costs one read of the flag unless the sleeper
 * sleeps, and then a {@code futex} wake.
 *
 * <p>The sleeper sets the flag (a full fence), checks its condition again and sleeps only while the
 * sequence is still the one it read before; the ringer reads the flag after its publication (a
 * compare-and-set, or a volatile store). Either the sleeper sees the publication, or the ringer sees
 * the flag and bumps the sequence, which ends or prevents the sleep. A sleeper that died leaves the
 * flag set: ringers then wake nobody at the cost of a system call, until the next sleeper of that
 * doorbell (a new reader of the lane, a new provider of the service) clears it, as the lane's
 * format and {@code Directory.provide} do. A sleep is bounded by its timeout in any case.
 */
public final class Doorbell {

    /** The bytes a doorbell takes: the sequence, then the flag; 4-byte aligned. */
    public static final int LENGTH = 8;

    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();
    private static final long SEQUENCE = 0;
    private static final long SLEEPING = 4;

    private final MemorySegment word;
    private final MemorySegment sequence;
    private Futex.Waiter waiter;

    /**
     * Wraps a doorbell.
     *
     * @param word its {@value #LENGTH} bytes, 4-byte aligned, in a shared mapping
     */
    public Doorbell(MemorySegment word) {
        if (word.byteSize() < LENGTH || word.address() % 4 != 0) {
            throw new IllegalArgumentException("a doorbell takes " + LENGTH + " bytes, 4-byte aligned");
        }
        this.word = word;
        this.sequence = word.asSlice(SEQUENCE, 4);
    }

    /**
     * Clears the doorbell: for its new sleeper, before it first sleeps (a dead one's flag goes).
     *
     * @param word the doorbell's bytes
     */
    public static void clear(MemorySegment word) {
        INT.setVolatile(word, SLEEPING, 0);
    }

    /**
     * Wakes the sleeper if it sleeps: call after publishing what it waits for. The first ringer
     * takes the flag back (compare-and-set), so that the ringers after it, until the sleeper sleeps
     * again, pay nothing (and a dead sleeper's flag costs one wake).
     */
    public void ring() {
        int sleeping = (int) INT.getVolatile(word, SLEEPING);
        if (sleeping != 0 && INT.compareAndSet(word, SLEEPING, sleeping, 0)) {
            wake();
        }
    }

    /** Wakes the sleeper whether or not it said it sleeps: for a reset, which it must see soon. */
    public void wake() {
        INT.getAndAdd(word, SEQUENCE, 1);
        Futex.wakeAll(sequence);
    }

    /**
     * Sleeps until rung, at most {@code timeoutNanos}, unless {@code ready} already holds once the
     * flag is set. Returns early on a ring, a signal or the timeout: callers check their condition
     * again. One thread per doorbell sleeps.
     *
     * @param token what the sleeper stores in the flag: not 0, and its own (a lane's epoch, a
     *     provider's peer), so that a stale sleeper's end of sleep does not clear a later one's flag
     * @param ready whether what the sleeper waits for is there (or the wait is pointless)
     * @param timeoutNanos the longest sleep
     */
    public void await(int token, BooleanSupplier ready, long timeoutNanos) {
        if (timeoutNanos <= 0 || token == 0) {
            return;
        }
        int seen = (int) INT.getVolatile(word, SEQUENCE);
        INT.setVolatile(word, SLEEPING, token);
        try {
            if (!ready.getAsBoolean()) {
                if (waiter == null) {
                    waiter = new Futex.Waiter();
                }
                waiter.await(sequence, seen, timeoutNanos);
            }
        } finally {
            INT.compareAndSet(word, SLEEPING, token, 0);
        }
    }
}
