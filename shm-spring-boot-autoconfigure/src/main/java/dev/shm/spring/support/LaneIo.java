package dev.shm.spring.support;

import dev.shm.core.MemfdUnavailableException;
import dev.shm.core.lane.Lane;
import dev.shm.core.lane.LaneDescriptor;
import dev.shm.core.lane.LaneMemfds;
import dev.shm.core.memory.MemfdBuffer;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.segment.LeaseTable;
import dev.shm.core.segment.Segment;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongConsumer;
import org.springframework.messaging.Message;

/**
 * Writes an encoded record into a lane — inline when it fits, else in a slot of the segment's pool
 * that the reader claims, else in a memfd whose lease the reader ends — and decodes the frames read
 * from one.
 */
public final class LaneIo {

    /** The record was written. */
    public static final int OK = Lane.OK;
    /** The lane was reset: the other side died or left. */
    public static final int RESET = Lane.RESET;
    /** The lane stayed full until the deadline. */
    public static final int TIMEOUT = -10;
    /** The slot pool has no slot for the record, or the lease table no entry for its memfd. */
    public static final int NO_BUFFER = -11;
    /** The lane stayed full, and its reader read nothing, for the stall bound. */
    public static final int STALLED = -12;
    /** No stall bound: a write waits for room up to its deadline. */
    public static final long NO_STALL = Long.MAX_VALUE;

    private LaneIo() {
    }

    /**
     * Writes an encoded record, waiting for room until the deadline: inline when it fits the lane's
     * inline length, else in a pool slot of the smallest class that holds it, else in a memfd that
     * {@code memfds} leases (the reader ends the lease once it has read it). A record with a tail (a
     * large {@code byte[]} payload) has its two parts copied straight into the slot or memfd.
     *
     * @param segment the segment
     * @param lane the lane (this thread is its one producer)
     * @param record the record
     * @param memfds the writer's memfds (safe across threads; the caller's lock guards the lane)
     * @param deadline {@link System#nanoTime()} deadline
     * @return {@link #OK}, {@link #RESET}, {@link #TIMEOUT} or {@link #NO_BUFFER}
     */
    public static int write(Segment segment, Lane lane, ShmMessageCodec.Encoded record, LaneMemfds memfds,
            long deadline) {
        return write(segment, lane, record, memfds, deadline, NO_STALL);
    }

    /**
     * Writes as {@link #write(Segment, Lane, ShmMessageCodec.Encoded, LaneMemfds, long)} does, but gives
     * up once the lane has stayed full for {@code stallNanos} without its reader reading anything: a
     * provider's reply to a client that reads its replies only while a caller waits for one, and has
     * none waiting (they timed out), would otherwise hold the provider up to the deadline.
     *
     * @param segment the segment
     * @param lane the lane (this thread is its one producer)
     * @param record the record
     * @param memfds the writer's memfds
     * @param deadline {@link System#nanoTime()} deadline
     * @param stallNanos how long a full lane may go unread before the write gives up, or {@link #NO_STALL}
     * @return {@link #OK}, {@link #RESET}, {@link #TIMEOUT}, {@link #STALLED} or {@link #NO_BUFFER}
     */
    public static int write(Segment segment, Lane lane, ShmMessageCodec.Encoded record, LaneMemfds memfds,
            long deadline, long stallNanos) {
        if (record.tail() == null || record.length() <= lane.maxInlineLength()) {
            return write(segment, lane, record.segment(), record.length(), null, memfds, deadline, stallNanos);
        }
        return write(segment, lane, record.head(), record.headLength(), record.tail(), memfds, deadline, stallNanos);
    }

