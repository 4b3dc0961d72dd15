package dev.shm.core.ring;

import static dev.shm.core.ring.RingDescriptor.*;

import dev.shm.core.CorruptionException;
import dev.shm.core.counters.Counters;
import dev.shm.core.counters.SegmentCounters;
import dev.shm.core.internal.Futex;
import dev.shm.core.internal.Utf8;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.pool.SlotPoolDescriptor;
import dev.shm.core.segment.Segment;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.HashMap;
import java.util.Map;

/**
 * The shared state of one ring, as mapped by one process: what producers, subscriptions and
 * recovery do to it. See {@link RingDescriptor} for the layout and {@code docs/architecture.md}
 * for the protocol.
 */
final class Ring {

    static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();
    static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();
    /** A group's start, done and next while it joins. */
    static final long UNSET = Long.MAX_VALUE;

    final MemorySegment memory;
    final MemorySegment readOnly;
    final String name;
    final int capacity;
    final long mask;
    final int slotSize;
    final int maxGroups;
    final int headerLength;
    /** Where the claim words start (after the slots). */
    final long claims;
    /** Where the release entries start (after the claim words). */
    final long releases;
    final boolean singleProducer;
    final Segment segment;
    final SlotPool pool;
    final Counters counters;
    final int me;
    /** The segment's liveness timeout: the longest a live peer's release word may stand (0 when read from outside). */
    private final long livenessNanos;
    /**
     * How long recovery waits on a running peer's release (half a heartbeat interval): recovery runs on
     * the monitor thread, which also writes this process's heartbeat.
     */
    private final long recoveryPatienceNanos;
    /**
     * For tests: run by {@link #release} between winning a release word and reading the reference
     * beside it (ChannelTest). Null otherwise.
     */
    Runnable releaseWonHook;
    /** The channel's directory entry: with the group's index, the owner of the group's counters. */
    private final int entry;
    private final int[] counterIds = new int[CHANNEL_COUNTERS];
    private final MemorySegment dataFutex;
    private final MemorySegment spaceFutex;

    Ring(MemorySegment memory, String name, int entry, Segment segment) {
        this(memory, name, entry, segment, segment.slotPool(), segment.counters(), segment.peerId());
    }

    /** A ring seen from outside (read-only, no segment attached): only its state can be read. */
    Ring(MemorySegment memory, String name, Counters counters) {
        this(memory, name, -1, null, null, counters, NO_PEER);
    }

    private Ring(MemorySegment memory, String name, int entry, Segment segment, SlotPool pool, Counters counters,
                 int me) {
        this.memory = memory;
        this.readOnly = memory.asReadOnly();
        this.name = name;
        this.entry = entry;
        this.capacity = memory.get(ValueLayout.JAVA_INT, CAPACITY_OFFSET);
        this.mask = capacity - 1;
        this.slotSize = memory.get(ValueLayout.JAVA_INT, SLOT_SIZE_OFFSET);
        this.maxGroups = memory.get(ValueLayout.JAVA_INT, MAX_GROUPS_OFFSET);
        this.headerLength = memory.get(ValueLayout.JAVA_INT, HEADER_LENGTH_OFFSET);
        this.claims = claimsOffset(capacity, slotSize, maxGroups);
        this.releases = releasesOffset(capacity, slotSize, maxGroups);
        this.singleProducer = (memory.get(ValueLayout.JAVA_INT, FLAGS_OFFSET) & FLAG_SINGLE_PRODUCER) != 0;
        this.segment = segment;
        this.livenessNanos = segment == null ? 0 : segment.options().livenessTimeout().toNanos();
        this.recoveryPatienceNanos = segment == null ? 0 : segment.options().heartbeatInterval().toNanos() / 2;
        this.pool = pool;
        this.counters = counters;
        this.me = me;
        for (int i = 0; i < CHANNEL_COUNTERS; i++) {
            counterIds[i] = memory.get(ValueLayout.JAVA_INT, COUNTER_IDS_OFFSET + 4L * i);
        }
        this.dataFutex = memory.asSlice(DATA_FUTEX_OFFSET, 4);
        this.spaceFutex = memory.asSlice(SPACE_FUTEX_OFFSET, 4);
    }

    /** A group's state word: {@code [epoch:32][owner:16][state:16]}, like the segment's tables. */
    private static final int NO_OWNER = 0xFFFF;

    static long groupWord(int epoch, int owner, int state) {
        return ((long) epoch << 32) | ((long) (owner & 0xFFFF) << 16) | (state & 0xFFFF);
    }

    private static int groupEpoch(long word) {
        return (int) (word >>> 32);
    }

    private static int groupOwner(long word) {
        return (int) ((word >>> 16) & 0xFFFF);
    }

    private static int groupStateOf(long word) {
        return (int) (word & 0xFFFF);
    }

    // ---------------------------------------------------------------- slots and sequences

    /**
     * The Disruptor's free-slot arithmetic, as disruptor-mp states it: with {@code producer} the
     * highest sequence claimed and {@code highestRead} the highest every gating group has done, a
     * producer may claim this many more. (In this ring's terms: done + capacity - cursor.)
     */
    static long freeSlots(int capacity, long producer, long highestRead) {
        return highestRead - (producer - capacity);
    }

    long slot(long sequence) {
        return headerLength + (sequence & mask) * slotSize;
    }

    /** Where group {@code g}'s claim word for {@code sequence}'s slot lives. */
    long claim(int g, long sequence) {
        return claims + 8 * ((long) g * capacity + (sequence & mask));
    }

    /**
     * Where the release entry of the {@code SLOT_REF} frame of {@code sequence}'s slot lives: its word,
     * then, {@link RingDescriptor#RELEASE_REF_OFFSET} on, the pool slot reference it frees.
     */
    long releaseWord(long sequence) {
        return releases + RELEASE_ENTRY_LENGTH * (sequence & mask);
    }

    long header(long slot) {
        return (long) LONG.getAcquire(memory, slot);
    }

    long cursor() {
        return (long) LONG.getVolatile(memory, (long) CURSOR_OFFSET);
    }

    long initialSequence() {
        return memory.get(ValueLayout.JAVA_LONG, INITIAL_SEQUENCE_OFFSET);
    }

    int inlineCapacity() {
        return slotSize - SLOT_BODY_OFFSET;
    }

