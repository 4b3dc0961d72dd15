package dev.shm.core.memory;

/**
 * An access reached outside a mapped region. The message carries the offset, the length and the
 * region's size.
 */
public final class OutOfBoundsAccessException extends IndexOutOfBoundsException {

    private static final long serialVersionUID = 1L;

    private final long offset;
    private final long length;
    private final long size;

    /**
     * Creates the exception.
     *
     * @param subject the region, e.g. a path
     * @param offset the offset asked for
     * @param length the number of bytes asked for
     * @param size the region's size in bytes
     */
    public OutOfBoundsAccessException(String subject, long offset, long length, long size) {
        super("access out of bounds of " + subject + ": offset=" + offset + ", length=" + length + ", size=" + size);
        this.offset = offset;
        this.length = length;
        this.size = size;
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
     * Returns the number of bytes asked for.
     *
     * @return the length
     */
    public long length() {
        return length;
    }

    /**
     * Returns the region's size.
     *
     * @return the size in bytes
     */
    public long size() {
        return size;
    }
}