    /** The write; a {@code tail} comes only with a record above the lane's inline length (a pool slot's or memfd's). */
    private static int write(Segment segment, Lane lane, MemorySegment head, int headLength, byte[] tail,
            LaneMemfds memfds, long deadline, long stallNanos) {
        SlotPool pool = segment.slotPool();
        long length = tail == null ? headLength : (long) headLength + tail.length;
        long ref = -1;
        LaneMemfds.Staged memfd = null;
        if (length > lane.maxInlineLength() && length > pool.largestSlotSize()) { // neither inline nor in a slot
            memfd = memfds.stage(head, headLength, tail);
            if (memfd == null) {
                return NO_BUFFER;
            }
        } else if (length > lane.maxInlineLength()) { // in a slot
            ref = pool.allocate(length);
            if (ref < 0) {
                return NO_BUFFER;
            }
            try {
                MemorySegment data = pool.data(ref);
                MemorySegment.copy(head, 0, data, 0, headLength);
                if (tail != null) {
                    MemorySegment.copy(tail, 0, data, ValueLayout.JAVA_BYTE, headLength, tail.length);
                }
            } catch (RuntimeException | Error e) { // the record's memory failed (a fault is an InternalError): the slot goes back
                try {
                    pool.free(ref);
                } catch (RuntimeException | Error f) {
                    e.addSuppressed(f);
                }
                throw e;
            }
        }
        int rc = Lane.FULL;
        boolean stalled = false;
        try {
            int idle = 0;
            long unread = -1; // the lane's unread bytes when it was last seen to go down
            long unreadSince = 0;
            while (true) {
                rc = memfd != null
                        ? lane.offerMemfd(memfd.lease().index(), memfd.lease().generation(), 0, length)
                        : ref < 0 ? lane.offerInline(head, 0, (int) length) : lane.offerSlot(ref, length);
                long now = System.nanoTime();
                // An interrupted writer gives up like a late one: its parks would return at once.
                if (rc != Lane.FULL || now - deadline >= 0 || Thread.currentThread().isInterrupted()) {
                    break;
                }
                if (stallNanos != NO_STALL) {
                    long pending = lane.pending(); // only this writer adds to it, and it adds nothing while it waits
                    if (unread < 0 || pending < unread) {
                        unread = pending;
                        unreadSince = now;
                    } else if (now - unreadSince >= stallNanos) {
                        stalled = true;
                        break;
                    }
                }
                idle = idle(idle);
            }
        } finally { // also when an offer throws (the segment closed under it): nothing stays held
            if (rc == Lane.OK) {
                if (memfd != null) {
                    memfds.written(memfd, lane);
                }
            } else {
                if (ref >= 0) {
                    pool.free(ref);
                }
                if (memfd != null) {
                    memfds.discard(memfd);
                }
            }
        }
        return rc == Lane.OK ? OK : rc == Lane.FULL ? (stalled ? STALLED : TIMEOUT) : rc == Lane.RESET ? RESET : NO_BUFFER;
    }

    /**
     * Decodes a frame read from a lane; a slot frame's slot is claimed, read and freed.
     *
     * @param segment the segment
     * @param codec the codec
     * @param type the frame's type
     * @param payload the frame's payload
     * @param writer the peer that writes the lane: a memfd frame must name one of its leases
     * @return the message, or {@code null} for a stale slot or memfd reference
     * @throws ShmCodecException when the record does not decode
     * @throws MemfdUnavailableException when this process cannot open a memfd frame's memfd now (no
     *     free descriptor, for one): its lease is kept, and a reader that lets the exception out of its
     *     frame handler leaves the frame in the lane (a lane moves past a frame only once its handler
     *     returned) and reads it again later
     */
    public static Message<?> decode(Segment segment, ShmMessageCodec codec, short type, MemorySegment payload,
            int writer) {
        if (type == LaneDescriptor.INLINE) {
            return codec.decode(payload, 0, payload.byteSize(), null, false);
        }
        if (type == LaneDescriptor.SLOT_REF) {
            SlotPool pool = segment.slotPool();
            long ref = Lane.slotRef(payload);
            long length = Lane.slotLength(payload);
            long capacity = pool.capacityOf(ref);
            if (capacity < 0 || length < 0 || length > capacity) {
                return null;
            }
            if (!pool.transfer(ref, writer, segment.peerId())) {
                if (pool.isCurrent(ref)) { // a damaged frame: another peer's slot is not this reader's to take
                    throw new ShmCodecException("lane frame names pool slot " + Long.toHexString(ref)
                            + " that the lane's writer, peer " + writer + ", does not hold alone");
                }
                return null; // stale: its writer died, or gave up on it
            }
            try {
                return codec.decode(pool.data(ref), 0, length, null, false);
            } finally {
                pool.free(ref);
            }
        }
        if (type == LaneDescriptor.MEMFD_REF) {
            return decodeMemfd(segment, codec, payload, writer);
        }
        throw new ShmCodecException("lane frame of type " + type + " is not a message record");
    }