    void count(int counter) {
        int id = counterIds[counter];
        if (id >= 0 && id < counters.capacity()) {
            counters.increment(id);
        }
    }

    long counter(int counter) {
        int id = counterIds[counter];
        return id >= 0 && id < counters.capacity() ? counters.get(id) : 0;
    }

    // ---------------------------------------------------------------- groups

    long group(int g) {
        return GROUPS_OFFSET + (long) g * GROUP_LENGTH;
    }

    int groupState(int g) {
        return groupStateOf((long) LONG.getAcquire(memory, group(g) + GROUP_STATE_OFFSET));
    }

    boolean isRequired(int g) {
        return (memory.get(ValueLayout.JAVA_INT, group(g) + GROUP_FLAGS_OFFSET) & GROUP_REQUIRED) != 0;
    }

    long done(int g) {
        return (long) LONG.getVolatile(memory, group(g) + GROUP_DONE_OFFSET);
    }

    long start(int g) {
        return (long) LONG.getVolatile(memory, group(g) + GROUP_START_OFFSET);
    }

    /**
     * Whether a required group that was there when {@code sequence} was sent (it started at or
     * before it) has finished it: the message was published (or skipped), since a group's done moves
     * only over those. A group that joined later starts at the cursor it found, which may be past a
     * sequence still being written, so its done says nothing of earlier ones.
     */
    boolean finishedByARequiredGroup(long sequence) {
        for (int g = 0; g < maxGroups; g++) {
            if (groupState(g) == GROUP_ACTIVE && isRequired(g)) {
                long start = start(g);
                long done = done(g);
                if (start != UNSET && done != UNSET && start <= sequence && sequence < done) {
                    return true;
                }
            }
        }
        return false;
    }

    String groupName(int g) {
        long at = group(g);
        return Utf8.read(memory, at + GROUP_NAME_OFFSET, memory.get(ValueLayout.JAVA_INT, at + GROUP_NAME_LENGTH_OFFSET),
                GROUP_NAME_CAPACITY);
    }

    /**
     * The lowest sequence a required group still needs: producers may reuse a slot whose previous
     * sequence is below it. {@link Long#MIN_VALUE} while a group joins (its start is not known yet);
     * {@link Long#MAX_VALUE} when no group is required.
     */
    long gating() {
        long min = Long.MAX_VALUE;
        for (int g = 0; g < maxGroups; g++) {
            int state = groupState(g);
            if (state == GROUP_JOINING) {
                return Long.MIN_VALUE;
            }
            if (state == GROUP_ACTIVE && isRequired(g)) {
                long done = done(g);
                if (done == UNSET) {
                    return Long.MIN_VALUE;
                }
                min = Math.min(min, done);
            }
        }
        return min;
    }

    /**
     * Whether a group exists that producers may lap: an optional group, or one joining (whose kind a
     * producer does not know yet).
     */
    boolean mayBeLapped() {
        for (int g = 0; g < maxGroups; g++) {
            int state = groupState(g);
            if (state == GROUP_JOINING || (state == GROUP_ACTIVE && !isRequired(g))) {
                return true;
            }
        }
        return false;
    }

    /** What {@link #tryJoin} returns while the group is held by another member (or has members, for an exclusive join). */
    private static final int BUSY = -1;

    /**
     * Joins the group of that name as a member of this process, creating it (starting at the
     * current cursor) if it does not exist. Groups outlive their members: a required group keeps
     * gating producers while it has none. A join that finds the group held by an exclusive member
     * (or, when {@code exclusive}, with any member) waits for it to be free, up to the segment's
     * liveness timeout: a member whose process died is removed by recovery within that time.
     *
     * @return the group's index
     */
    int joinGroup(String groupName, boolean required, boolean exclusive) {
        if (!isGroupName(groupName)) {
            throw new IllegalArgumentException("a group name holds 1 to " + GROUP_NAME_CAPACITY
                    + " UTF-8 bytes and no control character; group=" + groupName);
        }
        long deadline = System.nanoTime() + segment.options().livenessTimeout().toNanos();
        while (true) {
            int g = segment.withDirectoryLock(() -> tryJoin(groupName, required, exclusive, true));
            if (g != BUSY) {
                return g;
            }
            if (System.nanoTime() - deadline >= 0) {
                int found = findGroup(groupName);
                throw new ChannelException(ChannelException.Reason.GROUP_BUSY, "group '" + groupName + "' of channel '"
                        + name + "' " + (found >= 0 && holder(found) != NO_HOLDER
                                ? "is held by the exclusive member of peer " + (holder(found) - 1)
                                : "has " + (found >= 0 ? memberCount(found) : 0) + " member(s)")
                        + (exclusive ? "; an exclusive subscription needs the group to itself" : "")
                        + ": close the other subscription, or subscribe with SubscriptionMode.SHARED on every member");
            }
            java.util.concurrent.locks.LockSupport.parkNanos(10_000_000L);
        }
    }

    /**
     * Creates the group of that name, starting at the current cursor, unless it exists; joins
     * nothing. From here on every message sent is kept for the group (a required one gates producers)
     * until a member, of any process, joins it and reads them.
     *
     * @return the group's index
     */
    int createGroup(String groupName, boolean required) {
        if (!isGroupName(groupName)) {
            throw new IllegalArgumentException("a group name holds 1 to " + GROUP_NAME_CAPACITY
                    + " UTF-8 bytes and no control character; group=" + groupName);
        }
        return segment.withDirectoryLock(() -> tryJoin(groupName, required, false, false));
    }

    /** The active group of that name, or -1. */
    private int findGroup(String groupName) {
        for (int g = 0; g < maxGroups; g++) {
            if (groupState(g) == GROUP_ACTIVE && groupName.equals(groupName(g))) {
                return g;
            }
        }
        return -1;
    }

