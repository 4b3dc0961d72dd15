package dev.shm.core.ring;

/** What {@code send} does when the ring is full (its slowest required group is a lap behind). */
public enum Backpressure {
    /** Wait for room, with the channel's wait strategy, up to the send timeout; then {@link SendOutcome#TIMEOUT}. */
    BLOCK,
    /** Return {@link SendOutcome#FULL} at once. */
    FAIL,
    /** Drop the message, count it, and return {@link SendOutcome#DROPPED} at once. */
    DROP
}
