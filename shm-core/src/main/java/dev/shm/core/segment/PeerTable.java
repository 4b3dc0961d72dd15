package dev.shm.core.segment;

import static dev.shm.core.segment.PeerDescriptor.HEARTBEAT_OFFSET;
import static dev.shm.core.segment.PeerDescriptor.LENGTH;
import static dev.shm.core.segment.PeerDescriptor.NAME_CAPACITY;
import static dev.shm.core.segment.PeerDescriptor.NAME_LENGTH_OFFSET;
import static dev.shm.core.segment.PeerDescriptor.NAME_OFFSET;
import static dev.shm.core.segment.PeerDescriptor.NO_ACTOR;
import static dev.shm.core.segment.PeerDescriptor.PID_NAMESPACE_OFFSET;
import static dev.shm.core.segment.PeerDescriptor.PID_OFFSET;
import static dev.shm.core.segment.PeerDescriptor.START_TIME_OFFSET;
import static dev.shm.core.segment.PeerDescriptor.STATE_OFFSET;

import dev.shm.core.internal.Libc;
import dev.shm.core.internal.Processes;
import dev.shm.core.internal.Utf8;
import dev.shm.core.segment.SegmentException.Reason;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.time.Duration;

/**
 * The peer table of a segment: claiming, reserving and releasing entries, heartbeats, and the
 * liveness of each peer as the operating system decides it.
 *
 * <h2>Liveness</h2>
 * An attached peer holds an open-file-description lock on its own byte of the segment file
 * ({@link SegmentDescriptor#peerLock(int)}) for as long as it is attached. The kernel releases
 * that lock when the process dies, however it dies. A peer is dead when its lock is free, or when
 * its (pid, start time) names no running process (checked only within one PID namespace); it is
 * never declared dead for an old heartbeat. A live peer with a heartbeat older than the liveness
 * timeout is stalled.
 */
final class PeerTable {

    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();

    private final MemorySegment memory;
    private final int capacity;
    private final SegmentMemory segment;
    /** Per entry: the state word whose process was last found alive, and when (see processAlive). */
    private final long[] verifiedWord;
    private final long[] verifiedAt;

    PeerTable(MemorySegment memory, int capacity, SegmentMemory segment) {
        this.memory = memory;
        this.capacity = capacity;
        this.segment = segment;
        this.verifiedWord = new long[capacity];
        this.verifiedAt = new long[capacity];
        java.util.Arrays.fill(verifiedWord, -1L);
    }

    int capacity() {
        return capacity;
    }

    long word(int id) {
        return (long) LONG.getAcquire(memory, entry(id) + STATE_OFFSET);
    }

    boolean compareAndSet(int id, long expected, long next) {
        return LONG.compareAndSet(memory, entry(id) + STATE_OFFSET, expected, next);
    }

    // ---------------------------------------------------------------- claiming

    /**
     * Attaches as a walk-in peer: takes the lock of an empty entry, writes this process's identity,
     * then publishes ATTACHED with a bumped epoch.
     *
     * @return the packed (id, epoch), or -1 when the table is full
     */
    long claimWalkIn(String name) {
        for (int id = 0; id < capacity; id++) {
            long word = word(id);
            if (PeerDescriptor.state(word) != PeerState.EMPTY) {
                continue;
            }
            if (!segment.file.lockByte(SegmentDescriptor.peerLock(id), true, false)) {
                continue; // a live process holds it: its entry is on its way in or out
            }
            word = word(id);
            if (PeerDescriptor.state(word) == PeerState.EMPTY) {
                writeIdentity(id, name);
                int epoch = PeerDescriptor.epoch(word) + 1;
                if (compareAndSet(id, word, PeerDescriptor.word(epoch, NO_ACTOR, PeerState.ATTACHED))) {
                    return pack(id, epoch);
                }
            }
            segment.file.unlockByte(SegmentDescriptor.peerLock(id));
        }
        return -1;
    }