    /**
     * {@link #joinGroup}'s step under the directory lock: joins (membership included), or
     * {@link #BUSY}; with {@code join} false, {@link #createGroup}'s: the group, found or created,
     * without a member.
     */
    private int tryJoin(String groupName, boolean required, boolean exclusive, boolean join) {
        // One joiner at a time per segment, so a name is never created twice, and the check for an
        // exclusive holder (or for members) and the join are one step.
        int free = -1;
        for (int g = 0; g < maxGroups; g++) {
            int state = groupState(g);
            if (state == GROUP_JOINING) {
                finishJoin(g); // its joiner died half-way (we hold the lock)
                state = GROUP_ACTIVE;
            }
            if (state == GROUP_ACTIVE && groupName.equals(groupName(g))) {
                if (isRequired(g) != required) {
                    throw new ChannelException(ChannelException.Reason.LAYOUT_MISMATCH, "group '" + groupName
                            + "' of channel '" + name + "' exists with required=" + isRequired(g)
                            + "; this process " + (join ? "subscribes" : "declares it") + " with required="
                            + required);
                }
                if (!join) {
                    return g;
                }
                long holderWord = (long) LONG.getVolatile(memory, group(g) + GROUP_HOLDER_OFFSET);
                int holder = holder(holderWord);
                if (holder != NO_HOLDER && writerGone(holder - 1)) {
                    // Names no attached peer: recovery frees a dead holder's group before the peer's entry
                    // empties, so this word was damaged, unless that recovery cleared it since it was read
                    // (nobody else sets a hold: that takes the directory lock, which this peer holds).
                    if (LONG.compareAndSet(memory, group(g) + GROUP_HOLDER_OFFSET, holderWord, (long) NO_HOLDER)) {
                        countCorrupt("group '" + groupName + "' was held by peer " + (holder - 1)
                                + ", which is not attached; the hold was cleared");
                    }
                    holder = holder(g);
                }
                if (holder == me + 1 || (exclusive && isMember(g, me))) {
                    throw new ChannelException(ChannelException.Reason.GROUP_BUSY, "this process already has "
                            + (holder == me + 1 ? "the exclusive" : "a") + " subscription to group '" + groupName
                            + "' of channel '" + name + "'" + (exclusive ? "; an exclusive subscription needs the"
                            + " group to itself" : "") + ": close it first, or subscribe with SubscriptionMode.SHARED");
                }
                if (holder != NO_HOLDER || (exclusive && memberCount(g) > 0)) {
                    return BUSY;
                }
                return member(g, exclusive);
            }
            if (state == GROUP_EMPTY && free < 0) {
                free = g;
            }
        }
        if (free < 0) {
            throw new ChannelException(ChannelException.Reason.GROUPS_FULL, "channel '" + name + "' has "
                    + maxGroups + " consumer groups already; declare it with more maxGroups");
        }
        long at = group(free);
        long word = (long) LONG.getAcquire(memory, at + GROUP_STATE_OFFSET);
        int epoch = groupEpoch(word) + 1;
        LONG.setVolatile(memory, at + GROUP_START_OFFSET, UNSET);
        LONG.setVolatile(memory, at + GROUP_DONE_OFFSET, UNSET);
        LONG.setVolatile(memory, at + GROUP_NEXT_OFFSET, UNSET);
        // Every claim word of a sequence before any the group will read: each message is open to it
        // (the words may hold an earlier group's, from any distance back).
        long before = word(cursor() - 1, NO_PEER, DONE);
        for (long i = 0; i < capacity; i++) {
            LONG.setOpaque(memory, claim(free, i), before);
        }
        memory.set(ValueLayout.JAVA_INT, at + GROUP_FLAGS_OFFSET, required ? GROUP_REQUIRED : 0);
        memory.set(ValueLayout.JAVA_INT, at + GROUP_NAME_LENGTH_OFFSET,
                Utf8.write(memory, at + GROUP_NAME_OFFSET, groupName, GROUP_NAME_CAPACITY));
        for (int i = 0; i < 4; i++) {
            memory.set(ValueLayout.JAVA_LONG, at + GROUP_MEMBERS_OFFSET + 8L * i, 0L);
        }
        LONG.setVolatile(memory, at + GROUP_HOLDER_OFFSET, (long) NO_HOLDER);
        // A joiner that died before its JOINING store below may have allocated this entry's counters:
        // the entry is still empty, so they are nobody's.
        long owner = groupCounterOwner(entry, free);
        counters.freeOwned(TYPE_GROUP, owner);
        memory.set(ValueLayout.JAVA_INT, at + GROUP_REDELIVERIES_OFFSET,
                counters.allocate(TYPE_GROUP, owner, name + "/" + groupName + " redelivered"));
        memory.set(ValueLayout.JAVA_INT, at + GROUP_LOST_OFFSET,
                counters.allocate(TYPE_GROUP, owner, name + "/" + groupName + " lost"));
        LONG.setVolatile(memory, at + GROUP_STATE_OFFSET, groupWord(epoch, me, GROUP_JOINING));
        finishJoin(free);
        return join ? member(free, exclusive) : free;
    }

    /**
     * Completes a join: the group starts at the cursor read after it became visible as joining, so
     * every producer that claims a sequence from there on sees the group (and waits for its start).
     * On a single-producer ring it starts past the messages at the cursor that are published already:
     * a single producer publishes before it moves the cursor, so the cursor may lag its last
     * publications, and the groups may have finished those and freed their pool payloads without
     * seeing this group (they read the groups before it joined); started there, it would count them
     * lost. They were sent before it joined.
     */
    private void finishJoin(int g) {
        long at = group(g);
        long start = cursor();
        if (singleProducer) {
            for (long limit = start + capacity; start < limit && isSent(header(slot(start)), start); ) {
                start++;
            }
        }
        LONG.setVolatile(memory, at + GROUP_START_OFFSET, start);
        LONG.setVolatile(memory, at + GROUP_NEXT_OFFSET, start);
        LONG.setVolatile(memory, at + GROUP_DONE_OFFSET, start);
        long word = (long) LONG.getAcquire(memory, at + GROUP_STATE_OFFSET);
        LONG.setVolatile(memory, at + GROUP_STATE_OFFSET,
                groupWord(groupEpoch(word), NO_OWNER, GROUP_ACTIVE));
        // A group that finished a pool payload while this one was joining left its release to later
        // (releaseIfDone): this group starts after it, so decide now, not a lap later.
        releaseFinished(start);
    }

    /** Whether header {@code h} says that {@code sequence} is published or skipped. */
    private static boolean isSent(long h, long sequence) {
        return isTag(h, sequence) && (state(h) == PUBLISHED || state(h) == SKIP);
    }

