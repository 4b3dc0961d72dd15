package dev.shm.core.segment;

import static dev.shm.core.segment.LeaseDescriptor.ACTIVE;
import static dev.shm.core.segment.LeaseDescriptor.CLAIMED;
import static dev.shm.core.segment.LeaseDescriptor.EMPTY;
import static dev.shm.core.segment.LeaseDescriptor.FD_OFFSET;
import static dev.shm.core.segment.LeaseDescriptor.LENGTH;
import static dev.shm.core.segment.LeaseDescriptor.PID_OFFSET;
import static dev.shm.core.segment.LeaseDescriptor.SIZE_OFFSET;
import static dev.shm.core.segment.LeaseDescriptor.START_TIME_OFFSET;
import static dev.shm.core.segment.LeaseDescriptor.STATE_OFFSET;

import dev.shm.core.ErrnoException;
import dev.shm.core.MemfdUnavailableException;
import dev.shm.core.ShmException;
import dev.shm.core.counters.SegmentCounters;
import dev.shm.core.internal.Errno;
import dev.shm.core.internal.Processes;
import dev.shm.core.memory.MappingException;
import dev.shm.core.memory.MemfdBuffer;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * The memfd leases of a segment: memfd buffers that a peer shares with the others, so that a frame
 * can name one by (lease, generation) and a reader can open it through
 * {@code /proc/<pid>/fd/<fd>}. A lease belongs to the peer that registered it; recovery drops the
 * leases of a dead peer, and a reference with a stale generation is refused.
 *
 * <p>Thread-safety: safe from any thread of any process.
 */
public final class LeaseTable {

    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();

    private final MemorySegment memory;
    private final int capacity;
    private final SegmentMemory segment;

    LeaseTable(MemorySegment memory, int capacity, SegmentMemory segment) {
        this.memory = memory;
        this.capacity = capacity;
        this.segment = segment;
    }

    /**
     * One active lease.
     *
     * @param index the entry
     * @param generation its generation
     * @param owner the peer that registered it
     * @param pid the owner's pid
     * @param fd the memfd's descriptor in the owner's process
     * @param size the memfd's size
     * @param startTime the owner's start time when it registered the lease (clock ticks after boot)
     */
    public record Lease(int index, int generation, int owner, long pid, int fd, long size, long startTime) {
    }

    /**
     * Registers a sealed memfd buffer of this process as a lease.
     *
     * @param buffer the buffer; it must stay open while the lease is registered
     * @return the lease, or {@code null} when the table is full
     * @throws IllegalArgumentException when the buffer is not sealed (readers would refuse it)
     */
    public Lease register(MemfdBuffer buffer) {
        if (!buffer.isSealed()) {
            throw new IllegalArgumentException("lease of memfd:" + buffer.name() + " refused: seal it first");
        }
        long startTime = Processes.startTime(); // before an entry is claimed: it may throw
        for (int index = 0; index < capacity; index++) {
            long at = entry(index);
            long word = (long) LONG.getAcquire(memory, at + STATE_OFFSET);
            if (StateWord.state(word) != EMPTY) {
                continue;
            }
            int generation = StateWord.epoch(word) + 1;
            if (!LONG.compareAndSet(memory, at + STATE_OFFSET, word,
                    StateWord.of(generation, segment.peerId(), CLAIMED))) {
                continue;
            }
            memory.set(ValueLayout.JAVA_LONG, at + PID_OFFSET, Processes.pid());
            memory.set(ValueLayout.JAVA_INT, at + FD_OFFSET, buffer.fd());
            memory.set(ValueLayout.JAVA_LONG, at + SIZE_OFFSET, buffer.size());
            memory.set(ValueLayout.JAVA_LONG, at + START_TIME_OFFSET, startTime);
            LONG.setRelease(memory, at + STATE_OFFSET, StateWord.of(generation, segment.peerId(), ACTIVE));
            return new Lease(index, generation, segment.peerId(), Processes.pid(), buffer.fd(), buffer.size(), startTime);
        }
        return null;
    }

    /**
     * A memfd that {@link #registerCopy} filled and leased: the caller ends the lease, then closes
     * the buffer.
     *
     * @param lease the lease
     * @param buffer the memfd
     */
    public record Leased(Lease lease, MemfdBuffer buffer) {
    }

