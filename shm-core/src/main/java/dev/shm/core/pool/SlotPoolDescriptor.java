package dev.shm.core.pool;

/**
 * The layout of a segment's slot pool: a table of size classes in the fixed part of the segment,
 * and extents of slots appended to the file.
 *
 * <pre>
 * Class entry (512 bytes)
 *  0                   8        12       16                  24                  32
 *  +-------------------+--------+--------+-------------------+-------------------+
 *  | slotSize          |extents |initial | totalSlots (rel)  | growth record     |
 *  +-------------------+--------+--------+-------------------+-------------------+ 64
 *  | head (own cache line)                                                       | 64..128
 *  +-----------------------------------------------------------------------------+
 *  | reclaimed         | reserved                                                | 128..192
 *  +-------------------+--------+--------+---- x 16 ----------------------------+
 *  | extent offset     | count  | base   |  (extent table, 16 bytes each)        | 192..448
 *  +-------------------+--------+--------+---------------------------------------+
 *
 * Extent (at a page-aligned file offset)
 *  +------------------------------+-------------------------------------------+
 *  | count x 16: meta word, next  | count x slotSize: the slots' bytes         |
 *  +------------------------------+-------------------------------------------+
 *                                 ^ dataOffset(count), a multiple of 64
 * </pre>
 *
 * <h2>Words</h2>
 * <pre>
 * meta word   [0:2][generation:30][refs:16][owner:8][state:8]
 * head word   [generation:30][op:2][peer:8][index:24]        (index 0xFFFFFF: empty)
 * slot ref    [0:2][generation:30][class:8][index:24]        (non-negative: outcomes are negative)
 * growth rec  [extent:8][peer:8][state:8]
 * </pre>
 *
 * The free list of a class is a Treiber stack threaded through the slots' {@code next} fields. Its
 * head carries an operation in progress ({@code op}, {@code peer}): a pop or push first marks the
 * head, then finishes its slot's state change, then clears the mark. Any process that finds a marked
 * head finishes the operation for its owner (helping), so a process that stalls or dies between two
 * steps never blocks the others nor loses a slot.
 *
 * <p>A slot's generation changes on every free, so a stale reference (to a slot freed and reused)
 * is detected: frees, transfers and reads check it. The head carries the generation of its slot
 * too, and that is what makes helping safe: a helper that read a marked head and then stalled
 * (descheduled, or SIGSTOPped) may resume long after the operation finished and the slot went round
 * the list again; its state change applies only to the slot's incarnation named in the head (a CAS
 * from FREE or FREEING <em>with that generation</em>), and its head CAS only to that exact head
 * word, which cannot recur until the slot has been freed 2<sup>30</sup> times. The same word
 * defeats ABA on the head without a separate tag: a head that changed and came back to the same
 * value names the same free slot in the same incarnation, and pops read {@code next} only after
 * they marked the head.
 */
public final class SlotPoolDescriptor {

    /** The length of a class entry. */
    public static final int CLASS_ENTRY_LENGTH = 512;
    public static final int SLOT_SIZE_OFFSET = 0;
    /** The number of published extents, written with release after the extent entry. */
    public static final int EXTENT_COUNT_OFFSET = 8;
    public static final int INITIAL_COUNT_OFFSET = 12;
    /** The slots of all published extents, written with release. */
    public static final int TOTAL_SLOTS_OFFSET = 16;
    /** The growth in progress, for recovery when a grower dies between publishing and pushing. */
    public static final int GROWTH_RECORD_OFFSET = 24;
    /** The free list's head, on its own cache line: the one word every allocation contends on. */
    public static final int HEAD_OFFSET = 64;
    /** Slots of the class freed by crash recovery (a counter, added to atomically). */
    public static final int RECLAIMED_OFFSET = 128;
    public static final int EXTENTS_OFFSET = 192;
    public static final int EXTENT_ENTRY_LENGTH = 16;
    public static final int EXTENT_OFFSET_OFFSET = 0;
    public static final int EXTENT_COUNT_FIELD_OFFSET = 8;
    public static final int EXTENT_BASE_OFFSET = 12;
    /** The most extents of one class. */
    public static final int MAX_EXTENTS = 16;

    /** Per-slot metadata in an extent: the meta word, then the next index of the free list. */
    public static final int META_LENGTH = 16;
    public static final int META_WORD_OFFSET = 0;
    public static final int NEXT_OFFSET = 8;

    /** Generations are 30 bits: they wrap after 2^30 frees of one slot. */
    public static final int GENERATION_MASK = 0x3FFF_FFFF;

    /** The most slots of one class: indexes are 24 bits, and all ones means "none". */
    public static final int MAX_SLOTS = 0xFF_FFFE;
    /** The index that ends a free list. */
    public static final int NIL = 0xFF_FFFF;
    /** The owner field's value for "no peer". */
    public static final int NO_PEER = 0xFF;

    /** A slot in the free list (or being pushed onto it). */
    public static final int FREE = 0;
    /** A slot its owner writes or reads. */
    public static final int ALLOCATED = 1;
    /** A slot being freed by the peer in its owner field. */
    public static final int FREEING = 2;

    /** Head op: none in progress. */
    public static final int OP_NONE = 0;
    /** Head op: the head slot is being popped by the marked peer. */
    public static final int OP_POP = 1;
    /** Head op: the head slot was pushed by the marked peer and is being marked free. */
    public static final int OP_PUSH = 2;
    /** Head op: a new extent's chain was pushed by the marked peer. */
    public static final int OP_CHAIN = 3;

