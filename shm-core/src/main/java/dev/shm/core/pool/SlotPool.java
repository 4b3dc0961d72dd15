package dev.shm.core.pool;

import static dev.shm.core.pool.SlotPoolDescriptor.ALLOCATED;
import static dev.shm.core.pool.SlotPoolDescriptor.CLASS_ENTRY_LENGTH;
import static dev.shm.core.pool.SlotPoolDescriptor.EXTENTS_OFFSET;
import static dev.shm.core.pool.SlotPoolDescriptor.EXTENT_BASE_OFFSET;
import static dev.shm.core.pool.SlotPoolDescriptor.EXTENT_COUNT_FIELD_OFFSET;
import static dev.shm.core.pool.SlotPoolDescriptor.EXTENT_COUNT_OFFSET;
import static dev.shm.core.pool.SlotPoolDescriptor.EXTENT_ENTRY_LENGTH;
import static dev.shm.core.pool.SlotPoolDescriptor.EXTENT_OFFSET_OFFSET;
import static dev.shm.core.pool.SlotPoolDescriptor.FREE;
import static dev.shm.core.pool.SlotPoolDescriptor.FREEING;
import static dev.shm.core.pool.SlotPoolDescriptor.RECLAIMED_OFFSET;
import static dev.shm.core.pool.SlotPoolDescriptor.GROWTH_IDLE;
import static dev.shm.core.pool.SlotPoolDescriptor.GROWTH_PUSHING;
import static dev.shm.core.pool.SlotPoolDescriptor.GROWTH_RECORD_OFFSET;
import static dev.shm.core.pool.SlotPoolDescriptor.HEAD_OFFSET;
import static dev.shm.core.pool.SlotPoolDescriptor.INITIAL_COUNT_OFFSET;
import static dev.shm.core.pool.SlotPoolDescriptor.MAX_EXTENTS;
import static dev.shm.core.pool.SlotPoolDescriptor.MAX_SLOTS;
import static dev.shm.core.pool.SlotPoolDescriptor.META_LENGTH;
import static dev.shm.core.pool.SlotPoolDescriptor.MAX_REFS;
import static dev.shm.core.pool.SlotPoolDescriptor.META_WORD_OFFSET;
import static dev.shm.core.pool.SlotPoolDescriptor.NEXT_OFFSET;
import static dev.shm.core.pool.SlotPoolDescriptor.NIL;
import static dev.shm.core.pool.SlotPoolDescriptor.NO_PEER;
import static dev.shm.core.pool.SlotPoolDescriptor.OP_CHAIN;
import static dev.shm.core.pool.SlotPoolDescriptor.OP_NONE;
import static dev.shm.core.pool.SlotPoolDescriptor.OP_POP;
import static dev.shm.core.pool.SlotPoolDescriptor.OP_PUSH;
import static dev.shm.core.pool.SlotPoolDescriptor.SLOT_SIZE_OFFSET;
import static dev.shm.core.pool.SlotPoolDescriptor.TOTAL_SLOTS_OFFSET;
import static dev.shm.core.pool.SlotPoolDescriptor.dataOffset;
import static dev.shm.core.pool.SlotPoolDescriptor.extentLength;
import static dev.shm.core.pool.SlotPoolDescriptor.generation;
import static dev.shm.core.pool.SlotPoolDescriptor.growth;
import static dev.shm.core.pool.SlotPoolDescriptor.growthExtent;
import static dev.shm.core.pool.SlotPoolDescriptor.growthPeer;
import static dev.shm.core.pool.SlotPoolDescriptor.growthState;
import static dev.shm.core.pool.SlotPoolDescriptor.head;
import static dev.shm.core.pool.SlotPoolDescriptor.headGeneration;
import static dev.shm.core.pool.SlotPoolDescriptor.headIndex;
import static dev.shm.core.pool.SlotPoolDescriptor.headOp;
import static dev.shm.core.pool.SlotPoolDescriptor.headPeer;
import static dev.shm.core.pool.SlotPoolDescriptor.headGeneration;
import static dev.shm.core.pool.SlotPoolDescriptor.meta;
import static dev.shm.core.pool.SlotPoolDescriptor.owner;
import static dev.shm.core.pool.SlotPoolDescriptor.ref;
import static dev.shm.core.pool.SlotPoolDescriptor.refClass;
import static dev.shm.core.pool.SlotPoolDescriptor.refGeneration;
import static dev.shm.core.pool.SlotPoolDescriptor.refIndex;
import static dev.shm.core.pool.SlotPoolDescriptor.refs;
import static dev.shm.core.pool.SlotPoolDescriptor.state;

