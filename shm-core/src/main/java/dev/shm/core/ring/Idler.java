package dev.shm.core.ring;

import java.util.concurrent.locks.LockSupport;

/** One thread's waiting between polls, per {@link WaitStrategy}; the futex part is the caller's. */
final class Idler {

    private static final int SPINS = 200;
    private static final int YIELDS = 100;
    private static final long MAX_PARK_NANOS = 1_000_000;

    private final WaitStrategy strategy;
    private int iteration;

    Idler(WaitStrategy strategy) {
        this.strategy = strategy;
    }

    void reset() {
        iteration = 0;
    }

    /** Whether a {@link WaitStrategy#BLOCKING} waiter has spun long enough to sleep on the futex. */
    boolean shouldSleep() {
        return strategy == WaitStrategy.BLOCKING && iteration >= SPINS + YIELDS;
    }

    void idle() {
        switch (strategy) {
            case BUSY_SPIN -> Thread.onSpinWait();
            case YIELD -> Thread.yield();
            case BACKOFF, BLOCKING -> {
                if (iteration < SPINS) {
                    Thread.onSpinWait();
                } else if (iteration < SPINS + YIELDS) {
                    Thread.yield();
                } else {
                    int step = Math.min(iteration - SPINS - YIELDS, 10);
                    LockSupport.parkNanos(Math.min(MAX_PARK_NANOS, 1_000L << step));
                }
            }
        }
        if (iteration < Integer.MAX_VALUE) {
            iteration++;
        }
    }
}
