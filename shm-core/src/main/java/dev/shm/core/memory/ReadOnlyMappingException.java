package dev.shm.core.memory;

/**
 * A write was attempted on a read-only mapping.
 */
public final class ReadOnlyMappingException extends UnsupportedOperationException {

    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param subject the region, e.g. a path
     * @param offset the offset of the refused write
     */
    public ReadOnlyMappingException(String subject, long offset) {
        super("write refused: " + subject + " is mapped read-only (write at offset=" + offset + ")");
    }
}
