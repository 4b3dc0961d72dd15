package dev.shm.bench;

/**
 * One side of a link between two JVMs, for one transport: it sends fixed-size messages whose first
 * eight bytes carry a stamp (a sequence number), receives them, or echoes them back unchanged.
 *
 * <p>Each JVM of a run uses one implementation only, so the calls stay monomorphic for the JIT.
 * Every received stamp is checked against the next expected one: a lost, duplicated or reordered
 * message counts as an error, which the harness reports and the smoke test fails on.
 */
public abstract class Endpoint implements AutoCloseable {

    /**
     * Set when the other side died or the time bound passed: every wait loop of the parent checks it
     * (a volatile read, next to nothing beside a spin) and gives up with {@link #checkAborted}.
     */
    private static volatile String aborted;

    private long expected;
    private long errors;
    private long lastStamp = -1;

    /**
     * The slot of a ring that holds a {@code header}-byte header and the payload inline: their sum
     * rounded up to 32 bytes, the alignment of Aeron's frames, so that a message takes as many bytes
     * in our ring as in Aeron's term (a 64 B message: 96 bytes in both; rounded to cache lines, it
     * took 128, a line more every second message: docs/performance.md).
     *
     * @param header the slot's header bytes
     * @param payload the payload's bytes
     * @return the slot's size
     */
    static int inlineSlotSize(int header, int payload) {
        return (header + payload + 31) / 32 * 32;
    }

    /**
     * Sends one message of the run's payload size with {@code stamp} in its first eight bytes,
     * retrying for as long as the transport pushes back.
     *
     * @param stamp the message's sequence number
     */
    public abstract void send(long stamp);

    /**
     * Receives the messages available now, at most {@code limit}, checking their stamps.
     *
     * @param limit the most messages to take
     * @return how many were taken
     */
    public abstract int poll(int limit);

    /**
     * Receives the messages available now, at most {@code limit}, and sends each back unchanged.
     *
     * @param limit the most messages to take
     * @return how many were echoed
     */
    public abstract int echo(int limit);

    /**
     * Does the transport's housekeeping while this side waits (Aeron's INVOKER mode runs the media
     * driver's duty cycle here). Most transports do nothing.
     */
    public void service() {
    }

    /**
     * Waits until the other side is attached, if the transport can tell; called after the child
     * JVM said it is ready.
     */
    public void awaitConnected() {
    }

    /**
     * What a busy-spinning side does after a poll that found nothing: one {@link Thread#onSpinWait()}
     * ({@code PAUSE} on x86), as Agrona's {@code BusySpinIdleStrategy} and our
     * {@code WaitStrategy.BUSY_SPIN} do, for every transport alike. A loop that reads the line the
     * other side is about to write with no pause delays that write: on an AMD EPYC VM the floor's
     * round trip went from about 570 to about 400 ns with it (docs/performance.md).
     */
    static void idle() {
        Thread.onSpinWait();
    }

    /**
     * Makes every wait loop of this JVM give up.
     *
     * @param reason why, for the exception
     */
    public static void abort(String reason) {
        aborted = reason;
    }

    /** Clears an abort, before the next measurement. */
    public static void clearAbort() {
        aborted = null;
    }

    /**
     * Throws when the measurement was aborted; called in every wait loop.
     *
     * @throws IllegalStateException naming the reason
     */
    public static void checkAborted() {
        String reason = aborted;
        if (reason != null) {
            throw new IllegalStateException("aborted: " + reason);
        }
    }

    /**
     * Records a received stamp.
     *
     * @param stamp the stamp read from the message
     */
    protected final void received(long stamp) {
        if (stamp != expected) {
            errors++;
        }
        expected = stamp + 1;
        lastStamp = stamp;
    }

    /**
     * Returns the messages that arrived out of sequence so far.
     *
     * @return the error count
     */
    public final long errors() {
        return errors;
    }

    /**
     * Returns the stamp of the last message received.
     *
     * @return the stamp, or -1 before the first
     */
    public final long lastStamp() {
        return lastStamp;
    }

    @Override
    public abstract void close();
}
