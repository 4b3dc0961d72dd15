package dev.shm.core.lane;

import static dev.shm.core.lane.LaneDescriptor.ACTIVE;
import static dev.shm.core.lane.LaneDescriptor.BUFFER_OFFSET_OFFSET;
import static dev.shm.core.lane.LaneDescriptor.CAPACITY_OFFSET;
import static dev.shm.core.lane.LaneDescriptor.CLAIMED;
import static dev.shm.core.lane.LaneDescriptor.EMPTY;
import static dev.shm.core.lane.LaneDescriptor.ENTRY_LENGTH;
import static dev.shm.core.lane.LaneDescriptor.RELEASING;
import static dev.shm.core.lane.LaneDescriptor.SERVICE_OFFSET;
import static dev.shm.core.lane.LaneDescriptor.STATE_OFFSET;
import static dev.shm.core.lane.LaneDescriptor.directionLength;
import static dev.shm.core.lane.LaneDescriptor.entryClient;
import static dev.shm.core.lane.LaneDescriptor.entryEpoch;
import static dev.shm.core.lane.LaneDescriptor.entryProvider;
import static dev.shm.core.lane.LaneDescriptor.entryReleaser;
import static dev.shm.core.lane.LaneDescriptor.entryState;
import static dev.shm.core.lane.LaneDescriptor.entryStateOf;
import static dev.shm.core.lane.LaneDescriptor.pairLength;
import static dev.shm.core.lane.LaneDescriptor.releasingState;