    /**
     * Says why a record found no room, for an error message: no pool slot, or no memfd lease.
     *
     * @param segment the segment
     * @param length the record's length
     * @return the reason, with the fix
     */
    public static String noBuffer(Segment segment, long length) {
        SlotPool pool = segment.slotPool();
        return length > pool.largestSlotSize()
                ? "all " + segment.leases().capacity() + " memfd leases of segment '" + segment.name() + "' are in "
                        + "use (a message above the largest slot class holds one until its reader has read it)"
                : "no free slot of " + length + " bytes or more in the pool of segment '" + segment.name()
                        + "', and no room to grow it; add slots to its slot-classes, or raise its size";
    }

    /**
     * A memfd frame: its lease, offset and length are untrusted; the lease is this reader's to end
     * once the record is read ({@link LaneMemfds}), whether it decodes or not, but not while the
     * memfd cannot be opened now: the frame stays for a later read.
     */
    private static Message<?> decodeMemfd(Segment segment, ShmMessageCodec codec, MemorySegment payload, int writer) {
        LeaseTable leases = segment.leases();
        LeaseTable.Lease lease = leases.lookup(Lane.memfdLease(payload), Lane.memfdGeneration(payload));
        if (lease == null) {
            return null; // its writer died, or gave up on it (its lane was reset)
        }
        if (lease.owner() != writer) { // a damaged frame: another peer's lease is not this reader's to end
            throw new ShmCodecException("lane frame names memfd lease " + lease.index() + " of peer " + lease.owner()
                    + ", not of the lane's writer, peer " + writer);
        }
        long offset = Lane.memfdOffset(payload);
        long length = Lane.memfdLength(payload);
        long size = lease.size();
        boolean keep = false;
        try {
            if (size < 0 || offset < 0 || offset > size || length <= 0 || length > size - offset) {
                throw new ShmCodecException("lane frame names bytes " + offset + "+" + length + " of a memfd of "
                        + lease.size() + " bytes");
            }
            MemfdBuffer buffer;
            try {
                buffer = leases.open(lease, offset + length);
            } catch (MemfdUnavailableException e) {
                keep = true;
                throw e;
            }
            if (buffer == null) {
                return null; // its writer died or ended the lease while this opened it
            }
            try (buffer) {
                return codec.decode(buffer.readOnlySlice(offset, length), 0, length, null, false);
            }
        } finally {
            if (!keep) {
                leases.release(lease);
            }
        }
    }

    /**
     * Waits a little, longer the longer nothing happened: spin, then yield, then park up to 1 ms.
     *
     * @param idle how many times nothing happened so far
     * @return the next count
     */
    public static int idle(int idle) {
        if (!spinOrYield(idle)) {
            LockSupport.parkNanos(Math.min(1_000_000L, 10_000L * (idle - 199)));
        }
        return Math.min(idle + 1, 1_000);
    }

    /** The longest a reader sleeps on its doorbell before it looks again by itself. */
    public static final long SLEEP_NANOS = 50_000_000L;

    /**
     * Waits a little, as {@link #idle(int)}, but sleeps with {@code sleep} (on a doorbell the
     * writer rings: woken by the next frame, not after a fixed park) once spinning and yielding
     * found nothing.
     *
     * @param idle how many times nothing happened so far
     * @param sleep sleeps at most the given nanoseconds
     * @return the next count
     */
    public static int idle(int idle, LongConsumer sleep) {
        if (!spinOrYield(idle)) {
            sleep.accept(SLEEP_NANOS);
        }
        return Math.min(idle + 1, 1_000);
    }

    /** Spins for the first 100 rounds, yields for the next 100; false after that (time to sleep). */
    private static boolean spinOrYield(int idle) {
        if (idle < 100) {
            Thread.onSpinWait();
        } else if (idle < 200) {
            Thread.yield();
        } else {
            return false;
        }
        return true;
    }
}
