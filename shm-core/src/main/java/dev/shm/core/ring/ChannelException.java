package dev.shm.core.ring;

import dev.shm.core.ShmException;

/**
 * A channel's ring cannot be used as declared: its descriptor disagrees with the declaration, or is
 * truncated, foreign or damaged. The {@link Reason} tells which, the message names the values.
 */
public final class ChannelException extends ShmException {

    private static final long serialVersionUID = 1L;

    /** What is wrong. */
    public enum Reason {
        /** The ring's structure does not start with the ring magic. */
        BAD_MAGIC,
        /** The ring was written by a layout version this code does not read. */
        UNSUPPORTED_VERSION,
        /** The ring's slot size (its element size) differs from the declaration's. */
        ELEMENT_SIZE_MISMATCH,
        /** The ring's capacity differs from the declaration's, or is not a power of two. */
        CAPACITY_MISMATCH,
        /** Another layout parameter (groups, flags, header length) differs or is out of range. */
        LAYOUT_MISMATCH,
        /** The structure is shorter than the ring's header. */
        TRUNCATED_HEADER,
        /** The structure is shorter than the header plus capacity times slot size. */
        TRUNCATED_PAYLOAD,
        /** Every consumer group entry of the ring is in use. */
        GROUPS_FULL,
        /**
         * The group is held by an exclusive member, or an exclusive subscription found other members,
         * for longer than the segment's liveness timeout.
         */
        GROUP_BUSY
    }

    private final Reason reason;

    /**
     * Creates the exception.
     *
     * @param reason what is wrong
     * @param message the ring, what was expected and what was found
     */
    public ChannelException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    /**
     * Returns what is wrong.
     *
     * @return the reason
     */
    public Reason reason() {
        return reason;
    }
}
