package dev.shm.core.ring;

/** The outcome of a send: a value, never an exception, on the hot path. */
public enum SendOutcome {
    /** Published: every required group will receive it. */
    SENT,
    /** The ring was full and the channel's backpressure is {@link Backpressure#FAIL}. */
    FULL,
    /** The ring was full and the channel's backpressure is {@link Backpressure#DROP}; counted. */
    DROPPED,
    /** The ring stayed full for the send timeout ({@link Backpressure#BLOCK}). */
    TIMEOUT,
    /** No room for the payload: the slot pool is exhausted, or the memfd lease table is full. */
    NO_BUFFER
}
