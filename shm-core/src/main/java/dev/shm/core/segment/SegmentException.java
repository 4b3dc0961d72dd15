package dev.shm.core.segment;

import dev.shm.core.ShmException;

/**
 * A segment file could not be created, attached or trusted. {@link #reason()} tells the case; the
 * message says what was expected and what was found.
 */
public final class SegmentException extends ShmException {

    private static final long serialVersionUID = 1L;

    /** The cases. */
    public enum Reason {
        /** The file does not start with the segment magic: not a segment, or not finished. */
        BAD_MAGIC,
        /** The file is a segment of a layout version this code does not read. */
        UNSUPPORTED_VERSION,
        /** The file is shorter than its header says, or than a header. */
        TRUNCATED,
        /** An offset or size in the header points outside the file or overlaps another part. */
        OFFSET_OUTSIDE_FILE,
        /** A value in the header or a part is impossible (a count out of range, a bad state). */
        CORRUPT,
        /** The segment exists with other parameters than the caller requires. */
        PARAMETER_MISMATCH,
        /** Every entry of the peer table is taken. */
        PEER_TABLE_FULL,
        /** The segment has reached its maximum size. */
        NO_SPACE,
        /** Every entry of the segment's directory (its channels and services) is taken. */
        DIRECTORY_FULL,
        /** A peer id that the caller passed is not reserved, or not in the table. */
        BAD_PEER
    }

    private final Reason reason;

    /**
     * Creates the exception.
     *
     * @param reason the case
     * @param message what was expected and what was found
     */
    public SegmentException(Reason reason, String message) {
        this(reason, message, null);
    }

    /**
     * Creates the exception with a cause.
     *
     * @param reason the case
     * @param message what was expected and what was found
     * @param cause the underlying failure
     */
    public SegmentException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    /**
     * Returns the case.
     *
     * @return why the segment was refused
     */
    public Reason reason() {
        return reason;
    }
}
