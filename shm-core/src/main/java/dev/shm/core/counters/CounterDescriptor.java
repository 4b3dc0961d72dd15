package dev.shm.core.counters;

/**
 * The layout of one counter record: metadata on one cache line, the value alone on the next, so
 * that updating a value never invalidates the line that readers scan for labels.
 *
 * <pre>
 *  0        4        8                  16       20                                64
 *  +--------+--------+------------------+--------+---------------------------------+
 *  | state  | typeId | owner            |labelLen| label (44 bytes, UTF-8)         |
 *  +--------+--------+------------------+--------+---------------------------------+
 *  | value (8)        | (padding to 128)                                           | 64..128
 *  +------------------+------------------------------------------------------------+
 * </pre>
 *
 * A record is claimed by a compare-and-set of its state from {@link #UNUSED} to {@link #CLAIMED};
 * its metadata is written, then the state is set to {@link #ALLOCATED} with release. Readers load
 * the state with acquire before the metadata. Records are allocated under the segment's directory
 * lock, so an allocator that meets a {@link #CLAIMED} record knows its allocator died part-way and
 * takes it.
 */
public final class CounterDescriptor {

    /** The length of a record. */
    public static final int LENGTH = 128;
    public static final int STATE_OFFSET = 0;
    public static final int TYPE_ID_OFFSET = 4;
    public static final int OWNER_OFFSET = 8;
    public static final int LABEL_LENGTH_OFFSET = 16;
    public static final int LABEL_OFFSET = 20;
    /** Labels longer than this many UTF-8 bytes are cut at a character boundary. */
    public static final int LABEL_CAPACITY = 44;
    public static final int VALUE_OFFSET = 64;

    /** A free record. */
    public static final int UNUSED = 0;
    /** A record being filled in. */
    public static final int CLAIMED = 1;
    /** A counter in use. */
    public static final int ALLOCATED = 2;

    private CounterDescriptor() {
    }
}
