package dev.shm.core.ring;

import static dev.shm.core.ring.RingDescriptor.*;

import dev.shm.core.CorruptionException;
import dev.shm.core.internal.Futex;
import dev.shm.core.memory.MemfdBuffer;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.pool.SlotPoolDescriptor;
import dev.shm.core.segment.Directory;
import dev.shm.core.segment.DirectoryDescriptor;
import dev.shm.core.segment.LeaseTable;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentDescriptor;
import dev.shm.core.segment.SegmentInspector;
import dev.shm.core.segment.SegmentException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A named channel of a segment: a ring of fixed-size slots that producers of any process send to,
 * and that consumer groups receive from — every group receives every message, the members of one
 * group compete for them.
 *
 * <h2>Sending</h2>
 * {@link #send(MemorySegment, long, long)} frames a payload inline when it fits the slot, else in
 * a slot of the segment's pool, else in a sealed memfd buffer, claims the next sequence, and
 * publishes the slot with release. It returns a {@link SendOutcome}; when the ring is full (its
 * slowest required group a lap behind) the channel's {@link Backpressure} decides.
 *
 * <h2>Receiving</h2>
 * {@link #subscribe} joins (or creates) a group; see {@link Subscription}.
 *
 * <p>Thread-safety: {@code send} is safe from any thread, unless the channel is declared
 * single-producer (one thread of one process sends).
 */
public final class Channel implements AutoCloseable {

    private static final String[] PARAM_NAMES = {"capacity", "slotSize", "maxGroups", "flags"};
    private static final AtomicInteger MEMFD_NAMES = new AtomicInteger();

    private final Ring ring;
    private final ChannelOptions options;
    private final SlotPool pool;
    private final LeaseTable leases;
    private final int me;
    private final ArrayDeque<PendingMemfd> pendingMemfds = new ArrayDeque<>();
    /** Set under the lock of {@link #pendingMemfds} when {@link #close()} begins: a send that publishes later keeps no memfd here. */
    private boolean memfdsClosed;
    private final long sendTimeoutNanos;
    private final long livenessNanos;
    /** The last gating sequence seen: racy by design, only ever a conservative hint ({@link #cachedRoom}). */
    private long gatingCache = Long.MIN_VALUE;
    /**
     * Whether a single producer marks an inline message's slot before it writes it: unless the last
     * read of the gating found a required group and no group that producers may overrun (optional, or
     * joining), {@link #refreshGating}. Only a reader that may be lapped needs the mark to tell a slot
     * being written again from the message it read; recovery needs it only for a slot that holds a
     * pool slot, which the inline path never does.
     */
    private boolean markInline = true;
    /** The single producer's next sequence. */
    private long localCursor;
    /**
     * The single producer's first sequence whose slot's previous lap this channel wrote itself: from
     * there on, room in the ring (or no required group) means the slot is free, with no read of its
     * header — the read that would wait for the consumer's core to give the line back.
     */
    private long ownLapsFrom;
    /** The single producer's slots whose last lap (written by this channel) was a {@code SLOT_REF}, one bit each. */
    private final long[] refSlots;
    /** How many bits of {@link #refSlots} are set: while none is, the inline path reads none of them. */
    private int refsHeld;
    private volatile boolean closed;
    /** The ring's memory and inline capacity, read once: the hot paths' first loads (one load less each). */
    private final MemorySegment memory;
    private final int inlineCapacity;
    /**
     * For tests: run by a pool send between its frame's stores and the publication, where only damage
     * takes a slot from a live producer (ChannelCorruptionTest). Null otherwise.
     */
    Runnable beforePoolPublish;

    private record PendingMemfd(long sequence, LeaseTable.Lease lease, MemfdBuffer buffer) {
    }

    /**
     * The slot header that a producer of this channel last found in its way before a claim (a
     * previous lap it cannot take yet), the sequence it needed, and since when: kept across sends, so
     * that damage is still taken after the liveness timeout when each send ends sooner (its timeout,
     * or {@code FAIL}). Null until then; racy between threads, which at worst start the count again.
     */
    private record Held(long sequence, long header, long since) {
    }

    private volatile Held held;

    private Channel(Ring ring, ChannelOptions options, Segment segment) {
        this.ring = ring;
        this.options = options;
        this.pool = segment.slotPool();
        this.leases = segment.leases();
        this.me = segment.peerId();
        this.sendTimeoutNanos = options.sendTimeout().toNanos();
        this.livenessNanos = segment.options().livenessTimeout().toNanos();
        this.localCursor = ring.cursor();
        this.ownLapsFrom = localCursor + ring.capacity;
        this.refSlots = ring.singleProducer ? new long[Math.max(1, ring.capacity >>> 6)] : null;
        this.memory = ring.memory;
        this.inlineCapacity = ring.inlineCapacity();
        if (options.backpressure() == Backpressure.BLOCK && options.waitStrategy() == WaitStrategy.BLOCKING) {
            ring.announceSpaceSleeper(); // before its first sleep, so that consumers fence before they look for it
        }
    }

    /**
     * Declares a channel in a segment, creating its ring on the first declaration, or opens it as
     * declared by another process.
     *
     * @param segment the segment
     * @param name the channel's name
     * @param options the declaration
     * @return the channel
     * @throws SegmentException {@code PARAMETER_MISMATCH} when another process declared the channel
     *     with another layout (the message names both), {@code NO_SPACE} when the segment has no room
     *     for the ring, {@code DIRECTORY_FULL} when its directory has no free entry
     * @throws ChannelException when the ring's descriptor disagrees with the declaration
     */
    public static Channel declare(Segment segment, String name, ChannelOptions options) {
        int flags = options.singleProducer() ? FLAG_SINGLE_PRODUCER : 0;
        long[] params = {options.capacity(), options.slotSize(), options.maxGroups(), flags};
        long length = RingDescriptor.length(options.capacity(), options.slotSize(), options.maxGroups());
        Directory directory = segment.directory();
        int index = directory.declare(name, DirectoryDescriptor.CHANNEL, PARAM_NAMES, params,
                entry -> segment.extents().withExtentLock(() -> {
                    long[] left = directory.leftStructure(entry);
                    MemorySegment memory = leftRing(segment, directory, left, length);
                    long offset;
                    if (memory != null) {
                        offset = left[0];
                        memory.fill((byte) 0); // as appended: the format below expects zeros
                    } else {
                        offset = segment.extents().append(length);
                        if (offset < 0) {
                            throw new SegmentException(SegmentException.Reason.NO_SPACE, "segment " + segment.path()
                                    + " has no room for the " + length + "-byte ring of channel '" + name
                                    + "': raise the segment's size or lower the channel's capacity or slot size");
                        }
                        // Named in the entry at once: a declarer that dies while it formats the ring
                        // (the longest step) leaves it to the next declaration into this entry.
                        directory.recordStructure(entry, offset, length);
                        memory = segment.extents().map(offset, length);
                    }
                    int[] ids = new int[CHANNEL_COUNTERS];
                    // A declarer that died in this entry before it became ready may have allocated them.
                    segment.counters().freeOwned(Ring.TYPE_CHANNEL, entry);
                    String[] labels = {" full-waits", " drops", " skips", " corrupt"};
                    for (int i = 0; i < CHANNEL_COUNTERS; i++) {
                        ids[i] = segment.counters().allocate(Ring.TYPE_CHANNEL, entry, name + labels[i]);
                    }
                    RingDescriptor.format(memory, options.capacity(), options.slotSize(), options.maxGroups(), flags,
                            options.initialSequence(), ids);
                    return new long[] {offset, length};
                }));
        Directory.Entry entry = directory.entry(index);
        MemorySegment memory = segment.extents().map(entry.structureOffset(), entry.structureLength());
        RingDescriptor.validate(memory, name, options.capacity(), options.slotSize(), options.maxGroups(), flags);
        return new Channel(new Ring(memory, name, index, segment), options, segment);
    }

    /**
     * Maps the ring {@code left} ({offset, length}, from {@link Directory#leftStructure}) that a
     * declaration into the entry which died or failed part-way left there, when it has the length
     * this one needs (the same channel declared again, the usual case after a crash); {@code null}
     * otherwise, and then a new extent is appended. Untrusted: only a whole page-aligned range of
     * the published file, of exactly this length, that no declared structure uses.
     */
    private static MemorySegment leftRing(Segment segment, Directory directory, long[] left, long length) {
        if (left[1] != length || left[0] <= 0 || left[0] % SegmentDescriptor.EXTENT_ALIGNMENT != 0) {
            return null;
        }
        for (Directory.Entry other : directory.entries()) {
            if (other.structureLength() > 0 && left[0] < other.structureOffset() + other.structureLength()
                    && other.structureOffset() < left[0] + length) {
                return null; // damaged: it names a declared structure's memory
            }
        }
        try {
            return segment.extents().map(left[0], length);
        } catch (CorruptionException e) {
            return null;
        }
    }

    /**
     * Returns the channel's name.
     *
     * @return the name
     */
    public String name() {
        return ring.name;
    }

    /**
     * Returns the options this process declared the channel with.
     *
     * @return the options
     */
    public ChannelOptions options() {
        return options;
    }

    /**
     * Returns the largest payload that travels inline in a ring slot.
     *
     * @return bytes
     */
    public int inlineCapacity() {
        return ring.inlineCapacity();
    }

    // ---------------------------------------------------------------- sending

    /**
     * Sends a whole array.
     *
     * @param payload the bytes
     * @return the outcome
     */
    public SendOutcome send(byte[] payload) {
        return send(MemorySegment.ofArray(payload), 0, payload.length);
    }

    /**
     * Sends {@code length} bytes of {@code source} from {@code offset}. Inline payloads allocate
     * nothing.
     *
     * @param source the payload's memory
     * @param offset where the payload starts
     * @param length its length (any size; above the largest pool class it goes through a memfd)
     * @return {@link SendOutcome#SENT}, or why not
     * @throws IllegalStateException when the channel is closed
     */
    public SendOutcome send(MemorySegment source, long offset, long length) {
        return send(source, offset, length, sendTimeoutNanos);
    }

    /**
     * Sends as {@link #send(MemorySegment, long, long)} does, waiting on a full ring (with
     * {@link Backpressure#BLOCK}) up to {@code timeout} instead of the channel's send timeout, as
     * {@code BlockingQueue.offer} does; 0 or less does not wait. {@code FAIL} and {@code DROP}
     * channels never wait.
     *
     * @param source the payload's memory
     * @param offset where the payload starts
     * @param length its length
     * @param timeout the longest wait for room
     * @param unit the timeout's unit
     * @return {@link SendOutcome#SENT}, or why not ({@link SendOutcome#TIMEOUT} once the wait is over)
     * @throws IllegalStateException when the channel is closed
     */
    public SendOutcome send(MemorySegment source, long offset, long length, long timeout, TimeUnit unit) {
        return send(source, offset, length, Math.max(0, unit.toNanos(timeout)));
    }

    /**
     * Sends one message whose payload is {@code headLength} bytes of {@code head} from offset 0
     * followed by {@code tailLength} bytes of {@code tail} from offset 0: what
     * {@link #send(MemorySegment, long, long, long, TimeUnit)} sends for the two put together, without
     * the caller copying them together first (an encoder's header bytes beside a large payload of
     * the application's: each part is copied once, into the slot, the pool slot or the memfd).
     *
     * @param head the first part's memory
     * @param headLength the first part's length
     * @param tail the second part's memory
     * @param tailLength the second part's length
     * @param timeout the longest wait for room, as in {@link #send(MemorySegment, long, long, long, TimeUnit)}
     * @param unit the timeout's unit
     * @return {@link SendOutcome#SENT}, or why not
     * @throws IllegalStateException when the channel is closed
     */
    public SendOutcome send(MemorySegment head, long headLength, MemorySegment tail, long tailLength, long timeout,
            TimeUnit unit) {
        if (tailLength < 0 || tailLength > tail.byteSize()) {
            throw new IndexOutOfBoundsException("payload tail length=" + tailLength + " outside a tail of "
                    + tail.byteSize() + " bytes");
        }
        return send(head, 0, headLength, tail, tailLength, Math.max(0, unit.toNanos(timeout)));
    }

    private SendOutcome send(MemorySegment source, long offset, long length, long timeoutNanos) {
        return send(source, offset, length, null, 0, timeoutNanos);
    }

    /**
     * The send: {@code headLength} bytes of {@code source} from {@code offset}, then, when {@code tail}
     * is not null, {@code tailLength} bytes of it from 0 (checked by the caller).
     */
    private SendOutcome send(MemorySegment source, long offset, long headLength, MemorySegment tail, long tailLength,
            long timeoutNanos) {
        if (closed) {
            throw new IllegalStateException("channel '" + ring.name + "' is closed");
        }
        if (headLength < 0 || offset < 0 || offset + headLength > source.byteSize()) {
            throw new IndexOutOfBoundsException("payload offset=" + offset + " length=" + headLength
                    + " outside a source of " + source.byteSize() + " bytes");
        }
        long length = tail == null ? headLength : headLength + tailLength;
        if (!pendingMemfds.isEmpty()) {
            reclaimMemfds();
        }
        if (length <= inlineCapacity) {
            long sequence = claim(timeoutNanos);
            if (sequence < 0) {
                return outcome(sequence);
            }
            long slot = ring.slot(sequence);
            // The slot's stores follow one another, from the mark (if any) to the publication: a
            // consumer spinning on the slot's line takes it from this core once, not once per store.
            boolean marked = markInline;
            if (marked) {
                begin(sequence, slot);
            }
            memory.set(ValueLayout.JAVA_LONG, slot + SLOT_TYPE_OFFSET, typeAndLength(INLINE, (int) length));
            VarHandle.storeStoreFence(); // no payload byte beside a previous lap's type, even for recovery
            try {
                MemorySegment.copy(source, offset, memory, slot + SLOT_BODY_OFFSET, headLength);
                if (tail != null) {
                    MemorySegment.copy(tail, 0, memory, slot + SLOT_BODY_OFFSET + headLength, tailLength);
                }
            } catch (RuntimeException e) { // the caller's memory failed (closed, or not ours to read)
                if (!marked) {
                    begin(sequence, slot); // the mark that abandon turns into a skip
                }
                abandon(sequence);
                throw e;
            }
            noteRef(sequence, false);
            return publish(sequence, slot) ? SendOutcome.SENT
                    : send(source, offset, headLength, tail, tailLength, timeoutNanos);
        }
        if (options.backpressure() != Backpressure.BLOCK && !roomNow()) {
            // Fail or drop before copying a large payload, not after: a caller that retries on FULL
            // would copy it again and again.
            return outcome(refuse());
        }
        if (length <= pool.largestSlotSize()) {
            long ref = pooledCopy(source, offset, headLength, tail, tailLength);
            if (ref < 0) {
                return SendOutcome.NO_BUFFER;
            }
            while (true) {
                long sequence = claim(timeoutNanos);
                if (sequence < 0) {
                    pool.free(ref);
                    return outcome(sequence);
                }
                long slot = ring.slot(sequence);
                begin(sequence, slot);
                // The release entry first: whoever frees the payload reads the reference there, stored
                // before the word says pending.
                long releaseAt = ring.releaseWord(sequence);
                ring.takeReleaseEntry(slot, sequence);
                memory.set(ValueLayout.JAVA_LONG, releaseAt + RingDescriptor.RELEASE_REF_OFFSET, ref);
                Ring.LONG.setRelease(memory, releaseAt, word(sequence, NO_PEER, PENDING));
                memory.set(ValueLayout.JAVA_LONG, slot + SLOT_BODY_OFFSET, ref);
                memory.set(ValueLayout.JAVA_LONG, slot + SLOT_BODY_OFFSET + 8, length);
                // The type last: a release of the previous lap trusts a pending word only beside a SLOT_REF.
                VarHandle.storeStoreFence();
                memory.set(ValueLayout.JAVA_INT, slot + SLOT_TYPE_OFFSET, SLOT_REF);
                noteRef(sequence, true);
                // From here the ring, not this process, holds the slot: its release word decides who frees it.
                pool.transfer(ref, SlotPoolDescriptor.NO_PEER);
                if (beforePoolPublish != null) {
                    beforePoolPublish.run();
                }
                if (publish(sequence, slot)) {
                    return SendOutcome.SENT;
                }
                // The slot was taken from this producer (damage): the pool slot is this process's again,
                // unless someone won its release word (and frees it) or freed it; then the payload goes
                // into another one. (A word another lap's producer overwrote names it no more.)
                boolean taken = !Ring.LONG.compareAndSet(memory, releaseAt, word(sequence, NO_PEER, PENDING),
                        word(sequence, NO_PEER, RELEASED)) && isTag((long) Ring.LONG.getVolatile(memory, releaseAt), sequence);
                if (taken || !pool.transfer(ref, me)) {
                    ref = pooledCopy(source, offset, headLength, tail, tailLength);
                    if (ref < 0) {
                        return SendOutcome.NO_BUFFER;
                    }
                }
            }
        }
        return sendMemfd(source, offset, headLength, tail, tailLength, timeoutNanos);
    }

    /** A pool slot of this process holding the payload, or a negative outcome of {@link SlotPool#allocate}. */
    private long pooledCopy(MemorySegment source, long offset, long headLength, MemorySegment tail, long tailLength) {
        long ref = pool.allocate(tail == null ? headLength : headLength + tailLength);
        if (ref < 0) {
            return ref;
        }
        MemorySegment data = pool.data(ref);
        try {
            MemorySegment.copy(source, offset, data, 0, headLength);
            if (tail != null) {
                MemorySegment.copy(tail, 0, data, headLength, tailLength);
            }
        } catch (RuntimeException e) { // the caller's memory failed: the slot goes back
            pool.free(ref);
            throw e;
        }
        return ref;
    }

    private SendOutcome sendMemfd(MemorySegment source, long offset, long headLength, MemorySegment tail,
            long tailLength, long timeoutNanos) {
        long length = tail == null ? headLength : headLength + tailLength;
        LeaseTable.Leased leased = leases.registerCopy("shm-" + ring.name + "-" + MEMFD_NAMES.incrementAndGet(), source,
                offset, headLength, tail, tailLength);
        if (leased == null) {
            return SendOutcome.NO_BUFFER; // found full before a memfd was made and filled
        }
        LeaseTable.Lease lease = leased.lease();
        MemfdBuffer buffer = leased.buffer();
        while (true) {
            long sequence = claim(timeoutNanos);
            if (sequence < 0) {
                leases.release(lease);
                buffer.close();
                return outcome(sequence);
            }
            long slot = ring.slot(sequence);
            begin(sequence, slot);
            memory.set(ValueLayout.JAVA_INT, slot + SLOT_BODY_OFFSET, lease.index());
            memory.set(ValueLayout.JAVA_INT, slot + SLOT_BODY_OFFSET + 4, lease.generation());
            memory.set(ValueLayout.JAVA_LONG, slot + SLOT_BODY_OFFSET + 8, length);
            memory.set(ValueLayout.JAVA_INT, slot + SLOT_TYPE_OFFSET, MEMFD_REF);
            noteRef(sequence, false);
            if (publish(sequence, slot)) {
                boolean kept;
                synchronized (pendingMemfds) {
                    kept = !memfdsClosed;
                    if (kept) {
                        pendingMemfds.add(new PendingMemfd(sequence, lease, buffer));
                    }
                }
                if (!kept) {
                    // The channel is closing: this one waits as close() does for the memfds it knows,
                    // up to the channel's send timeout (not the call's: as close() does), for the
                    // required groups, then ends its lease.
                    awaitGroupsPast(sequence, System.nanoTime() + sendTimeoutNanos);
                    leases.release(lease);
                    buffer.close();
                }
                return SendOutcome.SENT;
            }
        }
    }

    /** Waits, until {@code deadline}, for every required group to be done with {@code sequence}. */
    private void awaitGroupsPast(long sequence, long deadline) {
        // An interrupted thread waits too (parkNanos then returns at once): the message was sent, and
        // its readers need the memfd for as long as close() would keep it.
        while (System.nanoTime() - deadline < 0) {
            VarHandle.fullFence(); // as in reclaimMemfds
            long gating = ring.gating();
            if (gating != Long.MIN_VALUE && gating > sequence) {
                return;
            }
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
        }
    }

    /** Ends the leases of memfd payloads that every required group is done with. */
    private void reclaimMemfds() {
        // The fence of refreshGating, for the same reason: a group these reads miss starts past every
        // sequence published here, so no lease it will need is ended. (Not refreshGating itself: close
        // calls this from any thread, and the cache and the mark are the producer's.)
        VarHandle.fullFence();
        long gating = ring.gating();
        synchronized (pendingMemfds) {
            while (!pendingMemfds.isEmpty() && pendingMemfds.peek().sequence() < gating) {
                PendingMemfd done = pendingMemfds.poll();
                // The lease before the fd: a reader that still finds the lease after it opened the
                // fd opened this buffer (Subscription.deliverMemfd).
                leases.release(done.lease());
                done.buffer().close();
            }
        }
    }

    private static final long FULL = -1;
    private static final long DROPPED = -2;
    private static final long TIMEOUT = -3;

    private static SendOutcome outcome(long code) {
        return code == FULL ? SendOutcome.FULL : code == DROPPED ? SendOutcome.DROPPED : SendOutcome.TIMEOUT;
    }

    /**
     * Claims the next sequence: for several producers, by marking its slot as being written by this
     * peer; a single producer marks it (when it does, {@link #markInline}) in {@link #begin}, right
     * before its other stores. Returns the
     * sequence, or a negative code when the ring is full and the backpressure says so. The pool slot
     * of the slot's previous lap is freed first when nobody did.
     */
    private long claim(long timeoutNanos) {
        if (ring.singleProducer) {
            // The steady state of a single producer, small enough to be inlined into send: a slot of
            // its own previous lap, with room by the cached gating (claimSlowly's first round, too).
            long cursor = localCursor;
            if (cursor >= ownLapsFrom && cachedRoom(cursor)) {
                if (heldRef(cursor)) {
                    ring.releaseOnReuse(ring.slot(cursor), cursor - ring.capacity);
                }
                return cursor;
            }
        }
        return claimSlowly(timeoutNanos);
    }

    /** {@link #claim} when the ring may be full, other producers claim too, or the previous lap was not this producer's. */
    private long claimSlowly(long timeoutNanos) {
        long deadline = 0;
        boolean waited = false;
        Idler idler = null;
        Futex.Waiter waiter = null;
        while (true) {
            long cursor = ring.singleProducer ? localCursor : ring.cursor();
            long wrap = cursor - ring.capacity;
            boolean full = false;
            if (!cachedRoom(cursor)) {
                refreshGating();
                full = !hasRoom(cursor, gatingCache);
            }
            if (!full) {
                long slot = ring.slot(cursor);
                if (ring.singleProducer && cursor >= ownLapsFrom) {
                    // This channel published the previous lap itself, and there is room: the slot is free.
                    if (heldRef(cursor)) {
                        ring.releaseOnReuse(slot, wrap);
                    }
                    return cursor;
                }
                long previous = ring.header(slot);
                boolean free = isTag(previous, wrap) && (state(previous) == PUBLISHED || state(previous) == SKIP);
                if (ring.singleProducer) {
                    if (isTag(previous, cursor) && (state(previous) == PUBLISHED || state(previous) == SKIP)) {
                        // The producer before this one published this sequence (or turned it into a skip)
                        // and died before it moved the cursor over it: move the cursor on, and read the
                        // headers for a lap from there (that slot's last lap was not this channel's).
                        localCursor = cursor + 1;
                        ownLapsFrom = localCursor + ring.capacity;
                        Ring.LONG.setVolatile(memory, (long) CURSOR_OFFSET, localCursor);
                        ring.wakeConsumers();
                        continue;
                    }
                    if (free) {
                        ring.releaseOnReuse(slot, wrap);
                        return cursor;
                    }
                    // The previous lap is still being skipped by recovery, or the header is damaged.
                    if (heldPastLiveness(cursor, previous) && damagedAfterTimeout(previous, wrap, cursor)) {
                        if (takeDamaged(slot, previous, cursor)) {
                            return cursor;
                        }
                        continue; // the header changed meanwhile (recovery's skip): look again
                    }
                } else {
                    boolean damaged = !free && !isTag(previous, cursor)
                            && heldPastLiveness(cursor, previous) && damagedAfterTimeout(previous, wrap, cursor);
                    if (free || isTag(previous, cursor) || damaged) {
                        // Free, or claimed meanwhile (the cursor's compare-and-set fails), or damaged past the
                        // liveness timeout: then claim and take the slot (a damaged header at once, if unchanged).
                        if (Ring.LONG.compareAndSet(memory, (long) CURSOR_OFFSET, cursor, cursor + 1)
                                && takeClaimed(cursor, damaged, previous) == cursor) {
                            return cursor;
                        }
                        continue;
                    }
                    if (ring.cursor() != cursor) {
                        continue; // the header was read a lap or more after the cursor: look again
                    }
                }
                // Held by the previous lap: without a required group a producer may lap a slow writer.
                // The send waits for it as on a full ring, and ends as there (nothing is claimed yet);
                // damage that reads as a live peer's writer holds the slot for as long as that peer lives.
            }
            if (options.backpressure() != Backpressure.BLOCK) {
                return refuse();
            }
            long now = System.nanoTime();
            if (!waited) {
                waited = true;
                deadline = now + timeoutNanos;
                ring.count(FULL_WAITS);
                idler = new Idler(options.waitStrategy());
                waiter = options.waitStrategy() == WaitStrategy.BLOCKING ? new Futex.Waiter() : null;
            } else if (now - deadline >= 0) {
                return TIMEOUT;
            }
            // A full ring's waiter may sleep on the futex that consumers ring as they free room; a held
            // slot's only idles (nobody wakes a producer when a writer publishes).
            if (full && waiter != null && idler.shouldSleep()) {
                int seen = ring.sleepOnSpace();
                if (!hasRoom(cursor, ring.gating())) {
                    ring.awaitSpace(waiter, seen, Math.min(deadline - now, 10_000_000L));
                } else {
                    ring.awaitSpace(waiter, seen + 1, 1); // cancel: room appeared
                }
            } else {
                idler.idle();
            }
        }
    }

    /** {@code FULL}, or {@code DROPPED} (counted) for a {@code DROP} channel: a send that does not wait. */
    private long refuse() {
        if (options.backpressure() == Backpressure.DROP) {
            ring.count(DROPS);
            return DROPPED;
        }
        return FULL;
    }

    /**
     * Whether {@code header} has been in the way of {@code sequence}'s claim for longer than the
     * liveness timeout, unchanged, as this channel's producers saw it ({@link #held}, across sends).
     */
    private boolean heldPastLiveness(long sequence, long header) {
        Held h = held;
        long now = System.nanoTime();
        if (h == null || h.sequence() != sequence || h.header() != header) {
            held = new Held(sequence, header, now);
            return false;
        }
        return now - h.since() > livenessNanos;
    }

    /** {@link #takeClaimed}: the sequence was filled with a skip meanwhile; claim another. */
    static final long SKIPPED_MEANWHILE = -4;

    /**
     * Takes the slot of {@code cursor}, which this thread claimed (several producers), once the
     * previous lap is done with it: returns {@code cursor}, or {@link #SKIPPED_MEANWHILE} when the
     * sequence was filled with a skip while this thread stalled past the liveness timeout (and maybe
     * reused by later laps since: such a header is no damage; taken, it would lose that lap's message
     * and put this one behind every group). When {@code damaged}, the claim judged {@code judged}, the
     * slot's header, damaged past the liveness timeout: unchanged, it is taken at once.
     */
    long takeClaimed(long cursor, boolean damaged, long judged) {
        long slot = ring.slot(cursor);
        long wrap = cursor - ring.capacity;
        long blockedSince = 0;
        while (true) {
            long previous = ring.header(slot);
            if (damaged && previous == judged && takeDamaged(slot, previous, cursor)) {
                return cursor;
            }
            if (isTag(previous, wrap) && (state(previous) == PUBLISHED || state(previous) == SKIP)) {
                if (Ring.LONG.compareAndSet(memory, slot, previous, word(cursor, me, WRITING))) {
                    ring.releaseOnReuse(slot, wrap);
                    return cursor;
                }
            } else if (isTag(previous, cursor) || (!isTag(previous, wrap) && ring.isLaterLap(previous, cursor))) {
                return SKIPPED_MEANWHILE; // (the previous lap's slow writer, the common wait, reads no cursor)
            } else {
                // The previous lap's writer has not finished, or the header is damaged.
                if (blockedSince == 0) {
                    blockedSince = System.nanoTime();
                } else if (System.nanoTime() - blockedSince > livenessNanos
                        && damagedAfterTimeout(previous, wrap, cursor) && takeDamaged(slot, previous, cursor)) {
                    return cursor;
                }
                Thread.onSpinWait();
            }
        }
    }

    /**
     * Whether the previous lap's header of a slot, unchanged for the liveness timeout, is damage: as
     * {@link Ring#isDamaged} says, or a {@code WRITING} mark of that lap, whoever it names, once a
     * required group that was there when it was sent has finished it: such a message was published,
     * so nobody writes it any more. (Without one, a producer may lap a slow writer, whom it waits for;
     * a group that joined later says nothing, as it starts past sequences still being written.)
     */
    private boolean damagedAfterTimeout(long previous, long wrap, long cursor) {
        if (ring.isDamaged(previous, wrap, cursor)) {
            return true;
        }
        return isTag(previous, wrap) && state(previous) == WRITING && ring.finishedByARequiredGroup(wrap);
    }

    /**
     * Takes a slot whose header is damaged for {@code sequence}, counted as corrupt. The old lap's
     * fields are not trusted, so nothing it named is released.
     */
    private boolean takeDamaged(long slot, long previous, long sequence) {
        if (!Ring.LONG.compareAndSet(memory, slot, previous, word(sequence, me, WRITING))) {
            return false;
        }
        ring.countCorrupt("the slot of sequence " + sequence + " held a damaged header (0x"
                + Long.toHexString(previous) + ") past the liveness timeout; taken for this send");
        memory.set(ValueLayout.JAVA_INT, slot + SLOT_TYPE_OFFSET, NONE);
        return true;
    }

    /**
     * Marks a claimed slot as being written, before any other store into it: a single producer's
     * mark (several producers marked it when they claimed). Optional groups, which read a slot that
     * may be written again, see the mark before the new lap's bytes; recovery sees that the slot
     * was being written. The slot's type is not reset: recovery frees a {@code SLOT_REF} only when
     * its release word names the slot's own sequence as pending. An inline message goes unmarked
     * while no group may be lapped ({@link #markInline}): a producer that dies while writing it
     * leaves the previous lap's header at the cursor, which every reader takes for nothing yet.
     */
    private void begin(long sequence, long slot) {
        if (ring.singleProducer) {
            Ring.LONG.setOpaque(memory, slot, word(sequence, me, WRITING));
            VarHandle.storeStoreFence();
        }
    }

    /** Whether the next sequence could be claimed now (a hint: a racing producer may take it). */
    private boolean roomNow() {
        long cursor = ring.singleProducer ? localCursor : ring.cursor();
        if (cachedRoom(cursor)) {
            return true;
        }
        refreshGating();
        return hasRoom(cursor, gatingCache);
    }

    /**
     * Reads the gating sequence into {@link #gatingCache} and, for a single producer, whether its
     * inline slots need their mark until the next read ({@link #markInline}): they do unless a
     * required group gates it and no group may be lapped.
     *
     * <p>The fence orders this producer's cursor stores (or, before its first, its read of the
     * cursor when it opened the channel, which the producer before it stored) before its reads of the
     * groups, as a joining group's state store comes before its read of the cursor (its start). So a
     * group these reads miss starts at or after the cursor read here ({@code reached}; several
     * producers read the shared cursor, before the groups). Until the cache runs out, which takes at
     * most a lap past a cache never above the cursor (a group's done, or {@code reached}), the
     * producer overwrites no message from that start on, and the next read sees the group: a required
     * group gates it from its start, and an optional one is never lapped unmarked. Without a required
     * group, the cache is {@code reached}: as if a group were done up to there.
     */
    private void refreshGating() {
        VarHandle.fullFence();
        long reached = ring.singleProducer ? localCursor : ring.cursor();
        long gating = ring.gating();
        boolean gated = gating != Long.MIN_VALUE && gating != Long.MAX_VALUE;
        gatingCache = gating == Long.MAX_VALUE ? reached : gating;
        if (ring.singleProducer) {
            markInline = !gated || ring.mayBeLapped();
        }
    }

    /**
     * Whether the cached gating sequence lets {@code cursor} be claimed: a group's done only moves
     * forward and a group that joins starts at or after the cache ({@link #refreshGating}), so the
     * cache stays conservative for a lap.
     */
    private boolean cachedRoom(long cursor) {
        return hasRoom(cursor, gatingCache);
    }

    /** Whether sequence {@code cursor} may be claimed with the groups at {@code gating}. */
    private boolean hasRoom(long cursor, long gating) {
        if (gating == Long.MIN_VALUE) {
            return false; // unknown: a group is joining
        }
        return gating == Long.MAX_VALUE || Ring.freeSlots(ring.capacity, cursor - 1, gating - 1) > 0;
    }

    /**
     * Gives up a claimed sequence whose payload could not be written: it becomes a skip record
     * (counted), so that no consumer waits for a slot that a live producer will never publish.
     */
    private void abandon(long sequence) {
        if (ring.fillSkip(sequence, word(sequence, me, WRITING))) {
            ring.count(SKIPS);
            noteRef(sequence, false);
        }
        if (ring.singleProducer) {
            localCursor = sequence + 1;
            Ring.LONG.setVolatile(memory, (long) CURSOR_OFFSET, sequence + 1);
        }
        ring.wakeConsumers();
    }

    /** Records, for a single producer, whether {@code sequence}'s slot now holds a {@code SLOT_REF}. */
    private void noteRef(long sequence, boolean ref) {
        if (refSlots != null && heldRef(sequence) != ref) {
            int index = (int) (sequence & (ring.capacity - 1));
            refSlots[index >>> 6] ^= 1L << index;
            refsHeld += ref ? 1 : -1;
        }
    }

    private boolean heldRef(long sequence) {
        if (refsHeld == 0) {
            return false;
        }
        int index = (int) (sequence & (ring.capacity - 1));
        return (refSlots[index >>> 6] & (1L << index)) != 0;
    }

    /**
     * Publishes; false when recovery took the slot meanwhile. The groups' claim words need no
     * store: a word of an earlier lap already says the message is open.
     */
    private boolean publish(long sequence, long slot) {
        if (ring.singleProducer) {
            // Release suffices for the header (consumers acquire it) and the cursor. Only when a
            // subscription may sleep is the cursor's store volatile: that fence orders the
            // publication before wakeConsumers reads the sleepers (the sleeper's side is its
            // increment of them). Without sleepers, no fence: the stores drain while the next
            // message is written.
            Ring.LONG.setRelease(memory, slot, word(sequence, me, PUBLISHED));
            localCursor = sequence + 1;
            if (!ring.mayHaveSleepers()) {
                Ring.LONG.setRelease(memory, (long) CURSOR_OFFSET, sequence + 1);
                return true;
            }
            Ring.LONG.setVolatile(memory, (long) CURSOR_OFFSET, sequence + 1);
        } else if (!Ring.LONG.compareAndSet(memory, slot, word(sequence, me, WRITING), word(sequence, me, PUBLISHED))) {
            return false;
        }
        ring.wakeConsumers();
        return true;
    }

    // ---------------------------------------------------------------- receiving

    /**
     * Joins a consumer group as a {@link SubscriptionMode#SHARED} member, creating the group (starting
     * at the current end of the ring) if this is its first member anywhere. Every group receives every
     * message sent after it was created; the members of a group, in this and other processes, compete
     * for its messages.
     *
     * @param group the group's name, at most 48 UTF-8 bytes
     * @param required whether the group gates producers (nothing is lost for it) or may be
     *     overrun (and counts what it lost)
     * @return the subscription, for one thread
     * @throws ChannelException {@code GROUPS_FULL}; {@code LAYOUT_MISMATCH} when the group exists
     *     with the other {@code required}; {@code GROUP_BUSY} when an exclusive member held the group
     *     for the liveness timeout
     */
    public Subscription subscribe(String group, boolean required) {
        if (closed) {
            throw new IllegalStateException("channel '" + ring.name + "' is closed");
        }
        return subscribe(group, required, SubscriptionMode.SHARED);
    }

    /**
     * Joins a consumer group as {@link #subscribe(String, boolean)} does, sharing it with its other
     * members or holding it exclusively. A join that finds the group held by an exclusive member (or,
     * for an exclusive join, with any member) waits up to the segment's liveness timeout for it to be
     * free: the member of a process that died is removed by recovery within that time.
     *
     * @param group the group's name, at most 48 UTF-8 bytes
     * @param required whether the group gates producers or may be overrun
     * @param mode {@link SubscriptionMode#SHARED} to compete with other members,
     *     {@link SubscriptionMode#EXCLUSIVE} to be the group's only member (and take the cheapest path)
     * @return the subscription, for one thread
     * @throws ChannelException {@code GROUPS_FULL}; {@code LAYOUT_MISMATCH} when the group exists with
     *     the other {@code required}; {@code GROUP_BUSY} when the group stayed held, or (exclusive)
     *     kept other members, for the liveness timeout
     */
    public Subscription subscribe(String group, boolean required, SubscriptionMode mode) {
        if (closed) {
            throw new IllegalStateException("channel '" + ring.name + "' is closed");
        }
        boolean exclusive = mode == SubscriptionMode.EXCLUSIVE;
        int g = ring.joinGroup(group, required, exclusive);
        return new Subscription(ring, g, required, exclusive, options.waitStrategy());
    }

    /**
     * Creates a consumer group without joining it, unless it exists: every message sent from here on
     * is kept for the group, and a member that joins it later, in this or another process, starts at
     * the first message it has not done. A consumer that will subscribe only once it is ready (after
     * the producers of its own process started, for one) declares its group first so that it misses
     * nothing sent in between (a payload in a memfd only while its sender lives and keeps its channel
     * open, as for any group). Like a group that lost its members, a required group declared and
     * never joined gates producers while the segment exists: the ring fills and they wait.
     *
     * @param group the group's name, at most 48 UTF-8 bytes
     * @param required whether the group gates producers (nothing is lost for it) or may be overrun
     * @throws ChannelException {@code GROUPS_FULL}; {@code LAYOUT_MISMATCH} when the group exists
     *     with the other {@code required}
     */
    public void declareGroup(String group, boolean required) {
        if (closed) {
            throw new IllegalStateException("channel '" + ring.name + "' is closed");
        }
        ring.createGroup(group, required);
    }

    // ---------------------------------------------------------------- state

    /**
     * One consumer group's state.
     *
     * @param name the group
     * @param required whether it gates producers
     * @param members peers subscribed now
     * @param exclusive whether an exclusive member holds the group ({@link SubscriptionMode#EXCLUSIVE})
     * @param start its first sequence
     * @param done every sequence below it is done by the group
     * @param consumed messages done (skips included)
     * @param lag messages published or claimed that the group has not done
     * @param redeliveries messages handed back after a member died with them
     * @param lost messages the group lost (overrun, or a payload gone with its dead sender)
     */
    public record GroupStats(String name, boolean required, int members, boolean exclusive, long start, long done,
                             long consumed, long lag,
                             long redeliveries, long lost) {
    }

    /**
     * The channel's state, read from shared memory: it covers every process.
     *
     * @param name the channel
     * @param capacity ring slots
     * @param slotSize bytes per slot
     * @param cursor the next sequence to claim
     * @param published sequences claimed since the ring was created (skips included)
     * @param occupancy slots the slowest required group has not done
     * @param fullWaits sends that found the ring full and waited
     * @param drops sends dropped because the ring was full
     * @param skips holes a dead producer left, filled with skip records
     * @param corrupt damaged slots and references met and skipped
     * @param groups the consumer groups
     */
    public record Stats(String name, int capacity, int slotSize, long cursor, long published, long occupancy,
                        long fullWaits, long drops, long skips, long corrupt, List<GroupStats> groups) {
    }

    /**
     * Reads the channel's state.
     *
     * @return the state
     */
    public Stats stats() {
        return stats(ring);
    }

    /**
     * Reads the state of a channel of a segment seen from outside, without attaching (what the
     * {@code stat} command prints). The ring is validated against its directory entry first.
     *
     * @param inspector the segment, open read-only
     * @param entry the channel's directory entry
     * @return the state
     * @throws ChannelException when the ring does not match its entry, or the entry's parameters
     *     are out of range
     */
    public static Stats inspect(SegmentInspector inspector, Directory.Entry entry) {
        checkEntry(entry);
        long[] p = entry.params();
        MemorySegment memory = inspector.structure(entry);
        RingDescriptor.validate(memory, entry.name(), (int) p[0], (int) p[1], (int) p[2], (int) p[3]);
        return stats(new Ring(memory, entry.name(), inspector.counters()));
    }

    /**
     * Reads the state of any channel of an attached segment, declared here or by another process
     * (for metrics and endpoints that list every channel). Allocates a view per call: not for a
     * hot path.
     *
     * @param segment the segment
     * @param entry the channel's directory entry
     * @return the state
     * @throws ChannelException when the ring does not match its entry, or the entry's parameters
     *     are out of range
     */
    public static Stats inspect(Segment segment, Directory.Entry entry) {
        checkEntry(entry);
        long[] p = entry.params();
        MemorySegment memory = segment.extents().map(entry.structureOffset(), entry.structureLength()).asReadOnly();
        RingDescriptor.validate(memory, entry.name(), (int) p[0], (int) p[1], (int) p[2], (int) p[3]);
        return stats(new Ring(memory, entry.name(), segment.counters()));
    }

    private static void checkEntry(Directory.Entry entry) {
        long[] p = entry.params();
        if (entry.type() != DirectoryDescriptor.CHANNEL || p.length != PARAM_NAMES.length
                || p[0] < 1 || p[0] > Integer.MAX_VALUE || p[1] < 1 || p[1] > Integer.MAX_VALUE || p[2] < 1
                || p[2] > MAX_GROUPS || p[3] < 0 || p[3] > Integer.MAX_VALUE) {
            throw new ChannelException(ChannelException.Reason.LAYOUT_MISMATCH, "directory entry '" + entry.name()
                    + "' is not a channel with parameters in range: " + java.util.Arrays.toString(p));
        }
    }

    static Stats stats(Ring ring) {
        long cursor = ring.cursor();
        List<GroupStats> groups = new ArrayList<>();
        long minDone = cursor;
        for (int g = 0; g < ring.maxGroups; g++) {
            if (ring.groupState(g) != GROUP_ACTIVE) {
                continue;
            }
            long start = ring.start(g);
            long done = ring.done(g);
            if (start == Ring.UNSET || done == Ring.UNSET) {
                continue;
            }
            if (ring.isRequired(g)) {
                minDone = Math.min(minDone, done);
            }
            groups.add(new GroupStats(ring.groupName(g), ring.isRequired(g), ring.memberCount(g),
                    ring.holder(g) != Ring.NO_HOLDER, start, done,
                    done - start, Math.max(0, cursor - done), ring.groupCounter(g, GROUP_REDELIVERIES_OFFSET),
                    ring.groupCounter(g, GROUP_LOST_OFFSET)));
        }
        return new Stats(ring.name, ring.capacity, ring.slotSize, cursor, cursor - ring.initialSequence(),
                Math.max(0, cursor - minDone), ring.counter(FULL_WAITS), ring.counter(DROPS), ring.counter(SKIPS),
                ring.counter(CORRUPT), List.copyOf(groups));
    }

    /**
     * Stops sending. Memfd payloads that a required group has not read yet stay leased until every
     * required group is done with them or the timeout passes; then their buffers are closed.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        synchronized (pendingMemfds) {
            memfdsClosed = true; // a send that publishes from here on waits for its memfd's readers itself
        }
        long deadline = System.nanoTime() + sendTimeoutNanos;
        while (!pendingMemfds.isEmpty() && System.nanoTime() - deadline < 0) {
            reclaimMemfds();
            if (!pendingMemfds.isEmpty()) {
                java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
            }
        }
        synchronized (pendingMemfds) {
            for (PendingMemfd pending : pendingMemfds) {
                leases.release(pending.lease());
                pending.buffer().close();
            }
            pendingMemfds.clear();
        }
    }
}