    /** Frees the pool slots of the {@code SLOT_REF} messages of the last lap below {@code cursor} that every group is done with. */
    private void releaseFinished(long cursor) {
        long low = Math.max(cursor - capacity, initialSequence());
        for (long sequence = low; sequence < cursor; sequence++) {
            long slot = slot(sequence);
            // Published: a producer still writing the sequence (its header bears the tag too, the type
            // may be the previous lap's) may have stored its release word, yet not handed the pool slot
            // to the ring, nor published the message for groups that joined later or are optional.
            long h = header(slot);
            if (isTag(h, sequence) && state(h) == PUBLISHED
                    && memory.get(ValueLayout.JAVA_INT, slot + SLOT_TYPE_OFFSET) == SLOT_REF) {
                releaseIfDone(sequence);
            }
        }
    }

    /** Counter type of group counters; channel counters use {@link #TYPE_CHANNEL}. */
    static final int TYPE_CHANNEL = 2;
    static final int TYPE_GROUP = 3;

    /**
     * The owner of a group's counters: the channel's directory entry in the high 32 bits, the group's
     * index in the low ones (a channel's own counters have the entry alone).
     */
    static long groupCounterOwner(int entry, int group) {
        return ((long) entry << 32) | group;
    }

    void groupCount(int g, int offset) {
        int id = memory.get(ValueLayout.JAVA_INT, group(g) + offset);
        if (id >= 0 && id < counters.capacity()) {
            counters.increment(id);
        }
    }

    void groupAdd(int g, int offset, long delta) {
        int id = memory.get(ValueLayout.JAVA_INT, group(g) + offset);
        if (id >= 0 && id < counters.capacity()) {
            counters.add(id, delta);
        }
    }

    long groupCounter(int g, int offset) {
        int id = memory.get(ValueLayout.JAVA_INT, group(g) + offset);
        return id >= 0 && id < counters.capacity() ? counters.get(id) : 0;
    }

    /**
     * This process's open subscriptions per group, by segment attachment, channel and group index
     * (a channel's directory entry, once ready, stays for the segment's life, whatever the channel
     * handles and mappings that reach it): a peer has one member bit per group, which stays set
     * while any of its subscriptions to the group is open. Guarded by itself.
     */
    private static final Map<MemberKey, Integer> SUBSCRIPTIONS = new HashMap<>();

    private record MemberKey(Segment segment, String channel, int group) {
    }

    /** Forgets the subscriptions of a segment this process detached from, closed or not. */
    static void forget(Segment segment) {
        synchronized (SUBSCRIPTIONS) {
            SUBSCRIPTIONS.keySet().removeIf(key -> key.segment() == segment);
        }
    }

    /** The groups in which this process has open subscriptions through {@code segment}. */
    static int subscribedGroups(Segment segment) {
        synchronized (SUBSCRIPTIONS) {
            return (int) SUBSCRIPTIONS.keySet().stream().filter(key -> key.segment() == segment).count();
        }
    }

    /** The holder word when no exclusive member holds the group. */
    static final int NO_HOLDER = 0;

    /** The peer that holds group {@code g} exclusively, plus one; {@link #NO_HOLDER} when none does. */
    int holder(int g) {
        return holder((long) LONG.getVolatile(memory, group(g) + GROUP_HOLDER_OFFSET));
    }

    private static int holder(long word) {
        return word < 0 || word > 0xFFFF ? 0x10000 : (int) word; // damaged: names no peer (writerGone)
    }

    /**
     * A subscription of this process joins group {@code g} (under the directory lock): its member bit
     * is set, on every subscription, not only the first, since recovery may have cleared it meanwhile;
     * an exclusive one also holds the group.
     */
    private int member(int g, boolean exclusive) {
        synchronized (SUBSCRIPTIONS) {
            SUBSCRIPTIONS.merge(new MemberKey(segment, name, g), 1, Integer::sum);
            setMember(g, me, true);
        }
        if (exclusive) {
            LONG.setVolatile(memory, group(g) + GROUP_HOLDER_OFFSET, (long) me + 1);
        }
        return g;
    }

    /**
     * A subscription of this process left group {@code g}: an exclusive one first stores where the
     * next member looks ({@code next}, or {@link #UNSET} for no news); the member bit is cleared with
     * the last one; an exclusive one lets the group go after that. Nothing is touched once the
     * segment closed: leaving it released this peer's part of the group.
     */
    void unsubscribed(int g, boolean exclusive, long next) {
        synchronized (SUBSCRIPTIONS) {
            MemberKey key = new MemberKey(segment, name, g);
            Integer count = SUBSCRIPTIONS.get(key);
            if (count == null) {
                return;
            }
            if (next != UNSET) {
                LONG.setRelease(memory, group(g) + GROUP_NEXT_OFFSET, next);
            }
            if (count > 1) {
                SUBSCRIPTIONS.put(key, count - 1);
            } else {
                SUBSCRIPTIONS.remove(key);
                setMember(g, me, false);
            }
        }
        if (exclusive) {
            LONG.compareAndSet(memory, group(g) + GROUP_HOLDER_OFFSET, (long) me + 1, (long) NO_HOLDER);
        }
    }

    void setMember(int g, int peer, boolean member) {
        long at = group(g) + GROUP_MEMBERS_OFFSET + 8L * (peer >>> 6);
        long bit = 1L << (peer & 63);
        if (member) {
            LONG.getAndBitwiseOr(memory, at, bit);
        } else {
            LONG.getAndBitwiseAnd(memory, at, ~bit);
        }
    }

    boolean isMember(int g, int peer) {
        long word = (long) LONG.getAcquire(memory, group(g) + GROUP_MEMBERS_OFFSET + 8L * (peer >>> 6));
        return (word & (1L << (peer & 63))) != 0;
    }

    int memberCount(int g) {
        int count = 0;
        for (int i = 0; i < 4; i++) {
            count += Long.bitCount((long) LONG.getAcquire(memory, group(g) + GROUP_MEMBERS_OFFSET + 8L * i));
        }
        return count;
    }

