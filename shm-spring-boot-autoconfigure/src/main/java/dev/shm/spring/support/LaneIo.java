package dev.shm.spring.support;

import dev.shm.core.lane.Lane;
import dev.shm.core.lane.LaneDescriptor;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.segment.Segment;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongConsumer;
import org.springframework.messaging.Message;

/**
 * Writes an encoded record into a lane — inline when it fits, else in a slot of the segment's pool
 * that the reader claims — and decodes the frames read from one.
 */
public final class LaneIo {

    /** The record was written. */
    public static final int OK = Lane.OK;
    /** The lane was reset: the other side died or left. */
    public static final int RESET = Lane.RESET;
    /** The lane stayed full until the deadline. */
    public static final int TIMEOUT = -10;
    /** The slot pool has no slot for a record this large. */
    public static final int NO_BUFFER = -11;

    private LaneIo() {
    }

    /**
     * Writes a record, waiting for room until the deadline.
     *
     * @param segment the segment
     * @param lane the lane (this thread is its one producer)
     * @param record the record, from offset 0
     * @param length its length
     * @param deadline {@link System#nanoTime()} deadline
     * @return {@link #OK}, {@link #RESET}, {@link #TIMEOUT} or {@link #NO_BUFFER}
     */
    public static int write(Segment segment, Lane lane, MemorySegment record, int length, long deadline) {
        return write(segment, lane, record, length, null, deadline);
    }

    /**
     * Writes an encoded record as {@link #write(Segment, Lane, MemorySegment, int, long)} does; a
     * record with a tail (a large {@code byte[]} payload) has its two parts copied straight into the
     * pool slot that carries it.
     *
     * @param segment the segment
     * @param lane the lane (this thread is its one producer)
     * @param record the record
     * @param deadline {@link System#nanoTime()} deadline
     * @return {@link #OK}, {@link #RESET}, {@link #TIMEOUT} or {@link #NO_BUFFER}
     */
    public static int write(Segment segment, Lane lane, ShmMessageCodec.Encoded record, long deadline) {
        if (record.tail() == null || record.length() <= lane.maxInlineLength()) {
            return write(segment, lane, record.segment(), record.length(), null, deadline);
        }
        return write(segment, lane, record.head(), record.headLength(), record.tail(), deadline);
    }

    /** The write; a {@code tail} comes only with a record above the lane's inline length (a pool slot's). */
    private static int write(Segment segment, Lane lane, MemorySegment head, int headLength, byte[] tail,
            long deadline) {
        SlotPool pool = segment.slotPool();
        int length = tail == null ? headLength : headLength + tail.length;
        long ref = -1;
        if (length > lane.maxInlineLength()) {
            ref = pool.allocate(length);
            if (ref < 0) {
                return NO_BUFFER;
            }
            MemorySegment data = pool.data(ref);
            MemorySegment.copy(head, 0, data, 0, headLength);
            if (tail != null) {
                MemorySegment.copy(tail, 0, data, ValueLayout.JAVA_BYTE, headLength, tail.length);
            }
        }
        int idle = 0;
        while (true) {
            int rc = ref < 0 ? lane.offerInline(head, 0, length) : lane.offerSlot(ref, length);
            if (rc == Lane.OK) {
                return OK;
            }
            if (rc != Lane.FULL || System.nanoTime() - deadline >= 0) {
                if (ref >= 0) {
                    pool.free(ref);
                }
                return rc == Lane.FULL ? TIMEOUT : rc == Lane.RESET ? RESET : NO_BUFFER;
            }
            idle = idle(idle);
        }
    }

    /**
     * Decodes a frame read from a lane; a slot frame's slot is claimed, read and freed.
     *
     * @param segment the segment
     * @param codec the codec
     * @param type the frame's type
     * @param payload the frame's payload
     * @return the message, or {@code null} for a stale slot reference
     * @throws ShmCodecException when the record does not decode
     */
    public static Message<?> decode(Segment segment, ShmMessageCodec codec, short type, MemorySegment payload) {
        if (type == LaneDescriptor.INLINE) {
            return codec.decode(payload, 0, payload.byteSize(), null, false);
        }
        if (type == LaneDescriptor.SLOT_REF) {
            SlotPool pool = segment.slotPool();
            long ref = Lane.slotRef(payload);
            long length = Lane.slotLength(payload);
            long capacity = pool.capacityOf(ref);
            if (capacity < 0 || length < 0 || length > capacity || !pool.transfer(ref, segment.peerId())) {
                return null;
            }
            try {
                return codec.decode(pool.data(ref), 0, length, null, false);
            } finally {
                pool.free(ref);
            }
        }
        throw new ShmCodecException("lane frame of type " + type + " is not a message record");
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