import dev.shm.core.CorruptionException;
import dev.shm.core.ShmException;
import dev.shm.core.counters.Counters;
import dev.shm.core.counters.SegmentCounters;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * A pool of fixed-size slots in shared memory, in app-defined size classes, shared by every process
 * of a segment: what does not fit inline in a ring or lane goes into a slot, and the slot's reference
 * travels instead.
 *
 * <h2>Allocate and free</h2>
 * {@link #allocate(long)} takes a slot of the smallest class that fits, falling through to larger
 * classes when one is exhausted, and growing a class by an extent when all are; it returns a slot
 * reference, or the named outcome {@link #EXHAUSTED} or {@link #TOO_LARGE} — never an exception on
 * the hot path. {@link #free(long)} returns the slot; a free whose reference is stale (the slot was
 * freed already, or freed and reused: its generation moved on) is refused and counted. Both are
 * lock-free, across threads and processes (see {@link SlotPoolDescriptor} for the algorithm).
 *
 * {@snippet :
 * long ref = pool.allocate(3000);              // a 4 KiB slot, owned by this peer
 * if (ref >= 0) {
 *     MemorySegment bytes = pool.data(ref);    // the slot's 4096 bytes
 *     ...
 *     pool.free(ref);
 * }
 * }
 *
 * <h2>Ownership</h2>
 * Each allocated slot has an owner peer: the allocator, until {@link #transfer(long, int)} hands
 * it to another (a receiver claims a slot it found in a frame). When a peer dies, recovery frees
 * every slot it owned ({@link #reclaim(int, boolean)}).
 *
 * <h2>Shared slots</h2>
 * A slot that several readers share holds a reference count: the owner's reference plus one per
 * {@link #retain(long)}; each holder calls {@link #release(long)} once and the last release frees
 * the slot, whoever it is ({@link #free(long)} refuses a slot others still reference). When the
 * owner of a shared slot dies, recovery drops only the owner's reference: the slot stays, without
 * owner, until the other holders release it. Which holders a dead peer's references belong to is
 * known to the structure that shared the slot (a ring tracks them per subscriber group), not to
 * the pool, so releasing a dead reader's references is that structure's recovery step.
 *
 * <h2>Growth</h2>
 * A class grows by an extent appended to the segment file; other processes map it when they meet an
 * index beyond what they have mapped, without remapping anything.
 *
 * <p>Thread-safety: safe from any thread of any process of the segment.
 */
public final class SlotPool {

    /** Outcome of {@link #allocate}: every fitting class is exhausted and no extent could be added. */
    public static final long EXHAUSTED = -1;
    /** Outcome of {@link #allocate}: larger than the largest class; use a memfd buffer instead. */
    public static final long TOO_LARGE = -2;

    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();
    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();

    private final MemorySegment table;
    private final ClassView[] classes;
    private final ExtentSpace space;
    private final Counters counters;
    private final int me;

    /**
     * Attaches to a formatted pool.
     *
     * @param table the class table: {@code classCount} entries of {@value SlotPoolDescriptor#CLASS_ENTRY_LENGTH} bytes
     * @param classCount the number of classes
     * @param space the segment's extent space
     * @param counters the segment's counters
     * @throws CorruptionException when a class entry holds impossible values
     */
    public SlotPool(MemorySegment table, int classCount, ExtentSpace space, Counters counters) {
        this.table = table;
        this.space = space;
        this.counters = counters;
        this.me = space.peerId();
        this.classes = new ClassView[classCount];
        for (int c = 0; c < classCount; c++) {
            long slotSize = table.get(ValueLayout.JAVA_LONG, entry(c) + SLOT_SIZE_OFFSET);
            if (slotSize <= 0 || slotSize % 64 != 0 || slotSize > (1L << 40)) {
                throw new CorruptionException("slot class " + c + " has slotSize=" + slotSize
                        + "; expected a positive multiple of 64");
            }
            classes[c] = new ClassView(c, slotSize);
        }
    }

    /**
     * Writes the class table of a new segment, and the initial extent of each class. Only the
     * creator calls this, before the segment is published.
     *
     * @param table the class table
     * @param slotSizes each class's slot size
     * @param counts each class's initial slot count
     * @param extentOffsets each class's initial extent's file offset
     * @param file the whole new file, mapped
     */
    public static void format(MemorySegment table, long[] slotSizes, int[] counts, long[] extentOffsets,
                              MemorySegment file) {
        for (int c = 0; c < slotSizes.length; c++) {
            long entry = entry(c);
            table.asSlice(entry, CLASS_ENTRY_LENGTH).fill((byte) 0);
            table.set(ValueLayout.JAVA_LONG, entry + SLOT_SIZE_OFFSET, slotSizes[c]);
            table.set(ValueLayout.JAVA_INT, entry + INITIAL_COUNT_OFFSET, counts[c]);
            MemorySegment extent = file.asSlice(extentOffsets[c], extentLength(counts[c], slotSizes[c]));
            chain(extent, 0, counts[c], NIL);
            long e = entry + EXTENTS_OFFSET;
            table.set(ValueLayout.JAVA_LONG, e + EXTENT_OFFSET_OFFSET, extentOffsets[c]);
            table.set(ValueLayout.JAVA_INT, e + EXTENT_COUNT_FIELD_OFFSET, counts[c]);
            table.set(ValueLayout.JAVA_INT, e + EXTENT_BASE_OFFSET, 0);
            table.set(ValueLayout.JAVA_INT, entry + EXTENT_COUNT_OFFSET, 1);
            table.set(ValueLayout.JAVA_LONG, entry + TOTAL_SLOTS_OFFSET, counts[c]);
            table.set(ValueLayout.JAVA_LONG, entry + HEAD_OFFSET, head(0, NO_PEER, OP_NONE, 0));
        }
    }

    /** Marks {@code count} slots of an extent free and links them into a list ending in {@code last}. */
    private static void chain(MemorySegment extent, int base, int count, int last) {
        for (int j = 0; j < count; j++) {
            long at = (long) j * META_LENGTH;
            extent.set(ValueLayout.JAVA_LONG, at + META_WORD_OFFSET, meta(0, 0, NO_PEER, FREE));
            extent.set(ValueLayout.JAVA_INT, at + NEXT_OFFSET, j + 1 < count ? base + j + 1 : last);
        }
    }

    /**
     * Returns the number of classes.
     *
     * @return the class count
     */
    public int classCount() {
        return classes.length;
    }

    /**
     * Returns the slot size of a class.
     *
     * @param classIndex the class
     * @return its slot size in bytes
     */
    public long slotSize(int classIndex) {
        return classes[classIndex].slotSize;
    }

    /**
     * Returns the largest slot size: payloads larger than this cannot use the pool.
     *
     * @return the largest slot size, or 0 without classes
     */
    public long largestSlotSize() {
        return classes.length == 0 ? 0 : classes[classes.length - 1].slotSize;
    }

    // ---------------------------------------------------------------- allocate

    /**
     * Allocates a slot of at least {@code size} bytes, owned by this peer: from the smallest class
     * that fits, falling through to larger ones, and growing a class by an extent when all fitting
     * classes are exhausted.
     *
     * @param size the bytes needed
     * @return the slot reference (non-negative), {@link #EXHAUSTED} or {@link #TOO_LARGE}
     * @throws CorruptionException when the class's table entry, free list or extents are damaged
     */
    public long allocate(long size) {
        int first = fittingClass(size);
        if (first < 0) {
            return TOO_LARGE;
        }
        for (int c = first; c < classes.length; c++) {
            long ref = pop(classes[c]);
            if (ref >= 0) {
                return ref;
            }
        }
        ClassView grown = classes[first];
        int count = table.get(ValueLayout.JAVA_INT, grown.entry + INITIAL_COUNT_OFFSET); // grows by its first extent's size
        if (count <= 0 || count > MAX_SLOTS) {
            throw new CorruptionException("slot class " + first + " states initialCount=" + count + "; a class starts "
                    + "with 1 to " + MAX_SLOTS + " slots");
        }
        if (grow(first, count) > 0) {
            long ref = pop(grown);
            if (ref >= 0) {
                return ref;
            }
        }
        counters.increment(SegmentCounters.ALLOCATIONS_EXHAUSTED);
        return EXHAUSTED;
    }

    /**
     * Allocates a slot of one class, without falling through or growing.
     *
     * @param classIndex the class
     * @return the slot reference, or {@link #EXHAUSTED}
     */
    public long allocateFromClass(int classIndex) {
        return pop(classes[classIndex]);
    }

    private int fittingClass(long size) {
        for (int c = 0; c < classes.length; c++) {
            if (classes[c].slotSize >= size) {
                return c;
            }
        }
        return -1;
    }

    private long pop(ClassView c) {
        long headAt = c.entry + HEAD_OFFSET;
        while (true) {
            long h = (long) LONG.getVolatile(table, headAt);
            if (headOp(h) != OP_NONE) {
                help(c, h);
                continue;
            }
            int index = headIndex(h);
            if (index == NIL) {
                return EXHAUSTED;
            }
            if (index >= c.total()) {
                // A corrupt head: drop the list rather than follow it, and count it.
                counters.increment(SegmentCounters.CORRUPT_FRAMES_REJECTED);
                LONG.compareAndSet(table, headAt, h, head(NIL, NO_PEER, OP_NONE, 0));
                continue;
            }
            long marked = head(index, me, OP_POP, headGeneration(h));
            if (LONG.compareAndSet(table, headAt, h, marked)) {
                completePop(c, marked);
                Extent e = c.extent(index);
                long m = (long) LONG.getVolatile(e.meta, e.metaAt(index));
                if (state(m) == ALLOCATED && owner(m) == me && generation(m) == headGeneration(marked)) {
                    return ref(c.index, index, generation(m));
                }
                // The slot at the head was not free: the list was corrupt. Count it and try the next.
                counters.increment(SegmentCounters.CORRUPT_FRAMES_REJECTED);
            }
        }
    }

    /**
     * Finishes a marked pop: the slot's incarnation named in the head becomes the popper's, the head
     * moves on. Idempotent, and harmless when stale: a helper that resumes after the slot was freed
     * again finds another generation and changes nothing.
     */
    private void completePop(ClassView c, long marked) {
        int index = headIndex(marked);
        Extent e = c.extent(index);
        long metaAt = e.metaAt(index);
        long m = (long) LONG.getVolatile(e.meta, metaAt);
        if (state(m) == FREE && generation(m) == headGeneration(marked)) {
            LONG.compareAndSet(e.meta, metaAt, m, meta(generation(m), 0, headPeer(marked), ALLOCATED));
        }
        int next = (int) INT.getVolatile(e.meta, e.nextAt(index));
        int nextGeneration = 0;
        boolean corrupt = false;
        if (next != NIL && (next < 0 || next >= c.total())) {
            corrupt = true;
            next = NIL; // a corrupt link: drop the rest of the list rather than follow it
        } else if (next != NIL) {
            // Stable while the head is marked: the next slot is free, and only a pop changes a free slot.
            Extent n = c.extent(next);
            long nextMeta = (long) LONG.getVolatile(n.meta, n.metaAt(next));
            if (state(nextMeta) == FREE) {
                nextGeneration = generation(nextMeta);
            } else {
                // Never in a sound list: a cycle or a link to a slot in use. Following it would hand
                // that slot out again, so drop the rest of the list instead.
                corrupt = true;
                next = NIL;
            }
        }
        // A stale helper (the head moved on since it read it) may read links that changed since; its
        // compare-and-set fails, so only a helper whose change lands has met corruption.
        if (LONG.compareAndSet(table, c.entry + HEAD_OFFSET, marked, head(next, NO_PEER, OP_NONE, nextGeneration))
                && corrupt) {
            counters.increment(SegmentCounters.CORRUPT_FRAMES_REJECTED);
        }
    }

    // ---------------------------------------------------------------- free

    /**
     * Frees a slot this peer owns and nobody else references.
     *
     * @param ref the slot reference
     * @return {@code true} when freed; {@code false} when the reference is stale, not this peer's,
     *     not a slot, or still has references from {@link #retain} (refused and counted; use
     *     {@link #release} for a shared slot)
     */
    public boolean free(long ref) {
        return free(ref, me, true);
    }

    /**
     * Frees a slot on behalf of its owner, if that owner still holds it with the reference's
     * generation: for recovery, which frees the slots that frames of a reset lane reference, but
     * only those their receiver has not claimed. A mismatch is not counted as a stale free.
     *
     * @param ref the slot reference (untrusted)
     * @param owner the peer that must own the slot
     * @return {@code true} when freed
     */
    public boolean freeIfOwnedBy(long ref, int owner) {
        return free(ref, owner, false);
    }

    private boolean free(long ref, int requiredOwner, boolean countStale) {
        ClassView c = view(ref);
        if (c == null) {
            if (countStale) {
                counters.increment(SegmentCounters.STALE_FREES_REJECTED);
            }
            return false;
        }
        int index = refIndex(ref);
        Extent e = c.extent(index);
        long metaAt = e.metaAt(index);
        while (true) {
            long m = (long) LONG.getVolatile(e.meta, metaAt);
            if (state(m) != ALLOCATED || generation(m) != refGeneration(ref) || owner(m) != requiredOwner
                    || refs(m) != 0) {
                if (countStale) {
                    counters.increment(SegmentCounters.STALE_FREES_REJECTED);
                }
                return false;
            }
            if (LONG.compareAndSet(e.meta, metaAt, m, meta(generation(m), 0, me, FREEING))) {
                push(c, index, generation(m));
                return true;
            }
        }
    }

    /** Pushes a slot that this peer has marked FREEING, in generation {@code generation}, onto its class's free list. */
    private void push(ClassView c, int index, int generation) {
        Extent e = c.extent(index);
        long headAt = c.entry + HEAD_OFFSET;
        while (true) {
            long h = (long) LONG.getVolatile(table, headAt);
            if (headOp(h) != OP_NONE) {
                help(c, h);
                continue;
            }
            INT.setRelease(e.meta, e.nextAt(index), headIndex(h));
            long marked = head(index, me, OP_PUSH, generation);
            if (LONG.compareAndSet(table, headAt, h, marked)) {
                completePush(c, marked);
                return;
            }
        }
    }

    /**
     * Finishes a marked push: the slot's incarnation named in the head becomes free with the next
     * generation, the mark goes. Idempotent, and harmless when stale (see {@link #completePop}).
     */
    private void completePush(ClassView c, long marked) {
        int index = headIndex(marked);
        Extent e = c.extent(index);
        long metaAt = e.metaAt(index);
        long m = (long) LONG.getVolatile(e.meta, metaAt);
        int generation = headGeneration(marked);
        if (state(m) == FREEING && generation(m) == generation) {
            LONG.compareAndSet(e.meta, metaAt, m, meta(generation + 1, 0, NO_PEER, FREE));
        }
        LONG.compareAndSet(table, c.entry + HEAD_OFFSET, marked, head(index, NO_PEER, OP_NONE, generation + 1));
    }

    /** Finishes whatever operation a marked head announces. */
    private void help(ClassView c, long marked) {
        int index = headIndex(marked);
        if (index == NIL || index >= c.total()) {
            // A corrupt file: a mark on no slot. Drop the list rather than follow it, and count it.
            if (LONG.compareAndSet(table, c.entry + HEAD_OFFSET, marked, head(NIL, NO_PEER, OP_NONE, 0))) {
                counters.increment(SegmentCounters.CORRUPT_FRAMES_REJECTED);
            }
            return;
        }
        switch (headOp(marked)) {
            case OP_POP -> completePop(c, marked);
            case OP_PUSH -> completePush(c, marked);
            case OP_CHAIN -> completeChain(c, marked);
            default -> { }
        }
    }

    // ---------------------------------------------------------------- shared slots

    /**
     * Adds a reference to an allocated slot, for a slot that several readers share (a message fanned
     * out to several subscriber groups): a slot holds its owner's reference, plus one for each
     * {@code retain}; each holder calls {@link #release} once, and the last release frees it.
     *
     * @param ref the slot reference
     * @return {@code true} when added; {@code false} for a stale or invalid reference
     * @throws ShmException when the slot's word says it holds {@value SlotPoolDescriptor#MAX_REFS} extra
     *     references already: that many retains not released, or a damaged word (the count is read
     *     from shared memory, so it is not this caller's state to assert on)
     */
    public boolean retain(long ref) {
        ClassView c = view(ref);
        if (c == null) {
            return false;
        }
        int index = refIndex(ref);
        Extent e = c.extent(index);
        long metaAt = e.metaAt(index);
        while (true) {
            long m = (long) LONG.getVolatile(e.meta, metaAt);
            if (state(m) != ALLOCATED || generation(m) != refGeneration(ref)) {
                return false;
            }
            if (refs(m) == MAX_REFS) {
                throw new ShmException("slot 0x" + Long.toHexString(ref) + " holds " + MAX_REFS
                        + " extra references already, the most a slot can count: release some first (or its word"
                        + " in the segment is damaged)");
            }
            if (LONG.compareAndSet(e.meta, metaAt, m, meta(generation(m), refs(m) + 1, owner(m), ALLOCATED))) {
                return true;
            }
        }
    }

    /**
     * Drops one reference to a slot; the last one frees it, whoever holds it. The owner's reference
     * counts like any other: after {@code retain} twice, three releases free the slot.
     *
     * @param ref the slot reference
     * @return the references left (0: this call freed the slot), or -1 for a stale or invalid
     *     reference (refused and counted as a stale free)
     */
    public int release(long ref) {
        ClassView c = view(ref);
        if (c == null) {
            counters.increment(SegmentCounters.STALE_FREES_REJECTED);
            return -1;
        }
        int index = refIndex(ref);
        Extent e = c.extent(index);
        long metaAt = e.metaAt(index);
        while (true) {
            long m = (long) LONG.getVolatile(e.meta, metaAt);
            if (state(m) != ALLOCATED || generation(m) != refGeneration(ref)) {
                counters.increment(SegmentCounters.STALE_FREES_REJECTED);
                return -1;
            }
            int refs = refs(m);
            if (refs > 0) {
                // The owner gives up its own reference: the slot loses its owner, so that the owner's
                // death does not free it under the other holders.
                int owner = owner(m) == me ? NO_PEER : owner(m);
                if (LONG.compareAndSet(e.meta, metaAt, m, meta(generation(m), refs - 1, owner, ALLOCATED))) {
                    return refs;
                }
            } else if (LONG.compareAndSet(e.meta, metaAt, m, meta(generation(m), 0, me, FREEING))) {
                push(c, index, generation(m));
                return 0;
            }
        }
    }

    /**
     * Returns the references a slot holds: its owner's plus one per {@link #retain} not yet released.
     *
     * @param ref the slot reference
     * @return the references, or 0 for a stale or invalid reference
     */
    public int referencesOf(long ref) {
        long m = metaOf(ref);
        return m != -1 && state(m) == ALLOCATED && generation(m) == refGeneration(ref) ? refs(m) + 1 : 0;
    }

    // ---------------------------------------------------------------- ownership and access

    /**
     * Hands an allocated slot to another peer, which then owns (and frees) it: a receiver claims
     * the slot of a frame it read. Checks the reference's generation first.
     *
     * @param ref the slot reference
     * @param newOwner the peer that owns the slot from now on
     * @return {@code true} when transferred; {@code false} for a stale or invalid reference
     */
    public boolean transfer(long ref, int newOwner) {
        return transfer(ref, ANY_OWNER, newOwner);
    }

    /** {@link #transfer(long, int, int)}'s owner that matches every owner. */
    private static final int ANY_OWNER = Integer.MIN_VALUE;

    /**
     * Hands an allocated slot from {@code owner} to {@code newOwner}, as {@link #transfer(long, int)}
     * does, but only while {@code owner} owns it and nothing retains it: the check of a receiver that
     * claims the slot of a frame read from a lane of {@code owner}, where a damaged frame may name any
     * other peer's slot (a channel message in flight, another pair's frame).
     *
     * @param ref the slot reference (untrusted)
     * @param owner the peer that must own the slot now
     * @param newOwner the peer that owns the slot from now on
     * @return {@code true} when transferred; {@code false} for a stale or invalid reference, or a slot
     *     that another peer owns or that is retained
     */
    public boolean transfer(long ref, int owner, int newOwner) {
        ClassView c = view(ref);
        if (c == null) {
            return false;
        }
        int index = refIndex(ref);
        Extent e = c.extent(index);
        long metaAt = e.metaAt(index);
        while (true) {
            long m = (long) LONG.getVolatile(e.meta, metaAt);
            if (state(m) != ALLOCATED || generation(m) != refGeneration(ref)
                    || (owner != ANY_OWNER && (owner(m) != owner || refs(m) != 0))) {
                return false;
            }
            if (LONG.compareAndSet(e.meta, metaAt, m, meta(generation(m), refs(m), newOwner, ALLOCATED))) {
                return true;
            }
        }
    }

    /**
     * Tells whether a reference names a slot that is allocated with the reference's generation.
     *
     * @param ref the slot reference (untrusted)
     * @return {@code true} when the slot is allocated and the reference is current
     */
    public boolean isCurrent(long ref) {
        long m = metaOf(ref);
        return state(m) == ALLOCATED && generation(m) == refGeneration(ref);
    }

    /**
     * Returns the owner of the slot a reference names.
     *
     * @param ref the slot reference
     * @return the owner peer, or -1 when the reference is invalid, stale or the slot not allocated
     */
    public int ownerOf(long ref) {
        long m = metaOf(ref);
        return state(m) == ALLOCATED && generation(m) == refGeneration(ref) ? owner(m) : -1;
    }

    /** The meta word of the slot an untrusted reference names, or -1 (no state) when it names none. */
    private long metaOf(long ref) {
        ClassView c = view(ref);
        if (c == null) {
            return -1;
        }
        int index = refIndex(ref);
        Extent e = c.extent(index);
        return (long) LONG.getVolatile(e.meta, e.metaAt(index));
    }

    /**
     * Returns the bytes of the slot a reference names. The reference is checked for range (it is
     * untrusted), not for generation: check {@link #isCurrent} or {@link #transfer} first.
     *
     * @param ref the slot reference
     * @return the slot's memory, {@link #slotSize} bytes
     * @throws CorruptionException when the reference names no slot
     */
    public MemorySegment data(long ref) {
        ClassView c = slotView(ref);
        int index = refIndex(ref);
        Extent e = c.extent(index);
        return e.data.asSlice((long) (index - e.base) * c.slotSize, c.slotSize);
    }

    /**
     * Returns, read-only, the memory of the extent that holds the slot a reference names; the slot
     * starts at {@link #offsetInExtent}. A reader views a slot this way without creating a slice.
     * Checked as {@link #data} is.
     *
     * @param ref the slot reference
     * @return the extent's slot memory, read-only
     * @throws CorruptionException when the reference names no slot
     */
    public MemorySegment readOnlyExtent(long ref) {
        ClassView c = slotView(ref);
        return c.extent(refIndex(ref)).readOnlyData;
    }

    /**
     * Returns where the slot a reference names starts in {@link #readOnlyExtent}.
     *
     * @param ref the slot reference, valid
     * @return the offset
     * @throws CorruptionException when the reference names no slot
     */
    public long offsetInExtent(long ref) {
        ClassView c = slotView(ref);
        int index = refIndex(ref);
        return (long) (index - c.extent(index).base) * c.slotSize;
    }

    /**
     * Returns the slot size of the slot a reference names.
     *
     * @param ref the slot reference
     * @return its class's slot size, or -1 for an invalid reference
     */
    public long capacityOf(long ref) {
        int c = refClass(ref);
        return ref < 0 || c >= classes.length ? -1 : classes[c].slotSize;
    }

    /** The class of an untrusted reference that must name a slot. */
    private ClassView slotView(long ref) {
        ClassView c = view(ref);
        if (c == null) {
            throw new CorruptionException("slot reference 0x" + Long.toHexString(ref) + " names no slot: class "
                    + refClass(ref) + " of " + classes.length + ", index " + refIndex(ref));
        }
        return c;
    }

    /** The class of an untrusted reference, or {@code null} when the reference names no slot. */
    private ClassView view(long ref) {
        if (ref < 0) {
            return null;
        }
        int c = refClass(ref);
        if (c >= classes.length) {
            return null;
        }
        ClassView view = classes[c];
        return refIndex(ref) < view.total() ? view : null;
    }

    // ---------------------------------------------------------------- growth

    /**
     * Grows a class by an extent of {@code count} slots appended to the segment file. Other
     * processes see the new slots when they meet them. Holds the segment's extent lock.
     *
     * @param classIndex the class
     * @param count the slots to add
     * @return the class's slot count after growing, or 0 when the segment has no room or the class
     *     has {@value SlotPoolDescriptor#MAX_EXTENTS} extents already
     */
    public long grow(int classIndex, int count) {
        if (count <= 0) {
            throw new IllegalArgumentException("count=" + count + " must be positive");
        }
        ClassView c = classes[classIndex];
        return space.withExtentLock(() -> {
            // A growth still pushing under the lock is a dead grower's: a live one links its extent
            // before it lets the lock go. Finished first, or this growth would overwrite its record
            // (its extent never linked) or, had it died before the total moved, take its base again.
            long record = (long) LONG.getVolatile(table, c.entry + GROWTH_RECORD_OFFSET);
            if (growthState(record) == GROWTH_PUSHING) {
                finishGrowthLocked(c, record);
            }
            int k = (int) INT.getAcquire(table, c.entry + EXTENT_COUNT_OFFSET);
            long total = c.total();
            if (k < 0 || k >= MAX_EXTENTS || total + count > MAX_SLOTS) {
                return 0L;
            }
            long length = extentLength(count, c.slotSize);
            long offset = space.append(length);
            if (offset < 0) {
                return 0L;
            }
            int base = (int) total;
            MemorySegment extent = space.map(offset, length);
            chain(extent, base, count, NIL);
            long e = c.entry + EXTENTS_OFFSET + (long) k * EXTENT_ENTRY_LENGTH;
            table.set(ValueLayout.JAVA_LONG, e + EXTENT_OFFSET_OFFSET, offset);
            table.set(ValueLayout.JAVA_INT, e + EXTENT_COUNT_FIELD_OFFSET, count);
            table.set(ValueLayout.JAVA_INT, e + EXTENT_BASE_OFFSET, base);
            // The record comes first: if this process dies from here on, recovery finishes the push.
            LONG.setRelease(table, c.entry + GROWTH_RECORD_OFFSET, growth(GROWTH_PUSHING, me, k));
            INT.setRelease(table, c.entry + EXTENT_COUNT_OFFSET, k + 1);
            LONG.setRelease(table, c.entry + TOTAL_SLOTS_OFFSET, total + count);
            pushChain(c, base, base + count - 1, me);
            return total + count;
        });
    }

    /** Pushes a chain of free slots (a new extent) onto the free list. */
    private void pushChain(ClassView c, int first, int last, int peer) {
        Extent e = c.extent(last);
        Extent f = c.extent(first);
        int firstGeneration = generation((long) LONG.getVolatile(f.meta, f.metaAt(first)));
        long headAt = c.entry + HEAD_OFFSET;
        while (true) {
            long h = (long) LONG.getVolatile(table, headAt);
            if (headOp(h) != OP_NONE) {
                help(c, h);
                continue;
            }
            INT.setRelease(e.meta, e.nextAt(last), headIndex(h));
            long marked = head(first, peer, OP_CHAIN, firstGeneration);
            if (LONG.compareAndSet(table, headAt, h, marked)) {
                completeChain(c, marked);
                return;
            }
        }
    }

    /** Finishes a marked chain push: the growth record goes idle, the mark goes. Idempotent. */
    private void completeChain(ClassView c, long marked) {
        long recordAt = c.entry + GROWTH_RECORD_OFFSET;
        long record = (long) LONG.getVolatile(table, recordAt);
        // Only the record of this chain's extent (bases are unique per extent): a helper that resumes
        // late must not end the record of a later growth.
        if (growthState(record) == GROWTH_PUSHING && growthPeer(record) == headPeer(marked)
                && growthExtent(record) < MAX_EXTENTS
                && table.get(ValueLayout.JAVA_INT, c.entry + EXTENTS_OFFSET
                        + (long) growthExtent(record) * EXTENT_ENTRY_LENGTH + EXTENT_BASE_OFFSET) == headIndex(marked)) {
            LONG.compareAndSet(table, recordAt, record, growth(GROWTH_IDLE, NO_PEER, 0));
        }
        LONG.compareAndSet(table, c.entry + HEAD_OFFSET, marked,
                head(headIndex(marked), NO_PEER, OP_NONE, headGeneration(marked)));
    }

    // ---------------------------------------------------------------- recovery

    /**
     * Frees what a peer left in the pool: finishes its marked operations, pushes the chain of an
     * extent it grew but did not link, and frees every slot it owned or was freeing. Call once the
     * peer is known dead and this process has claimed its recovery — or for this peer itself, as it
     * detaches.
     *
     * @param dead the peer
     * @param count whether to count the freed slots as reclaimed (recovery of a dead peer)
     * @return the slots freed
     */
    public int reclaim(int dead, boolean count) {
        int freed = 0;
        for (ClassView c : classes) {
            int freedBefore = freed;
            try {
                freed += reclaim(c, dead);
            } catch (CorruptionException damaged) {
                // This class's table is damaged (its extents, its list): counted; the other classes
                // are reclaimed all the same. What it freed before the damage is not counted reclaimed.
                counters.increment(SegmentCounters.CORRUPT_FRAMES_REJECTED);
            }
            if (count && freed > freedBefore) {
                LONG.getAndAdd(table, c.entry + RECLAIMED_OFFSET, (long) (freed - freedBefore));
            }
        }
        if (count && freed > 0) {
            counters.add(SegmentCounters.SLOTS_RECLAIMED, freed);
        }
        return freed;
    }

    /** {@link #reclaim(int, boolean)} for one class: the slots it freed. */
    private int reclaim(ClassView c, int dead) {
        int freed = 0;
        long h = (long) LONG.getVolatile(table, c.entry + HEAD_OFFSET);
        if (headOp(h) != OP_NONE && headPeer(h) == dead) {
            help(c, h);
        }
        finishGrowth(c, dead);
        long total = c.total();
        for (int index = 0; index < total; index++) {
            Extent e = c.extent(index);
            long metaAt = e.metaAt(index);
            // Retried until the slot is no longer the dead peer's: live holders of a shared slot may
            // retain or release it meanwhile.
            while (true) {
                long m = (long) LONG.getVolatile(e.meta, metaAt);
                if (owner(m) != dead || state(m) == FREE) {
                    break;
                }
                if (state(m) == ALLOCATED && refs(m) > 0) {
                    // Others still hold references: the slot loses its owner, keeps its data, and the
                    // last release frees it. Its owner's own reference goes with it.
                    if (LONG.compareAndSet(e.meta, metaAt, m,
                            meta(generation(m), refs(m) - 1, NO_PEER, ALLOCATED))) {
                        break;
                    }
                } else if (state(m) == ALLOCATED) {
                    if (LONG.compareAndSet(e.meta, metaAt, m, meta(generation(m), 0, me, FREEING))) {
                        push(c, index, generation(m));
                        freed++;
                        break;
                    }
                } else if (state(m) == FREEING) {
                    if (LONG.compareAndSet(e.meta, metaAt, m, meta(generation(m), 0, me, FREEING))) {
                        // Marked but never pushed (a pushed one is FREE or at a marked head, helped above).
                        push(c, index, generation(m));
                        freed++;
                        break;
                    }
                } else {
                    break; // a corrupt state: leave it
                }
            }
        }
        return freed;
    }

    /**
     * Counts a slot that crash recovery freed outside {@link #reclaim} (one a dead peer had sent on
     * a lane, say) as reclaimed, in its class and in the segment's counter.
     *
     * @param ref the freed slot's reference
     */
    public void countReclaimed(long ref) {
        ClassView c = view(ref);
        if (c != null) {
            LONG.getAndAdd(table, c.entry + RECLAIMED_OFFSET, 1L);
        }
        counters.increment(SegmentCounters.SLOTS_RECLAIMED);
    }

    /** Pushes the chain of an extent that a dead grower published but did not link. */
    private void finishGrowth(ClassView c, int dead) {
        long recordAt = c.entry + GROWTH_RECORD_OFFSET;
        long seen = (long) LONG.getVolatile(table, recordAt);
        if (growthState(seen) != GROWTH_PUSHING || growthPeer(seen) != dead) {
            return; // nothing of the dead peer's: no need for the extent lock, which a stopped grower may hold
        }
        space.withExtentLock(() -> {
            long record = (long) LONG.getVolatile(table, recordAt);
            if (growthState(record) == GROWTH_PUSHING && growthPeer(record) == dead) {
                finishGrowthLocked(c, record);
            }
            return null;
        });
    }

    /**
     * Links the extent of a growth {@code record} (pushing) whose grower is gone, under the extent
     * lock: publishes its slot total if the grower died before it, and pushes its chain; a record
     * of an extent never published goes idle.
     */
    private void finishGrowthLocked(ClassView c, long record) {
        long recordAt = c.entry + GROWTH_RECORD_OFFSET;
        int grower = growthPeer(record);
        int k = growthExtent(record);
        int published = (int) INT.getAcquire(table, c.entry + EXTENT_COUNT_OFFSET);
        long h = (long) LONG.getVolatile(table, c.entry + HEAD_OFFSET);
        if (headOp(h) == OP_CHAIN && headPeer(h) == grower) {
            help(c, h);
        } else if (published < 0 || published > MAX_EXTENTS || k >= MAX_EXTENTS) {
            counters.increment(SegmentCounters.CORRUPT_FRAMES_REJECTED); // a corrupt file: leave it
        } else if (k >= published) {
            LONG.compareAndSet(table, recordAt, record, growth(GROWTH_IDLE, NO_PEER, 0)); // never published
        } else {
            long e = c.entry + EXTENTS_OFFSET + (long) k * EXTENT_ENTRY_LENGTH;
            int base = table.get(ValueLayout.JAVA_INT, e + EXTENT_BASE_OFFSET);
            int count = table.get(ValueLayout.JAVA_INT, e + EXTENT_COUNT_FIELD_OFFSET);
            if (count <= 0 || base < 0 || (long) base + count > MAX_SLOTS) {
                counters.increment(SegmentCounters.CORRUPT_FRAMES_REJECTED);
                return;
            }
            if (LONG.compareAndSet(table, recordAt, record, growth(GROWTH_PUSHING, me, k))) {
                // The grower may have died between publishing the extent and the slot total.
                if (c.total() < (long) base + count) {
                    LONG.setRelease(table, c.entry + TOTAL_SLOTS_OFFSET, (long) base + count);
                }
                pushChain(c, base, base + count - 1, me);
            }
        }
    }

    // ---------------------------------------------------------------- observation

    /**
     * What one class holds now. Taken by scanning the slots' states without locking, so under
     * concurrent use the numbers are a moment's view, not a consistent cut.
     *
     * @param classIndex the class
     * @param slotSize the bytes of one slot
     * @param total the slots of all published extents
     * @param free slots in the free list
     * @param allocated slots owned by a peer
     * @param freeing slots being freed
     * @param extents the published extents
     * @param reclaimed slots of the class freed by crash recovery since the segment was created
     */
    public record ClassStats(int classIndex, long slotSize, long total, long free, long allocated, long freeing,
                             int extents, long reclaimed) {
    }

    /**
     * Returns what each class holds now.
     *
     * @return one entry per class
     */
    public List<ClassStats> stats() {
        List<ClassStats> stats = new ArrayList<>(classes.length);
        for (ClassView c : classes) {
            long total = c.total();
            long free = 0;
            long allocated = 0;
            long freeing = 0;
            for (int index = 0; index < total; index++) {
                Extent e = c.extent(index);
                switch (state((long) LONG.getVolatile(e.meta, e.metaAt(index)))) {
                    case FREE -> free++;
                    case ALLOCATED -> allocated++;
                    case FREEING -> freeing++;
                    default -> { }
                }
            }
            stats.add(new ClassStats(c.index, c.slotSize, total, free, allocated, freeing,
                    (int) INT.getAcquire(table, c.entry + EXTENT_COUNT_OFFSET),
                    (long) LONG.getVolatile(table, c.entry + RECLAIMED_OFFSET)));
        }
        return stats;
    }

    /**
     * Counts the slots a peer owns now.
     *
     * @param peer the peer
     * @return the slots allocated to it
     */
    public long ownedBy(int peer) {
        long owned = 0;
        for (ClassView c : classes) {
            long total = c.total();
            for (int index = 0; index < total; index++) {
                Extent e = c.extent(index);
                long m = (long) LONG.getVolatile(e.meta, e.metaAt(index));
                if (state(m) == ALLOCATED && owner(m) == peer) {
                    owned++;
                }
            }
        }
        return owned;
    }

    /**
     * Walks a class's free list and returns its length; for checks while the pool is quiet. The
     * walk is bounded by the class's slot count, so a corrupt (cyclic) list cannot hang it.
     *
     * @param classIndex the class
     * @return the number of slots in the free list
     * @throws CorruptionException when the list is longer than the class or links outside it
     */
    public long freeListLength(int classIndex) {
        ClassView c = classes[classIndex];
        long total = c.total();
        long length = 0;
        int index = headIndex((long) LONG.getVolatile(table, c.entry + HEAD_OFFSET));
        while (index != NIL) {
            if (index < 0 || index >= total || ++length > total) {
                throw new CorruptionException("the free list of slot class " + classIndex + " links to " + index
                        + " after " + length + " slots; the class has " + total);
            }
            Extent e = c.extent(index);
            index = (int) INT.getVolatile(e.meta, e.nextAt(index));
        }
        return length;
    }

    private static long entry(int classIndex) {
        return (long) classIndex * CLASS_ENTRY_LENGTH;
    }

    // ---------------------------------------------------------------- local views of extents

    /** One mapped extent: slots {@code [base, base + count)} of a class, and their data read-only for readers. */
    private record Extent(int base, int count, MemorySegment meta, MemorySegment data, MemorySegment readOnlyData) {
        long metaAt(int index) {
            return (long) (index - base) * META_LENGTH + META_WORD_OFFSET;
        }

        long nextAt(int index) {
            return (long) (index - base) * META_LENGTH + NEXT_OFFSET;
        }
    }

    /** This process's view of one class: its published extents, mapped as they are met. */
    private final class ClassView {
        final int index;
        final long entry;
        final long slotSize;
        private volatile Extent[] extents = new Extent[0];

        ClassView(int index, long slotSize) {
            this.index = index;
            this.entry = entry(index);
            this.slotSize = slotSize;
        }

        long total() {
            long total = (long) LONG.getAcquire(table, entry + TOTAL_SLOTS_OFFSET);
            if (total < 0 || total > MAX_SLOTS) {
                throw new CorruptionException("slot class " + index + " states totalSlots=" + total);
            }
            return total;
        }

        Extent extent(int slot) {
            Extent[] known = extents;
            for (Extent e : known) {
                if (slot >= e.base && slot - e.base < e.count) {
                    return e;
                }
            }
            known = refresh();
            for (Extent e : known) {
                if (slot >= e.base && slot - e.base < e.count) {
                    return e;
                }
            }
            throw new CorruptionException("slot " + slot + " of class " + index + " lies in no published extent");
        }

        /** Maps the extents published since the last look; checks each as untrusted input. */
        private synchronized Extent[] refresh() {
            Extent[] known = extents;
            int published = (int) INT.getAcquire(table, entry + EXTENT_COUNT_OFFSET);
            if (published < 0 || published > MAX_EXTENTS) {
                throw new CorruptionException("slot class " + index + " states " + published + " extents; at most "
                        + MAX_EXTENTS);
            }
            if (published == known.length) {
                return known;
            }
            Extent[] more = java.util.Arrays.copyOf(known, published);
            int expectedBase = known.length == 0 ? 0 : known[known.length - 1].base + known[known.length - 1].count;
            for (int k = known.length; k < published; k++) {
                long e = entry + EXTENTS_OFFSET + (long) k * EXTENT_ENTRY_LENGTH;
                long offset = table.get(ValueLayout.JAVA_LONG, e + EXTENT_OFFSET_OFFSET);
                int count = table.get(ValueLayout.JAVA_INT, e + EXTENT_COUNT_FIELD_OFFSET);
                int base = table.get(ValueLayout.JAVA_INT, e + EXTENT_BASE_OFFSET);
                if (count <= 0 || base != expectedBase || (long) base + count > MAX_SLOTS) {
                    throw new CorruptionException("extent " + k + " of slot class " + index + " states count=" + count
                            + ", base=" + base + "; expected a positive count from base " + expectedBase);
                }
                MemorySegment memory = space.map(offset, extentLength(count, slotSize));
                long data = dataOffset(count);
                MemorySegment slots = memory.asSlice(data);
                more[k] = new Extent(base, count, memory.asSlice(0, data), slots, slots.asReadOnly());
                expectedBase = base + count;
            }
            extents = more;
            return more;
        }
    }
}