    /** Moves a group's done sequence past every sequence its members finished. */
    void advanceDone(int g) {
        long at = group(g) + GROUP_DONE_OFFSET;
        while (true) {
            long done = (long) LONG.getVolatile(memory, at);
            if (done == UNSET) {
                return;
            }
            // Scan the finished run, then move done over it with one compare-and-set: a batch of
            // messages costs one atomic, not one each. The slots scanned cannot be reused meanwhile:
            // producers wait for done (the CAS fails if anyone moved it).
            long target = done;
            while (target - done < capacity) {
                long slot = slot(target);
                long cw = (long) LONG.getAcquire(memory, claim(g, target));
                if (!isTag(cw, target) || state(cw) != DONE || !isTag(header(slot), target)) {
                    break;
                }
                target++;
            }
            if (target == done || LONG.compareAndSet(memory, at, done, target)) {
                return;
            }
        }
    }

    /** Lowers a group's next sequence, so that members find a message handed back by recovery. */
    void lowerNext(int g, long sequence) {
        long at = group(g) + GROUP_NEXT_OFFSET;
        while (true) {
            long next = (long) LONG.getVolatile(memory, at);
            if (next <= sequence || LONG.compareAndSet(memory, at, next, sequence)) {
                return;
            }
        }
    }

    // ---------------------------------------------------------------- pool slots of SLOT_REF frames

    /**
     * Frees the pool slot of a published SLOT_REF frame once every required group that applies to
     * it is done with it; a compare-and-set on the frame's release word picks the one who frees.
     *
     * <p>Called right after the caller's group finished the message (its DONE claim word, or an
     * exclusive member's done). The fence orders that store before the reads of the other groups:
     * two groups that finish the message at the same moment each store, fence, then read, so at
     * least one sees the other done and frees the slot. Without it both may read the other's old
     * value, and the slot would wait for the ring slot's reuse, a lap later (forever on the last lap).
     */
    void releaseIfDone(long sequence) {
        VarHandle.fullFence();
        long slot = slot(sequence);
        long releaseAt = releaseWord(sequence);
        long rw = (long) LONG.getAcquire(memory, releaseAt);
        if (!isTag(rw, sequence) || state(rw) != PENDING) {
            return;
        }
        for (int g = 0; g < maxGroups; g++) {
            int state = groupState(g);
            if (state == GROUP_JOINING) {
                return; // decided later (by a later completion, recovery or the slot's reuse)
            }
            if (state == GROUP_ACTIVE && isRequired(g)) {
                long start = start(g);
                if (start == UNSET) {
                    return;
                }
                if (sequence >= start && sequence >= done(g)) { // below done: done (an exclusive member writes no DONE)
                    long cw = (long) LONG.getAcquire(memory, claim(g, sequence));
                    if (!isTag(cw, sequence) || state(cw) != DONE) {
                        return;
                    }
                }
            }
        }
        release(slot, rw, false);
    }

    /**
     * Frees the pool slot of the frame a producer is about to overwrite, if nobody did, and waits
     * while someone else frees it: the entry's reference must stay in place until the freer is done
     * (its recovery reads it there). A freer that is gone without recovery is taken over. Only the
     * slot's type is read when the previous lap sent no pool payload.
     */
    void releaseOnReuse(long slot, long previous) {
        if (memory.get(ValueLayout.JAVA_INT, slot + SLOT_TYPE_OFFSET) == SLOT_REF) {
            releaseLap(slot, previous, true);
        }
    }

    /**
     * Makes the release entry of {@code sequence}'s slot this producer's, before it stores a pool
     * payload's reference there: the previous lap's release done ({@link #releaseOnReuse}), and a
     * release of any earlier lap that a peer is still finishing waited for. A recovery that made a
     * skip of a lap while that lap's freer was stalled or slow left the freer's word as it was; the
     * lap after may then reach the entry before the freer is done. The word then names {@code
     * sequence}, released, until the producer stores it pending: nobody who read an earlier word can
     * win it any more.
     */
    void takeReleaseEntry(long slot, long sequence) {
        long releaseAt = releaseWord(sequence);
        while (true) {
            releaseLap(slot, sequence - capacity, true);
            long rw = (long) LONG.getAcquire(memory, releaseAt);
            if (state(rw) != RELEASING
                    && LONG.compareAndSet(memory, releaseAt, rw, word(sequence, NO_PEER, RELEASED))) {
                return;
            }
        }
    }

    /**
     * {@link #releaseOnReuse}; without {@code wait} (recovery, which must not wait on a peer that may
     * be dead and not yet recovered: the thread that would recover it may be the one waiting), a
     * release begun by a peer whose process died is finished here, one begun by a running peer is
     * waited for half a heartbeat interval at most (recovery runs on the monitor thread, which writes
     * this process's heartbeat), and one begun by a stalled peer, or not finished by then, is left to
     * its peer. A word {@code RELEASING} is dealt with whatever its lap (see {@link #takeReleaseEntry});
     * a pending one only for {@code previous}, beside a {@code SLOT_REF} (the callers read the type
     * first, but for {@link #takeReleaseEntry}, which must wait out any lap's freer).
     */
    private void releaseLap(long slot, long previous, boolean wait) {
        long releaseAt = releaseWord(previous);
        long waitingSince = 0; // when this call first saw the word it waits on, or 0
        long waitingOn = 0;
        while (true) {
            long rw = (long) LONG.getAcquire(memory, releaseAt);
            if (state(rw) == PENDING) {
                if (!isTag(rw, previous) || memory.get(ValueLayout.JAVA_INT, slot + SLOT_TYPE_OFFSET) != SLOT_REF) {
                    return;
                }
                release(slot, rw, false);
            } else if (state(rw) == RELEASING) {
                int freer = peer(rw);
                if (((tag(rw) - previous) & mask) != 0) {
                    // A word of another slot's sequence (damage): every release would address that slot's
                    // entry, and this loop would wait for good. Its reference is not trusted either.
                    if (LONG.compareAndSet(memory, releaseAt, rw, word(previous, NO_PEER, RELEASED))) {
                        countCorrupt("the release word 0x" + Long.toHexString(rw) + " of the slot at offset " + slot
                                + " names another slot's sequence; replaced, nothing freed");
                    }
                } else if (writerGone(freer)) {
                    // Recovery finishes a dead freer's release before its entry empties: damaged.
                    if (release(slot, rw, false)) {
                        countCorrupt("the release of sequence " + tag(rw) + "'s pool slot was left by peer "
                                + freer + ", which is not attached; finished here");
                    }
                } else if (!wait && processDied(freer)) {
                    // Recovery waits on no peer that may be dead and not yet recovered (the thread that
                    // would recover it may be this one); the release of one whose process died is
                    // finished here (its recovery, under way or to come, then finds the word released).
                    release(slot, rw, true);
                } else if (!wait && (!runsNormally(freer)
                        || (waitingSince != 0 && rw == waitingOn && System.nanoTime() - waitingSince > recoveryPatienceNanos))) {
                    // A stalled freer, or a running one that has not finished within the patience: left to
                    // go on by itself. Its entry keeps the reference (producers wait on the word), and if
                    // it dies first, its recovery finds the word (release entries do not depend on the
                    // slot's type or lap).
                    return;
                } else if (waitingSince == 0 || rw != waitingOn) {
                    waitingSince = System.nanoTime();
                    waitingOn = rw;
                } else if (System.nanoTime() - waitingSince > livenessNanos) {
                    if (runsNormally(freer)) {
                        // A running peer's release is a few stores: one that names it for the liveness
                        // timeout is damage, taken over.
                        if (release(slot, rw, false)) {
                            countCorrupt("the release of sequence " + tag(rw) + "'s pool slot stayed with peer "
                                    + freer + ", which runs normally, for the liveness timeout; taken over");
                        }
                    } else {
                        // A dead peer's release waits for its recovery (which may take longer than the
                        // timeout under load), a stalled one's for it to go on (nothing is taken from a
                        // stalled peer): looked at again a liveness timeout later.
                        waitingSince = System.nanoTime();
                    }
                } else {
                    Thread.onSpinWait(); // a live peer is freeing it: a few stores away
                }
            } else {
                return;
            }
        }
    }