    /**
     * Creates a sealed memfd of {@code headLength + tailLength} bytes named {@code name}, fills it
     * with {@code headLength} bytes of {@code head} from {@code offset}, then, when {@code tail} is
     * not null, {@code tailLength} bytes of {@code tail} from 0, and registers it. A full table is
     * seen before the memfd is made and filled; a copy or registration that fails closes it.
     *
     * @param name the memfd's name, as for {@link MemfdBuffer#create}
     * @param head the first part
     * @param offset where it starts in {@code head}
     * @param headLength its length
     * @param tail the rest, or {@code null}
     * @param tailLength its length (0 without a tail)
     * @return the lease and its buffer, or {@code null} when the table is full
     */
    public Leased registerCopy(String name, MemorySegment head, long offset, long headLength, MemorySegment tail,
            long tailLength) {
        if (!hasFree()) {
            return null;
        }
        long length = tail == null ? headLength : headLength + tailLength;
        MemfdBuffer buffer = MemfdBuffer.create(name, length);
        try {
            MemorySegment to = buffer.slice(0, length);
            MemorySegment.copy(head, offset, to, 0, headLength);
            if (tail != null) {
                MemorySegment.copy(tail, 0, to, headLength, tailLength);
            }
            Lease lease = register(buffer);
            if (lease == null) {
                buffer.close();
                return null;
            }
            return new Leased(lease, buffer);
        } catch (RuntimeException | Error e) { // the caller's memory failed (a fault on mapped memory is an Error)
            buffer.close();
            throw e;
        }
    }

    /**
     * Tells whether an entry is free now: a hint (another peer may take it first) that lets a sender
     * skip creating and filling a memfd that {@link #register} would refuse.
     *
     * @return {@code true} when some entry is empty
     */
    public boolean hasFree() {
        for (int index = 0; index < capacity; index++) {
            if (StateWord.state((long) LONG.getAcquire(memory, entry(index) + STATE_OFFSET)) == EMPTY) {
                return true;
            }
        }
        return false;
    }

    /**
     * Ends a lease: one this peer registered, or, for a lane's memfd frame, one whose frame this peer
     * read (the writer closes its buffer once it sees the lease ended: {@code LaneMemfds}). A lease
     * that ended already, or was registered again since, is left alone.
     *
     * @param lease the lease, as {@link #register} or {@link #lookup} returned it
     */
    public void release(Lease lease) {
        long at = entry(lease.index()) + STATE_OFFSET;
        long word = StateWord.of(lease.generation(), lease.owner(), ACTIVE);
        LONG.compareAndSet(memory, at, word, StateWord.of(lease.generation(), StateWord.NO_OWNER, EMPTY));
    }

    /**
     * Returns how many leases the table holds at most.
     *
     * @return the capacity
     */
    public int capacity() {
        return capacity;
    }

    /**
     * Finds an active lease by the (index, generation) a frame carries; both are untrusted.
     *
     * @param index the lease index
     * @param generation the lease generation
     * @return the lease, or {@code null} when the reference is out of range or stale
     */
    public Lease lookup(int index, int generation) {
        if (index < 0 || index >= capacity) {
            return null;
        }
        long at = entry(index);
        long word = (long) LONG.getAcquire(memory, at + STATE_OFFSET);
        if (StateWord.state(word) != ACTIVE || StateWord.epoch(word) != generation) {
            return null;
        }
        Lease lease = new Lease(index, generation, StateWord.owner(word), memory.get(ValueLayout.JAVA_LONG, at + PID_OFFSET),
                memory.get(ValueLayout.JAVA_INT, at + FD_OFFSET), memory.get(ValueLayout.JAVA_LONG, at + SIZE_OFFSET),
                memory.get(ValueLayout.JAVA_LONG, at + START_TIME_OFFSET));
        // Fields read between two loads of an unchanged word belong to that registration.
        return (long) LONG.getAcquire(memory, at + STATE_OFFSET) == word ? lease : null;
    }