    /** Growth record state: none in progress. */
    public static final int GROWTH_IDLE = 0;
    /** Growth record state: an extent is published, its chain not yet on the free list. */
    public static final int GROWTH_PUSHING = 1;

    private SlotPoolDescriptor() {
    }

    // ---------------------------------------------------------------- extents

    /**
     * Returns where the slots' bytes start in an extent of {@code count} slots.
     *
     * @param count the slots of the extent
     * @return the offset of slot 0's bytes from the extent's start
     */
    public static long dataOffset(int count) {
        return ((long) count * META_LENGTH + 63) & -64L;
    }

    /**
     * Returns the bytes of an extent.
     *
     * @param count the slots of the extent
     * @param slotSize the bytes of one slot
     * @return the extent's length
     */
    public static long extentLength(int count, long slotSize) {
        return dataOffset(count) + count * slotSize;
    }

    // ---------------------------------------------------------------- meta word

    /**
     * Packs a meta word.
     *
     * @param generation the generation, 30 bits
     * @param refs the extra references, beyond the owner's
     * @param owner the owner (or freeing) peer, or {@link #NO_PEER}
     * @param state {@link #FREE}, {@link #ALLOCATED} or {@link #FREEING}
     * @return the word
     */
    public static long meta(int generation, int refs, int owner, int state) {
        return ((long) (generation & GENERATION_MASK) << 32) | ((long) (refs & 0xFFFF) << 16) | ((owner & 0xFF) << 8)
                | (state & 0xFF);
    }

    /** @param meta a meta word @return its generation */
    public static int generation(long meta) {
        return (int) ((meta >>> 32) & GENERATION_MASK);
    }

    /** @param meta a meta word @return its extra references (beyond the owner's) */
    public static int refs(long meta) {
        return (int) ((meta >>> 16) & 0xFFFF);
    }

    /** The most extra references one slot can hold. */
    public static final int MAX_REFS = 0xFFFF;

    /** @param meta a meta word @return its owner */
    public static int owner(long meta) {
        return (int) ((meta >>> 8) & 0xFF);
    }

    /** @param meta a meta word @return its state */
    public static int state(long meta) {
        return (int) (meta & 0xFF);
    }

    // ---------------------------------------------------------------- head word

    /**
     * Packs a head word.
     *
     * @param index the first slot of the free list, or {@link #NIL}
     * @param peer the peer whose operation is in progress, or {@link #NO_PEER}
     * @param op the operation in progress
     * @param generation the generation of slot {@code index} in the state the operation expects
     *     (FREE for a pop or an unmarked head, FREEING for a push); 0 for an empty list
     * @return the word
     */
    public static long head(int index, int peer, int op, int generation) {
        return ((long) (generation & GENERATION_MASK) << 34) | ((long) (op & 3) << 32) | ((long) (peer & 0xFF) << 24)
                | (index & 0xFF_FFFF);
    }

    /** @param head a head word @return its index */
    public static int headIndex(long head) {
        return (int) (head & 0xFF_FFFF);
    }

    /** @param head a head word @return the peer of the operation in progress */
    public static int headPeer(long head) {
        return (int) ((head >>> 24) & 0xFF);
    }

    /** @param head a head word @return the operation in progress */
    public static int headOp(long head) {
        return (int) ((head >>> 32) & 3);
    }

    /** @param head a head word @return the generation of its slot */
    public static int headGeneration(long head) {
        return (int) (head >>> 34);
    }

    // ---------------------------------------------------------------- slot reference

    /**
     * Packs a slot reference.
     *
     * @param classIndex the slot's class
     * @param index the slot's index in its class
     * @param generation the slot's generation when it was allocated
     * @return the reference, non-negative
     */
    public static long ref(int classIndex, int index, int generation) {
        return ((long) (generation & GENERATION_MASK) << 32) | ((long) (classIndex & 0xFF) << 24) | (index & 0xFF_FFFF);
    }

    /** @param ref a slot reference @return its class */
    public static int refClass(long ref) {
        return (int) ((ref >>> 24) & 0xFF);
    }

    /** @param ref a slot reference @return its index */
    public static int refIndex(long ref) {
        return (int) (ref & 0xFF_FFFF);
    }

    /** @param ref a slot reference @return its generation */
    public static int refGeneration(long ref) {
        return (int) ((ref >>> 32) & GENERATION_MASK);
    }

    // ---------------------------------------------------------------- growth record

    /**
     * Packs a growth record.
     *
     * @param state {@link #GROWTH_IDLE} or {@link #GROWTH_PUSHING}
     * @param peer the growing peer
     * @param extent the extent being pushed
     * @return the record
     */
    public static long growth(int state, int peer, int extent) {
        return ((long) (extent & 0xFF) << 16) | ((peer & 0xFF) << 8) | (state & 0xFF);
    }

    /** @param record a growth record @return its state */
    public static int growthState(long record) {
        return (int) (record & 0xFF);
    }

    /** @param record a growth record @return its peer */
    public static int growthPeer(long record) {
        return (int) ((record >>> 8) & 0xFF);
    }

    /** @param record a growth record @return its extent */
    public static int growthExtent(long record) {
        return (int) ((record >>> 16) & 0xFF);
    }
}