    /**
     * Whether {@code peer}'s entry names a process that died (its recovery is under way, or to come):
     * under recovery, or attached or leaving with its lock gone.
     */
    private boolean processDied(int peer) {
        if (peer >= segment.options().maxPeers()) {
            return false;
        }
        dev.shm.core.segment.PeerInfo info = segment.peer(peer);
        return info.state() == dev.shm.core.segment.PeerState.RECOVERING
                || info.liveness() == dev.shm.core.segment.Liveness.DEAD;
    }

    /**
     * Whether {@code peer} is attached, its process runs and its heartbeat is fresh (not dead, not
     * stalled). An entry that is being recovered counts as alive while its recoverer runs, but its own
     * process is dead: its recovery finishes what it left, and nothing it named is taken over meanwhile.
     */
    private boolean runsNormally(int peer) {
        if (peer >= segment.options().maxPeers()) {
            return false;
        }
        // The state and the liveness come from two reads of the entry: a recovery claimed in between
        // would pair ATTACHED with the recoverer's liveness, so the state is read again after them.
        dev.shm.core.segment.PeerInfo info = segment.peer(peer);
        if (info.state() != dev.shm.core.segment.PeerState.ATTACHED
                || info.liveness() != dev.shm.core.segment.Liveness.ALIVE) {
            return false;
        }
        dev.shm.core.segment.PeerInfo again = segment.peer(peer);
        return again.state() == dev.shm.core.segment.PeerState.ATTACHED && again.epoch() == info.epoch();
    }

    /**
     * Frees a frame's pool slot, if this call wins the frame's release word: {@code rw} is the word
     * seen, {@code PENDING}, or {@code RELEASING} naming a peer whose release this call finishes (gone,
     * dead, or running yet holding it past the liveness timeout: a takeover). The word goes through
     * {@code RELEASING} (naming this peer) while the pool slot is freed; the reference is read from the
     * entry only then, as no producer writes an entry whose word is {@code RELEASING}
     * ({@link #takeReleaseEntry}). A peer that dies in between leaves a word that
     * its recovery finds, with the reference beside it ({@link #recover}). A gone peer may have freed
     * the pool slot before it died (the pool's own recovery finishes a half-done free): its reference's
     * generation then names no slot allocated to the ring.
     *
     * @param slot the ring slot, for what is logged
     * @param reclaimed whether a slot this call frees counts as reclaimed (recovery of a dead freer):
     *     counted before the word says {@code RELEASED}, so whoever sees that sees the count
     * @return whether this call won the word
     */
    boolean release(long slot, long rw, boolean reclaimed) {
        long releaseAt = releaseWord(tag(rw));
        long releasing = word(tag(rw), me, RELEASING);
        if (!LONG.compareAndSet(memory, releaseAt, rw, releasing)) {
            return false;
        }
        if (releaseWonHook != null) {
            releaseWonHook.run();
        }
        long ref = 0;
        try {
            ref = (long) LONG.getAcquire(memory, releaseAt + RELEASE_REF_OFFSET);
            if ((long) LONG.getAcquire(memory, releaseAt) != releasing) {
                // Taken over (this thread stopped for the liveness timeout after it won the word): the
                // reference read may be a later lap's, and the taker freed this one.
                return true;
            }
            if (pool.ownerOf(ref) == SlotPoolDescriptor.NO_PEER) {
                if (pool.release(ref) == 0 && reclaimed) {
                    pool.countReclaimed(ref);
                }
            } else if (state(rw) == PENDING) {
                // the reference was damaged: the slot it named cannot be found
                countCorrupt("the pool slot reference 0x" + Long.toHexString(ref) + " of the release entry of the slot"
                        + " at offset " + slot + " is not the ring's (no current slot, or one its producer holds; release"
                        + " word 0x" + Long.toHexString(rw) + ")");
            }
        } catch (CorruptionException damaged) {
            // the pool's table is damaged where the reference points: nothing to free there
            countCorrupt("the pool slot 0x" + Long.toHexString(ref) + " of the slot at offset " + slot
                    + " lies in damaged pool memory: " + damaged.getMessage());
        } finally {
            // Never left RELEASING by a live peer on the way out: producers of later laps wait on that.
            // A compare-and-set: a peer that stopped for the liveness timeout in between had its release
            // taken over, and the entry may hold a later lap's word by the time it goes on.
            LONG.compareAndSet(memory, releaseAt, releasing, word(tag(rw), NO_PEER, RELEASED));
        }
        return true;
    }

    // ---------------------------------------------------------------- waking

    /** Whether a subscription that sleeps on the data futex ever joined (see {@link RingDescriptor#DATA_BLOCKING_OFFSET}). */
    boolean mayHaveSleepers() {
        return (int) INT.getOpaque(memory, (long) DATA_BLOCKING_OFFSET) != 0;
    }