    /**
     * Claims an entry that another peer reserved for this process.
     *
     * @return the packed (id, epoch)
     * @throws SegmentException {@code BAD_PEER} when the entry is not reserved or its lock is held
     */
    long claimReserved(int id, String name) {
        checkId(id);
        long word = word(id);
        if (PeerDescriptor.state(word) != PeerState.RESERVED) {
            throw new SegmentException(Reason.BAD_PEER, "peer " + id + " of " + segment.subject() + " is "
                    + PeerDescriptor.state(word) + ", not RESERVED: it cannot be claimed");
        }
        if (!segment.file.lockByte(SegmentDescriptor.peerLock(id), true, false)) {
            throw new SegmentException(Reason.BAD_PEER, "peer " + id + " of " + segment.subject()
                    + " is locked by another process");
        }
        writeIdentity(id, name);
        int epoch = PeerDescriptor.epoch(word) + 1;
        if (!compareAndSet(id, word, PeerDescriptor.word(epoch, NO_ACTOR, PeerState.ATTACHED))) {
            segment.file.unlockByte(SegmentDescriptor.peerLock(id));
            throw new SegmentException(Reason.BAD_PEER, "peer " + id + " of " + segment.subject()
                    + " changed while being claimed");
        }
        return pack(id, epoch);
    }

    private void writeIdentity(int id, String name) {
        long at = entry(id);
        memory.set(ValueLayout.JAVA_INT, at + PID_OFFSET, (int) Processes.pid());
        memory.set(ValueLayout.JAVA_LONG, at + START_TIME_OFFSET, Processes.startTime());
        memory.set(ValueLayout.JAVA_LONG, at + PID_NAMESPACE_OFFSET, Processes.pidNamespace());
        int length = Utf8.write(memory, at + NAME_OFFSET, name, NAME_CAPACITY);
        memory.set(ValueLayout.JAVA_INT, at + NAME_LENGTH_OFFSET, length);
        LONG.setRelease(memory, at + HEARTBEAT_OFFSET, Libc.monotonicNanos());
    }

    /**
     * Reserves an empty entry for a process about to be spawned.
     *
     * @param reserver this peer
     * @return the reserved id, or -1 when the table is full
     */
    int reserve(int reserver) {
        for (int id = 0; id < capacity; id++) {
            long word = word(id);
            if (PeerDescriptor.state(word) == PeerState.EMPTY
                    && !segment.file.isByteLockedByOther(SegmentDescriptor.peerLock(id))
                    && compareAndSet(id, word,
                            PeerDescriptor.word(PeerDescriptor.epoch(word), reserver, PeerState.RESERVED))) {
                memory.set(ValueLayout.JAVA_INT, entry(id) + PID_OFFSET, 0);
                memory.set(ValueLayout.JAVA_INT, entry(id) + NAME_LENGTH_OFFSET, 0);
                return id;
            }
        }
        return -1;
    }

    /** Returns a reservation that will not be claimed. */
    boolean releaseReserved(int id, int reserver) {
        checkId(id);
        long word = word(id);
        return PeerDescriptor.state(word) == PeerState.RESERVED && PeerDescriptor.actor(word) == reserver
                && compareAndSet(id, word, PeerDescriptor.word(PeerDescriptor.epoch(word), NO_ACTOR, PeerState.EMPTY));
    }

    /** The first step of a clean detach: ATTACHED to GOODBYE. */
    boolean goodbye(int id, int epoch) {
        return compareAndSet(id, PeerDescriptor.word(epoch, NO_ACTOR, PeerState.ATTACHED),
                PeerDescriptor.word(epoch, NO_ACTOR, PeerState.GOODBYE));
    }

    /** The last step of a clean detach: GOODBYE to EMPTY; the caller then releases the lock. */
    boolean leave(int id, int epoch) {
        return compareAndSet(id, PeerDescriptor.word(epoch, NO_ACTOR, PeerState.GOODBYE),
                PeerDescriptor.word(epoch, NO_ACTOR, PeerState.EMPTY));
    }

    void heartbeat(int id) {
        LONG.setRelease(memory, entry(id) + HEARTBEAT_OFFSET, Libc.monotonicNanos());
    }