import dev.shm.core.CorruptionException;
import dev.shm.core.counters.Counters;
import dev.shm.core.counters.SegmentCounters;
import dev.shm.core.pool.ExtentSpace;
import dev.shm.core.pool.SlotPool;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The lane table of a segment: one pair of lanes per (client, service) for request and reply.
 * A client {@link #open opens} a pair to a service; the service's provider reads the requests of
 * every pair {@link #lanesOf of the service}. A pair's memory is an extent appended on first use
 * and kept for the entry's later users.
 *
 * <p>When a peer dies, {@link #recover} resets every pair it was client or provider of, after
 * freeing the pool slots that the frames in them still reference. A pair is released by one peer
 * at a time: the releaser takes the entry ({@code RELEASING}, naming itself) by compare-and-set
 * before it touches the lanes, so a second releaser (a client's close racing the recovery of its
 * provider, or two survivors) finds the entry taken and leaves it, and can never reset a pair that
 * was released and opened again meanwhile. Recovery of a releaser that died finishes its release.
 *
 * <p>Thread-safety: safe from any thread of any process; each lane itself has one producer and one
 * consumer.
 */
public final class LaneTable {

    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();
    /** For {@link #release}: no peer is being recovered. */
    static final int NO_PEER = -1;
    /**
     * The longest a {@link #close} or a {@link #recover} waits, for all the pairs it releases
     * together, for live sides to finish the write or read they are in before it formats the
     * pairs' lanes ({@link Lane#awaitQuiet}). Recovery runs on the monitor thread, whose
     * heartbeats pause meanwhile: one second stays well inside the default liveness timeout (2 s).
     */
    static final long QUIET_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(1);

    private final MemorySegment table;
    private final int maxLanes;
    private final int capacity;
    private final ExtentSpace space;
    private final Counters counters;
    private final SlotPool pool;
    private final int me;
    /** {@link #QUIET_TIMEOUT_NANOS}, which tests of the wait lengthen or shorten. */
    long quietTimeoutNanos = QUIET_TIMEOUT_NANOS;

    /**
     * Wraps the lane table of a segment.
     *
     * @param table the table: {@code maxLanes} entries of {@value LaneDescriptor#ENTRY_LENGTH} bytes
     * @param maxLanes the number of entries
     * @param capacity the data capacity of one lane direction
     * @param space the segment's extent space, for pair memory
     * @param counters the segment's counters
     * @param pool the segment's slot pool, whose slots frames reference
     */
    public LaneTable(MemorySegment table, int maxLanes, int capacity, ExtentSpace space, Counters counters,
                     SlotPool pool) {
        this.table = table;
        this.maxLanes = maxLanes;
        this.capacity = capacity;
        this.space = space;
        this.counters = counters;
        this.pool = pool;
        this.me = space.peerId();
    }

    /**
     * A pair of lanes between a client and a service provider.
     *
     * @param index the lane table entry
     * @param client the client peer
     * @param provider the service provider peer
     * @param service the service's directory entry
     * @param toService requests: written by the client, read by the provider
     * @param toClient replies: written by the provider, read by the client
     */
    public record LanePair(int index, int client, int provider, int service, Lane toService, Lane toClient) {
    }

    /**
     * What one entry of the table holds now.
     *
     * @param index the entry
     * @param state {@code EMPTY}, {@code CLAIMED}, {@code ACTIVE} or {@code RELEASING}
     * @param epoch bumped on every claim
     * @param client the client peer
     * @param provider the provider peer
     * @param service the service's directory entry
     * @param capacity the data capacity of each direction (0 before first use)
     * @param pendingToService unread request bytes
     * @param pendingToClient unread reply bytes
     */
    public record LaneInfo(int index, String state, int epoch, int client, int provider, int service, int capacity,
                           long pendingToService, long pendingToClient) {
    }

    /**
     * Opens a lane pair from this peer to a service.
     *
     * @param service the service's directory entry
     * @param provider the peer that serves it
     * @return the pair, or {@code null} when every entry is in use
     */
    public LanePair open(int service, int provider) {
        for (int index = 0; index < maxLanes; index++) {
            long at = entry(index);
            long word = (long) LONG.getAcquire(table, at + STATE_OFFSET);
            if (entryStateOf(word) != EMPTY) {
                continue;
            }
            int epoch = entryEpoch(word) + 1;
            long claimed = entryState(epoch, provider, me, CLAIMED);
            if (!LONG.compareAndSet(table, at + STATE_OFFSET, word, claimed)) {
                continue;
            }
            // From here the entry is this peer's, unless recovery of the provider (dead, and not yet
            // recovered when the caller looked it up) releases it meanwhile: every step that ends the
            // claim is a compare-and-set from the CLAIMED word, never a store over another's state.
            boolean active = false;
            try {
                long buffer = table.get(ValueLayout.JAVA_LONG, at + BUFFER_OFFSET_OFFSET);
                if (buffer == 0) {
                    // Recorded in the entry at once, still under the lock: the entry keeps its buffer for
                    // good (looked at again under it: a claim before this one may have appended it).
                    buffer = space.withExtentLock(() -> {
                        long recorded = table.get(ValueLayout.JAVA_LONG, at + BUFFER_OFFSET_OFFSET);
                        if (recorded != 0) {
                            return recorded;
                        }
                        long appended = space.append(pairLength(capacity));
                        if (appended >= 0) {
                            table.set(ValueLayout.JAVA_INT, at + CAPACITY_OFFSET, capacity);
                            table.set(ValueLayout.JAVA_LONG, at + BUFFER_OFFSET_OFFSET, appended);
                        }
                        return appended;
                    });
                    if (buffer < 0) {
                        return null;
                    }
                }
                if (capacityOf(index) != capacity) { // damaged: any other capacity was written by something else
                    throw new CorruptionException("lane " + index + " states capacity=" + capacityOf(index)
                            + " where the segment's lanes have " + capacity);
                }
                table.set(ValueLayout.JAVA_INT, at + SERVICE_OFFSET, service);
                MemorySegment pair = pairMemory(index);
                Lane.format(pair.asSlice(0, directionLength(capacity)), epoch);
                Lane.format(pair.asSlice(directionLength(capacity), directionLength(capacity)), epoch);
                active = LONG.compareAndSet(table, at + STATE_OFFSET, claimed, entryState(epoch, provider, me, ACTIVE));
                if (active) {
                    return pair(index, epoch, me, provider, service);
                }
                // Recovery of the provider released the entry while this formatted it: the next entry,
                // as if this one had been taken. A pair opened there, to a provider whose recovery has
                // passed the lanes, is a pair to a gone provider, as when it dies just after the open:
                // its client resets it once the directory no longer names the provider.
            } catch (CorruptionException e) {
                // A damaged entry (its capacity or buffer) is counted and passed over: the next entry,
                // not a failure of every open that would meet it first.
                counters.increment(SegmentCounters.CORRUPT_FRAMES_REJECTED);
            } finally {
                if (!active) {
                    LONG.compareAndSet(table, at + STATE_OFFSET, claimed, entryState(epoch, provider, me, EMPTY));
                }
            }
        }
        return null;
    }

    /**
     * Returns the active pairs of a service, for its provider to read requests from.
     *
     * @param service the service's directory entry
     * @return the pairs, in table order
     */
    public List<LanePair> lanesOf(int service) {
        List<LanePair> pairs = new ArrayList<>();
        for (int index = 0; index < maxLanes; index++) {
            long at = entry(index);
            long word = (long) LONG.getAcquire(table, at + STATE_OFFSET);
            if (entryStateOf(word) == ACTIVE && table.get(ValueLayout.JAVA_INT, at + SERVICE_OFFSET) == service) {
                try {
                    pairs.add(pair(index, entryEpoch(word), entryClient(word), entryProvider(word), service));
                } catch (CorruptionException e) {
                    // A damaged entry is left out (counted where it is opened or recovered): the
                    // provider serves the others. A provider rescans every few milliseconds, so no count here.
                }
            }
        }
        return pairs;
    }

    /**
     * Closes a pair its client no longer needs: frees the slots its frames reference, resets it and
     * frees the entry.
     *
     * @param pair the pair
     */
    public void close(LanePair pair) {
        long at = entry(pair.index());
        long word = (long) LONG.getAcquire(table, at + STATE_OFFSET);
        if (entryStateOf(word) == ACTIVE && (entryEpoch(word) & 0xFFFF) == pair.toService().epoch()) {
            release(pair.index(), word, false, NO_PEER, System.nanoTime() + quietTimeoutNanos);
        }
    }

    /**
     * Resets every pair whose client or provider is a peer, after freeing the pool slots that their
     * unread frames reference: on recovery of a dead peer (frames sent to it will never be read,
     * frames it sent are dropped), and for this peer itself as it detaches. Idempotent.
     *
     * @param dead the peer
     * @param count whether to count the reset pairs and freed slots (recovery of a dead peer)
     * @return the pairs reset
     */
    public int recover(int dead, boolean count) {
        int reset = 0;
        // A peer that detaches releases its own pairs: its sides are its own threads, live, and
        // waited for like anyone's. A dead peer's are not.
        int skip = dead == me ? NO_PEER : dead;
        long deadline = System.nanoTime() + quietTimeoutNanos;
        for (int index = 0; index < maxLanes; index++) {
            long word = (long) LONG.getAcquire(table, entry(index) + STATE_OFFSET);
            int state = entryStateOf(word);
            boolean release = state == RELEASING ? entryReleaser(word) == dead // finish a dead releaser's work
                    : state != EMPTY && (entryClient(word) == dead || entryProvider(word) == dead);
            try {
                if (release && release(index, word, count, skip, deadline)) {
                    reset++;
                }
            } catch (CorruptionException damaged) {
                // This entry's own fields are damaged (its capacity, its buffer): counted, and left out
                // of use, RELEASING under this peer; the peer's other pairs are released all the same.
                counters.increment(SegmentCounters.CORRUPT_FRAMES_REJECTED);
            }
        }
        if (count && reset > 0) {
            counters.add(SegmentCounters.LANES_RESET, reset);
        }
        return reset;
    }

    /**
     * Takes the entry in state {@code word} for this peer, frees the slots the pair's frames
     * reference, waits until no live side is still writing into or reading from either lane
     * (until {@code deadline}), resets both lanes and empties the entry.
     *
     * @param dead the peer being recovered, whose in-flight words are not waited for, or
     *     {@link #NO_PEER}
     * @param deadline the {@link System#nanoTime} after which it formats the lanes whatever is in flight
     * @return false when the entry no longer holds {@code word} (another peer released it first)
     */
    boolean release(int index, long word, boolean count, int dead, long deadline) {
        long at = entry(index);
        int epoch = entryEpoch(word);
        int state = entryStateOf(word);
        long releasing = releasingState(word, me);
        if (!LONG.compareAndSet(table, at + STATE_OFFSET, word, releasing)) {
            return false;
        }
        // An active pair's frames are drained; so are those of a pair whose releaser died part-way
        // (its lanes may be drained or reset already: what is left is drained, the rest reads as reset).
        if (state == ACTIVE || state == RELEASING) {
            MemorySegment pair = pairMemory(index);
            Lane[] lanes = new Lane[2];
            for (int direction = 0; direction < 2; direction++) {
                // A slot still owned by its sender was never claimed by the receiver: free it. One the
                // receiver claimed is the receiver's to free (or its recovery's).
                int sender = direction == 0 ? entryClient(word) : entryProvider(word);
                Lane lane = new Lane(pair.asSlice(direction * directionLength(capacityOf(index)),
                        directionLength(capacityOf(index))), capacityOf(index), epoch, counters, "lane " + index);
                lanes[direction] = lane;
                try {
                    // Stops the sender first: a frame it commits from here fails (it frees its own
                    // slot), and none it committed before is wiped by the format below.
                    lane.drain((type, payload) -> {
                        long ref = type == LaneDescriptor.SLOT_REF ? Lane.slotRef(payload) : -1;
                        if (ref >= 0 && pool.freeIfOwnedBy(ref, sender) && count) {
                            pool.countReclaimed(ref);
                        }
                    });
                } catch (CorruptionException corrupt) {
                    // counted by the lane; whatever it referenced past the corruption is reclaimed with its owner
                }
            }
            // A live side may be between its look at the positions and its failed commit (or release),
            // writing into the lane's data or reading from it: the format below hands the data to the
            // pair's next user, so it waits for them (for a bounded time: a side that stalls longer
            // than that is treated as gone; see architecture.md).
            for (int direction = 0; direction < 2; direction++) {
                int sender = direction == 0 ? entryClient(word) : entryProvider(word);
                int receiver = direction == 0 ? entryProvider(word) : entryClient(word);
                lanes[direction].awaitQuiet(sender == dead, receiver == dead, deadline);
            }
        }
        // The next claim formats the lanes with epoch + 1, which also fails any stale writer's commit.
        MemorySegment pairMemory = table.get(ValueLayout.JAVA_LONG, at + BUFFER_OFFSET_OFFSET) == 0 ? null
                : pairMemory(index);
        if (pairMemory != null) {
            Lane.format(pairMemory.asSlice(0, directionLength(capacityOf(index))), epoch + 1);
            Lane.format(pairMemory.asSlice(directionLength(capacityOf(index)), directionLength(capacityOf(index))),
                    epoch + 1);
        }
        return LONG.compareAndSet(table, at + STATE_OFFSET, releasing,
                entryState(epoch + 1, entryProvider(word), entryClient(word), EMPTY));
    }

    /**
     * Returns what each entry holds now.
     *
     * @return one entry per lane table entry in use or ever used
     */
    public List<LaneInfo> lanes() {
        List<LaneInfo> lanes = new ArrayList<>();
        for (int index = 0; index < maxLanes; index++) {
            long at = entry(index);
            long word = (long) LONG.getAcquire(table, at + STATE_OFFSET);
            int state = entryStateOf(word);
            if (state == EMPTY && table.get(ValueLayout.JAVA_LONG, at + BUFFER_OFFSET_OFFSET) == 0) {
                continue;
            }
            long toService = 0;
            long toClient = 0;
            int capacity;
            String name = switch (state) {
                case EMPTY -> "EMPTY";
                case CLAIMED -> "CLAIMED";
                case ACTIVE -> "ACTIVE";
                case RELEASING -> "RELEASING";
                default -> "CORRUPT(" + state + ")";
            };
            capacity = table.get(ValueLayout.JAVA_INT, at + CAPACITY_OFFSET);
            try { // damage is listed as what it is, not a failure of the whole listing
                capacityOf(index);
                if (state == ACTIVE) {
                    try {
                        LanePair pair = pair(index, entryEpoch(word), entryClient(word), entryProvider(word),
                                table.get(ValueLayout.JAVA_INT, at + SERVICE_OFFSET));
                        toService = pair.toService().pending();
                        toClient = pair.toClient().pending();
                    } catch (CorruptionException e) {
                        name = "CORRUPT(buffer)";
                    }
                }
            } catch (CorruptionException e) {
                name = "CORRUPT(capacity)";
            }
            lanes.add(new LaneInfo(index, name, entryEpoch(word), entryClient(word), entryProvider(word),
                    table.get(ValueLayout.JAVA_INT, at + SERVICE_OFFSET), capacity, toService, toClient));
        }
        return lanes;
    }

    private LanePair pair(int index, int epoch, int client, int provider, int service) {
        MemorySegment memory = pairMemory(index);
        int cap = capacityOf(index);
        long direction = directionLength(cap);
        return new LanePair(index, client, provider, service,
                new Lane(memory.asSlice(0, direction), cap, epoch, counters, "lane " + index + " to service"),
                new Lane(memory.asSlice(direction, direction), cap, epoch, counters, "lane " + index + " to client"));
    }

    private MemorySegment pairMemory(int index) {
        long at = entry(index);
        long buffer = table.get(ValueLayout.JAVA_LONG, at + BUFFER_OFFSET_OFFSET);
        int cap = capacityOf(index);
        return space.map(buffer, pairLength(cap));
    }

    /** The capacity an entry states, checked as untrusted input. */
    private int capacityOf(int index) {
        int cap = table.get(ValueLayout.JAVA_INT, entry(index) + CAPACITY_OFFSET);
        if (cap == 0 && table.get(ValueLayout.JAVA_LONG, entry(index) + BUFFER_OFFSET_OFFSET) == 0) {
            return 0;
        }
        if (cap < 1024 || Integer.bitCount(cap) != 1 || cap > (1 << 30)) {
            throw new CorruptionException("lane " + index + " states capacity=" + cap
                    + "; expected a power of two from 1024 to 2^30");
        }
        return cap;
    }

    private long entry(int index) {
        if (index < 0 || index >= maxLanes) {
            throw new IndexOutOfBoundsException("lane index=" + index + " outside 0.." + (maxLanes - 1));
        }
        return (long) index * ENTRY_LENGTH;
    }
}
