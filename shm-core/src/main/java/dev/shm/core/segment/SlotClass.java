package dev.shm.core.segment;

/**
 * One size class of a segment's slot pool: slots of {@code size} bytes, {@code count} of them at
 * creation. A class may grow later by extents (see {@code SlotPool}).
 *
 * @param size the bytes of one slot, a positive multiple of 64
 * @param count the slots created with the segment, positive
 */
public record SlotClass(long size, int count) {

    /** Slot sizes are multiples of a cache line, so that two slots never share one. */
    public static final int ALIGNMENT = 64;

    /**
     * Validates the class.
     *
     * @param size the bytes of one slot
     * @param count the slots created with the segment
     */
    public SlotClass {
        if (size <= 0 || size % ALIGNMENT != 0) {
            throw new IllegalArgumentException("slot class size=" + size + " must be a positive multiple of "
                    + ALIGNMENT + " bytes");
        }
        if (count <= 0) {
            throw new IllegalArgumentException("slot class count=" + count + " must be positive");
        }
    }
}
