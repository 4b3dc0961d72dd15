package dev.shm.core.ring;

/**
 * What {@code send} does when the ring is full (its slowest required group is a lap behind), or the
 * slot it needs is still held by the previous lap (a writer that producers lapped, which only a ring
 * without a required group allows, a skip that recovery is writing, or damage that is not taken
 * before the liveness timeout).
 */
public enum Backpressure {
    /** Wait for room, with the channel's wait strategy, up to the send timeout; then {@link SendOutcome#TIMEOUT}. */
    BLOCK,
    /** Return {@link SendOutcome#FULL} at once. */
    FAIL,
    /** Drop the message, count it, and return {@link SendOutcome#DROPPED} at once. */
    DROP
}