    // ---------------------------------------------------------------- liveness

    /**
     * Decides what is known of peer {@code id}'s process, asking the operating system (its lock)
     * whether it still runs.
     *
     * @param id the peer
     * @return its liveness
     */
    Liveness liveness(int id) {
        return liveness(id, false);
    }

    /**
     * Decides what is known of peer {@code id}'s process for the monitor's periodic scan. A peer
     * whose heartbeat is fresh (at most one and a half heartbeat intervals old) counts as alive
     * without a look at its lock: a process that dies stops its heartbeat, so its lock is looked
     * at within two intervals of its last heartbeat. This keeps a tick of an idle peer to a few
     * loads, with no system call per peer, and death is still decided by the lock alone.
     *
     * @param id the peer
     * @return its liveness
     */
    Liveness scan(int id) {
        return liveness(id, true);
    }

    private Liveness liveness(int id, boolean trustFreshHeartbeat) {
        long word = word(id);
        PeerState state = PeerDescriptor.state(word);
        if (state == null || state == PeerState.EMPTY) {
            return state == null ? Liveness.DEAD : Liveness.NONE;
        }
        if (state == PeerState.RESERVED || state == PeerState.RECOVERING) {
            int actor = PeerDescriptor.actor(word);
            return actor < capacity && actor != id && processAlive(actor) ? Liveness.ALIVE : Liveness.DEAD;
        }
        long age = Libc.monotonicNanos() - (long) LONG.getAcquire(memory, entry(id) + HEARTBEAT_OFFSET);
        long interval = segment.header.heartbeatIntervalNanos();
        // A negative age is a heartbeat from another clock (a time namespace): never trusted.
        if (trustFreshHeartbeat && state == PeerState.ATTACHED && age >= 0 && age <= interval + interval / 2) {
            return Liveness.ALIVE;
        }
        if (!processAlive(id)) {
            return Liveness.DEAD;
        }
        return age > segment.header.livenessTimeoutNanos() ? Liveness.STALLED : Liveness.ALIVE;
    }

    /** A process holds the peer's lock, and its recorded (pid, start time) still runs. */
    private boolean processAlive(int id) {
        if (id == segment.peerId()) {
            return true; // this process: its own lock is invisible to its own description
        }
        if (!segment.file.isByteLockedByOther(SegmentDescriptor.peerLock(id))) {
            return false;
        }
        // The lock is held. The (pid, start time) check reads /proc, the costly part of a monitor
        // tick: once it passed for this incarnation of the entry, repeat it only every liveness
        // timeout. (Racy caches of independent values: a lost update only repeats the check.)
        long word = word(id);
        long now = Libc.monotonicNanos();
        if (verifiedWord[id] == word && now - verifiedAt[id] < segment.header.livenessTimeoutNanos()) {
            return true;
        }
        long at = entry(id);
        long pid = Integer.toUnsignedLong(memory.get(ValueLayout.JAVA_INT, at + PID_OFFSET));
        boolean alive = Processes.mayBeAlive(pid, memory.get(ValueLayout.JAVA_LONG, at + START_TIME_OFFSET),
                memory.get(ValueLayout.JAVA_LONG, at + PID_NAMESPACE_OFFSET));
        if (alive) {
            verifiedAt[id] = now;
            verifiedWord[id] = word;
        }
        return alive;
    }

    /**
     * A claimed recovery.
     *
     * @param word the entry's word before the claim
     * @param claimed the RECOVERING word this peer set
     */
    record Claim(long word, long claimed) {
        /** @return the state the dead peer's entry was in ({@code null} for a damaged word) */
        PeerState from() {
            return PeerDescriptor.state(word);
        }
    }