    /** Records that a subscription which sleeps on the data futex joined; a full fence. */
    void announceSleeper() {
        INT.getAndBitwiseOr(memory, (long) DATA_BLOCKING_OFFSET, 1);
    }

    void wakeConsumers() {
        if ((int) INT.getVolatile(memory, (long) DATA_SLEEPERS_OFFSET) > 0) {
            INT.getAndAdd(memory, (long) DATA_FUTEX_OFFSET, 1);
            Futex.wakeAll(dataFutex);
        }
    }

    /** Records that a producer which may sleep on the space futex declared the channel; a full fence. */
    void announceSpaceSleeper() {
        INT.getAndBitwiseOr(memory, (long) SPACE_BLOCKING_OFFSET, 1);
    }

    /**
     * Wakes producers sleeping for room, if any. Called after a done sequence moved: on a ring where a
     * producer may sleep ({@link RingDescriptor#SPACE_BLOCKING_OFFSET}), a full fence orders that store
     * before the read of the sleepers. The sleeper's side is its increment of them before it reads the
     * done sequences, so one of the two sees the other: no producer sleeps on room that was freed.
     */
    void wakeProducers() {
        if ((int) INT.getOpaque(memory, (long) SPACE_BLOCKING_OFFSET) != 0) {
            VarHandle.fullFence();
        }
        if ((int) INT.getVolatile(memory, (long) SPACE_SLEEPERS_OFFSET) > 0) {
            INT.getAndAdd(memory, (long) SPACE_FUTEX_OFFSET, 1);
            Futex.wakeAll(spaceFutex);
        }
    }

    /** Announces a sleeper on the data futex and returns the value to wait on. */
    int sleepOnData() {
        INT.getAndAdd(memory, (long) DATA_SLEEPERS_OFFSET, 1);
        return (int) INT.getVolatile(memory, (long) DATA_FUTEX_OFFSET);
    }

    void awaitData(Futex.Waiter waiter, int seen, long nanos) {
        try {
            waiter.await(dataFutex, seen, nanos);
        } finally {
            INT.getAndAdd(memory, (long) DATA_SLEEPERS_OFFSET, -1);
        }
    }

    int sleepOnSpace() {
        INT.getAndAdd(memory, (long) SPACE_SLEEPERS_OFFSET, 1);
        return (int) INT.getVolatile(memory, (long) SPACE_FUTEX_OFFSET);
    }

    void awaitSpace(Futex.Waiter waiter, int seen, long nanos) {
        try {
            waiter.await(spaceFutex, seen, nanos);
        } finally {
            INT.getAndAdd(memory, (long) SPACE_SLEEPERS_OFFSET, -1);
        }
    }

    // ---------------------------------------------------------------- holes

    /**
     * Fills an unpublished sequence below the cursor with a skip record. For a slot whose header
     * names no writer (its producer claimed the sequence but died before marking the slot) after the
     * liveness timeout; the slot's old-lap header is replaced by compare-and-set, so a producer that
     * only stalled finds its slot taken and claims another sequence.
     *
     * @return whether this call filled it
     */
    boolean fillUnmarkedHole(long sequence, long seen) {
        if (!isTag(seen, sequence - capacity) || cursor() <= sequence) {
            return false;
        }
        if (fillSkip(sequence, seen)) {
            count(SKIPS);
            wakeConsumers();
            return true;
        }
        return false;
    }

    /**
     * Replaces a header that no protocol step writes (damaged, or naming a writer that is not
     * attached) at a sequence below the cursor with a skip record, counted as corrupt.
     *
     * @return whether this call replaced it
     */
    boolean replaceDamaged(long sequence, long seen) {
        if (cursor() <= sequence || !fillSkip(sequence, seen)) {
            return false;
        }
        countCorrupt("sequence " + sequence + " had a header no protocol step writes (0x" + Long.toHexString(seen)
                + ") for the liveness timeout; replaced by a skip");
        wakeConsumers();
        return true;
    }

    /**
     * Turns the slot of {@code sequence}, whose header is {@code seen}, into a skip record. The
     * header is taken first (marked as written by this peer), so no one else writes the slot's
     * fields meanwhile: a stalled producer that wakes up finds the header's tag moved on and claims
     * another sequence. The skip state is stored last, with release. If this peer dies in between,
     * its recovery finishes the skip.
     *
     * @return false when the header changed first
     */
    boolean fillSkip(long sequence, long seen) {
        return fillSkip(sequence, seen, true);
    }

    /**
     * {@link #fillSkip(long, long)}. The previous lap's pool payload, if nobody freed it (no required
     * group did, or the producer that claimed the sequence died before it reused the slot), is freed
     * first: once the type is reset, nothing else would ({@link #releaseLap}, waiting per {@code wait}).
     */
    private boolean fillSkip(long sequence, long seen, boolean wait) {
        long slot = slot(sequence);
        if (!LONG.compareAndSet(memory, slot, seen, word(sequence, me, WRITING))) {
            return false;
        }
        if (memory.get(ValueLayout.JAVA_INT, slot + SLOT_TYPE_OFFSET) == SLOT_REF) {
            releaseLap(slot, sequence - capacity, wait);
        }
        memory.set(ValueLayout.JAVA_INT, slot + SLOT_TYPE_OFFSET, NONE);
        LONG.setRelease(memory, slot, word(sequence, NO_PEER, SKIP));
        return true;
    }

    /**
     * Whether the header a producer finds on the slot of {@code sequence} can never become free:
     * neither the previous lap ({@code wrap}) published, skipped or being written by an attached
     * peer, nor already this lap's. Called only after the producer waited past the liveness timeout.
     */
    boolean isDamaged(long previous, long wrap, long sequence) {
        if (isTag(previous, sequence)) {
            return false;
        }
        if (!isTag(previous, wrap)) {
            return true;
        }
        int state = state(previous);
        return state == WRITING ? writerGone(peer(previous)) : state != PUBLISHED && state != SKIP;
    }

    /**
     * Whether {@code header}, read in {@code sequence}'s slot, is of a later lap of that slot that
     * producers have claimed (below the cursor): {@code sequence} was filled with a skip while its
     * producer stalled, and the ring went on. A tag of no such lap is damage.
     */
    boolean isLaterLap(long header, long sequence) {
        long cursor = cursor();
        long lap = sequenceOf(tag(header), cursor);
        return lap > sequence && lap < cursor && ((lap - sequence) & (capacity - 1)) == 0;
    }

