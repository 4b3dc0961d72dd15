package dev.shm.core.memory;

/**
 * An atomic view was asked for at an offset that is not a multiple of its value's size. Atomic
 * access needs natural alignment: misaligned atomics are not atomic on every CPU, and the JDK refuses
 * them. The message carries the offset, the length, the size of the region and the alignment needed.
 */
public final class MisalignedAccessException extends IllegalArgumentException {

    private static final long serialVersionUID = 1L;

    private final long offset;
    private final long alignment;

    /**
     * Creates the exception.
     *
     * @param subject the region, e.g. a path
     * @param offset the offset asked for
     * @param length the number of bytes asked for
     * @param size the region's size in bytes
     * @param alignment the alignment the value needs, in bytes
     */
    public MisalignedAccessException(String subject, long offset, long length, long size, long alignment) {
        super("misaligned atomic access to " + subject + ": offset=" + offset + ", length=" + length + ", size="
                + size + "; a " + alignment + "-byte atomic value needs an offset that is a multiple of " + alignment);
        this.offset = offset;
        this.alignment = alignment;
    }

    /**
     * Returns the offset asked for.
     *
     * @return the offset
     */
    public long offset() {
        return offset;
    }

    /**
     * Returns the alignment needed.
     *
     * @return the alignment in bytes
     */
    public long alignment() {
        return alignment;
    }
}