    /**
     * Claims the recovery of a dead peer, once: by compare-and-set of its (state, epoch) to
     * RECOVERING with this peer as actor. Takes over a recovery whose recoverer died.
     *
     * @return the claim, or {@code null} when the peer is not dead or another peer claimed it
     */
    Claim claimRecovery(int id, int recoverer) {
        long word = word(id);
        PeerState state = PeerDescriptor.state(word);
        if (state == PeerState.EMPTY || liveness(id) != Liveness.DEAD) {
            return null;
        }
        long claimed = PeerDescriptor.word(PeerDescriptor.epoch(word), recoverer, PeerState.RECOVERING);
        return compareAndSet(id, word, claimed) ? new Claim(word, claimed) : null;
    }

    /**
     * Gives up a recovery that failed part-way: RECOVERING back to the state and epoch before the
     * claim, with no actor (an actor's id may name a live peer by now, and the entry would look
     * alive), so that a later round of any peer's monitor claims it again (every step is idempotent).
     */
    void abandonRecovery(int id, Claim claim) {
        // The word before, its actor field replaced: also for a damaged state, which has no PeerState.
        compareAndSet(id, claim.claimed(), withoutActor(claim.word()));
    }

    /**
     * Takes peer {@code actor}, which is leaving or dead and about to have its entry emptied, out of
     * the entries that name it as their actor: the reservations it made and the recoveries it was
     * running. Such an entry counts as alive while its actor's process runs, and the actor's id is
     * free for the next process to attach once its entry is empty: left in place, the id would make
     * the entry look alive for as long as that unrelated process lives. With no actor, the entry is
     * dead, and the next recovery round takes it.
     */
    void forgetActor(int actor) {
        for (int id = 0; id < capacity; id++) {
            long word = word(id);
            PeerState state = PeerDescriptor.state(word);
            if (id != actor && (state == PeerState.RESERVED || state == PeerState.RECOVERING)
                    && PeerDescriptor.actor(word) == actor) {
                compareAndSet(id, word, withoutActor(word));
            }
        }
    }

    /** A state word with its actor field set to {@code NO_ACTOR}; the rest as it is, also a damaged state. */
    private static long withoutActor(long word) {
        return (word & ~0xFFFF_0000L) | ((long) (NO_ACTOR & 0xFFFF) << 16);
    }

    /** Ends a recovery: RECOVERING to EMPTY. */
    void finishRecovery(int id, long claimed) {
        compareAndSet(id, claimed, PeerDescriptor.word(PeerDescriptor.epoch(claimed), NO_ACTOR, PeerState.EMPTY));
    }

    PeerInfo info(int id) {
        long at = entry(id);
        long word = word(id);
        PeerState state = PeerDescriptor.state(word);
        boolean identified = state == PeerState.ATTACHED || state == PeerState.GOODBYE || state == PeerState.RECOVERING;
        Duration age = null;
        if (identified) {
            long nanos = Libc.monotonicNanos() - (long) LONG.getAcquire(memory, at + HEARTBEAT_OFFSET);
            age = Duration.ofNanos(Math.max(0, nanos));
        }
        int actor = PeerDescriptor.actor(word);
        return new PeerInfo(id, state == null ? PeerState.RECOVERING : state, PeerDescriptor.epoch(word),
                identified ? Integer.toUnsignedLong(memory.get(ValueLayout.JAVA_INT, at + PID_OFFSET)) : 0,
                identified ? memory.get(ValueLayout.JAVA_LONG, at + START_TIME_OFFSET) : 0,
                identified ? Utf8.read(memory, at + NAME_OFFSET, memory.get(ValueLayout.JAVA_INT, at + NAME_LENGTH_OFFSET),
                        NAME_CAPACITY) : "",
                age, liveness(id), actor == NO_ACTOR ? -1 : actor);
    }

    static long pack(int id, int epoch) {
        return ((long) epoch << 32) | id;
    }

    private void checkId(int id) {
        if (id < 0 || id >= capacity) {
            throw new SegmentException(Reason.BAD_PEER, "peer id " + id + " is outside the peer table of "
                    + segment.subject() + " (0.." + (capacity - 1) + ")");
        }
    }

    private long entry(int id) {
        if (id < 0 || id >= capacity) {
            throw new IndexOutOfBoundsException("peer id=" + id + " outside 0.." + (capacity - 1));
        }
        return (long) id * LENGTH;
    }
}