    /** Whether {@code peer}, named as a slot's writer, is no attached process: no one will finish the slot. */
    boolean writerGone(int peer) {
        if (peer >= segment.options().maxPeers()) {
            return true;
        }
        var state = segment.peer(peer).state();
        return state == dev.shm.core.segment.PeerState.EMPTY || state == dev.shm.core.segment.PeerState.RESERVED;
    }

    // ---------------------------------------------------------------- recovery

    /**
     * Releases what a dead peer held in this ring: the slots it was writing (a skip record below
     * the cursor; the old lap back above it, for a single producer), the messages it had claimed
     * in any group (handed back, flagged redelivered), its group memberships and half-done joins;
     * then moves every group's done sequence on and frees pool slots nobody needs any more.
     */
    void recover(int dead) {
        long cursor = cursor();
        boolean woke = false;
        for (int i = 0; i < capacity; i++) {
            long slot = headerLength + (long) i * slotSize;
            long releaseAt = releaseWord(i);
            // A pool slot it was freeing, of whatever lap: the entry keeps the reference until the word
            // moves on (a recovery that made a skip of the next lap while the freer was stalled or slow
            // left the word to it, and producers of later laps wait on it).
            long rw = (long) LONG.getAcquire(memory, releaseAt);
            if (state(rw) == RELEASING && peer(rw) == dead) {
                release(slot, rw, true);
            }
            long h = header(slot);
            if (state(h) == WRITING && peer(h) == dead) {
                long sequence = RingDescriptor.sequenceOf(tag(h), cursor + capacity);
                // A SLOT_REF of this lap: its release word pending for this sequence, the entry's
                // reference stored before it (the slot's type and body may still be a previous lap's).
                rw = (long) LONG.getAcquire(memory, releaseAt);
                if (isTag(rw, sequence) && state(rw) == PENDING) {
                    long ref = memory.get(ValueLayout.JAVA_LONG, releaseAt + RELEASE_REF_OFFSET);
                    if (pool.ownerOf(ref) == SlotPoolDescriptor.NO_PEER && pool.release(ref) == 0) {
                        pool.countReclaimed(ref); // handed to the ring, never published
                    }
                    // Never published: nobody else finishes it, and the word says so.
                    LONG.compareAndSet(memory, releaseAt, rw, word(sequence, NO_PEER, RELEASED));
                }
                if (sequence < cursor) {
                    if (fillSkip(sequence, h, false)) {
                        count(SKIPS);
                        woke = true;
                    }
                } else {
                    // A single producer marks the slot before it moves the cursor: give the slot back.
                    memory.set(ValueLayout.JAVA_INT, slot + SLOT_TYPE_OFFSET, NONE);
                    LONG.compareAndSet(memory, slot, h, word(sequence - capacity, NO_PEER, SKIP));
                }
            }
        }
        for (int g = 0; g < maxGroups; g++) {
            int state = groupState(g);
            long word = (long) LONG.getAcquire(memory, group(g) + GROUP_STATE_OFFSET);
            if (state == GROUP_JOINING && groupOwner(word) == dead) {
                int joining = g;
                segment.withDirectoryLock(() -> {
                    if (groupState(joining) == GROUP_JOINING) {
                        finishJoin(joining);
                    }
                    return null;
                });
                continue;
            }
            if (state != GROUP_ACTIVE) {
                continue;
            }
            for (int i = 0; i < capacity; i++) {
                long slot = headerLength + (long) i * slotSize;
                long claimAt = claim(g, i);
                long cw = (long) LONG.getAcquire(memory, claimAt);
                long h = header(slot);
                if (state(cw) == CLAIMED && peer(cw) == dead && tag(h) == tag(cw)
                        && (state(h) == PUBLISHED || state(h) == SKIP)) {
                    long sequence = RingDescriptor.sequenceOf(tag(cw), cursor);
                    if (LONG.compareAndSet(memory, claimAt, cw, word(sequence, NO_PEER, REDELIVER))) {
                        lowerNext(g, sequence);
                        groupCount(g, GROUP_REDELIVERIES_OFFSET);
                        woke = true;
                    }
                }
            }
            if (holder(g) == dead + 1) {
                // An exclusive member writes no claim words: the message at done is the one it may have
                // had in hand (it moves done past each message once its handler returned).
                long done = done(g);
                long slot = slot(done);
                long h = header(slot);
                long claimAt = claim(g, done);
                long cw = (long) LONG.getAcquire(memory, claimAt);
                if (done != UNSET && isTag(h, done) && state(h) == PUBLISHED && isBefore(cw, done)
                        && LONG.compareAndSet(memory, claimAt, cw, word(done, NO_PEER, REDELIVER))) {
                    lowerNext(g, done);
                    groupCount(g, GROUP_REDELIVERIES_OFFSET);
                    woke = true;
                }
            }
            // Only now, with its claims handed back, does the dead peer stop being a member (and the
            // group's holder): a member that joins exclusively next finds no claim of it left to race.
            setMember(g, dead, false);
            LONG.compareAndSet(memory, group(g) + GROUP_HOLDER_OFFSET, (long) dead + 1, (long) NO_HOLDER);
            advanceDone(g);
        }
        releaseFinished(cursor);
        if (woke) {
            INT.getAndAdd(memory, (long) DATA_FUTEX_OFFSET, 1);
            Futex.wakeAll(dataFutex);
        }
        wakeProducers();
    }

    /**
     * Counts damage met in this ring (the channel's {@code corrupt} and the segment's {@code corrupt
     * frames rejected}) and says what it was, as a warning of the platform logger
     * ({@code dev.shm.core.ring}): a count above 0 means memory written by something else, or a
     * protocol step gone wrong, and the reason is what tells the two apart.
     *
     * @param what what was found, and at which sequence
     */
    void countCorrupt(String what) {
        count(CORRUPT);
        counters.increment(SegmentCounters.CORRUPT_FRAMES_REJECTED);
        LOG.log(System.Logger.Level.WARNING, "channel '" + name + "' (peer " + me + "): " + what
                + "; counted in its corrupt");
    }

    static final System.Logger LOG = System.getLogger("dev.shm.core.ring");
}