    /**
     * Opens the memfd of a lease that {@link #lookup} found, from this process, through
     * {@code /proc/<pid>/fd/<fd>} of its owner.
     *
     * <p>Returns {@code null} when the lease no longer holds, or this process can never read it: the
     * open fails for another reason than a passing shortage (below: no such process or descriptor,
     * not a sealed memfd of the size, no permission), the process at the
     * lease's pid is not the one that registered it (the owner died before recovery dropped the lease,
     * and the pid may name another process now, whose descriptor the open may have found; while the
     * owner runs, the pid cannot have been anyone else's in between), or the lease ended meanwhile (an
     * owner ends a lease before it closes the fd, so the number may since name another file of the
     * owner's; still leased after the open means it did not).
     *
     * <p>Throws when the failure is a shortage of this process's while the lease still stands, which
     * passes: no free descriptor ({@code EMFILE}, {@code ENFILE}), no memory for the mapping
     * ({@code ENOMEM}, {@code EAGAIN}), or the owner's start time unreadable (which takes a descriptor
     * too). The memfd is still there; a reader that keeps its frame can try again. Other failures (no
     * permission to open another user's descriptors, for one) return {@code null}: trying again
     * would not help.
     *
     * @param lease the lease
     * @param minimumSize the size the reader needs; a smaller memfd is refused
     * @return the buffer, which the caller closes, or {@code null}
     * @throws MemfdUnavailableException when this process cannot open a memfd whose lease still stands
     */
    public MemfdBuffer open(Lease lease, long minimumSize) {
        MemfdBuffer buffer;
        try {
            buffer = MemfdBuffer.open(lease.pid(), lease.fd(), minimumSize);
        } catch (MappingException e) {
            if (e.getCause() instanceof ErrnoException errno && retryable(errno.errno()) && stands(lease)) {
                throw unavailable(lease, e);
            }
            return null;
        } catch (RuntimeException e) {
            return null;
        }
        long startTime = Processes.startTime(lease.pid());
        if (startTime != lease.startTime() || !stands(lease)) {
            buffer.close();
            if (startTime == Processes.UNREADABLE && stands(lease)) {
                // No descriptor left to read the owner's stat with, most likely: whose the memfd is
                // cannot be told, so it is neither read nor given up.
                throw unavailable(lease, new ShmException("cannot read /proc/" + lease.pid()
                        + "/stat to check that the process is the lease's owner"));
            }
            return null;
        }
        return buffer;
    }

    /**
     * A shortage of this process or of the system, which passes: no free descriptor in the process
     * ({@code EMFILE}) or in the system ({@code ENFILE}), no memory for the mapping ({@code ENOMEM},
     * {@code EAGAIN}). Anything else (another user's descriptors, {@code EACCES}) would not pass by
     * trying again, and loses the message as before.
     */
    private static boolean retryable(int errno) {
        return errno == Errno.EMFILE || errno == Errno.ENFILE || errno == Errno.ENOMEM || errno == Errno.EAGAIN;
    }

    private boolean stands(Lease lease) {
        return lookup(lease.index(), lease.generation()) != null;
    }

    private static MemfdUnavailableException unavailable(Lease lease, RuntimeException cause) {
        return new MemfdUnavailableException("memfd lease " + lease.index() + " of peer " + lease.owner()
                + " (process " + lease.pid() + ", descriptor " + lease.fd() + ") still stands, but " + cause.getMessage()
                + "; this process needs free descriptors (EMFILE: raise ulimit -n) or memory", cause);
    }

    /**
     * Returns every active lease.
     *
     * @return the leases
     */
    public List<Lease> leases() {
        List<Lease> leases = new ArrayList<>();
        for (int index = 0; index < capacity; index++) {
            long word = (long) LONG.getAcquire(memory, entry(index) + STATE_OFFSET);
            if (StateWord.state(word) == ACTIVE) {
                Lease lease = lookup(index, StateWord.epoch(word));
                if (lease != null) {
                    leases.add(lease);
                }
            }
        }
        return leases;
    }

    /**
     * Drops the leases of a peer. Idempotent.
     *
     * @param peer the peer
     * @param count whether to count the dropped leases (recovery of a dead peer) or not (a clean detach)
     * @return the leases dropped
     */
    int drop(int peer, boolean count) {
        int dropped = 0;
        for (int index = 0; index < capacity; index++) {
            long at = entry(index) + STATE_OFFSET;
            long word = (long) LONG.getAcquire(memory, at);
            int state = StateWord.state(word);
            if ((state == ACTIVE || state == CLAIMED) && StateWord.owner(word) == peer
                    && LONG.compareAndSet(memory, at, word,
                            StateWord.of(StateWord.epoch(word), StateWord.NO_OWNER, EMPTY))) {
                dropped++;
            }
        }
        if (count && dropped > 0) {
            segment.counters().add(SegmentCounters.LEASES_DROPPED, dropped);
        }
        return dropped;
    }

    private long entry(int index) {
        return (long) index * LENGTH;
    }
}
