package dev.shm.core.ring;

/**
 * How a consumer waits for messages, and a blocked producer for room.
 *
 * <p>{@link #BUSY_SPIN}, {@link #YIELD} and {@link #BACKOFF} work on platform and virtual threads
 * ({@code BACKOFF} parks with {@code LockSupport}, which unmounts a virtual thread).
 * {@link #BLOCKING} sleeps in the {@code futex} system call, which pins a virtual thread's
 * carrier for the sleep: use it from platform threads.
 */
public enum WaitStrategy {
    /** Spin with {@code Thread.onSpinWait()}: the lowest latency, a whole core. */
    BUSY_SPIN,
    /** {@code Thread.yield()} between polls. */
    YIELD,
    /** Spin, then yield, then park with growing pauses up to 1 ms. */
    BACKOFF,
    /**
     * Sleep on a futex in the shared mapping; a producer wakes sleepers in any process, and only
     * when someone sleeps. No CPU while idle.
     */
    BLOCKING
}
