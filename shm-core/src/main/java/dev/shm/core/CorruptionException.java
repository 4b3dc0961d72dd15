package dev.shm.core;

/**
 * A structure in shared memory holds a value it can never hold: a state, an index, an offset or a
 * length out of range. Every value read from shared memory is checked before use, and this is what a
 * failed check throws (or counts, where the structure can carry on). Another process wrote garbage
 * over the segment, or a bug did.
 */
public final class CorruptionException extends ShmException {

    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the structure, the field, what was expected and what was found
     */
    public CorruptionException(String message) {
        super(message);
    }
}
