package dev.shm.core.lane;

import static dev.shm.core.lane.LaneDescriptor.DATA_OFFSET;
import static dev.shm.core.lane.LaneDescriptor.DOORBELL_OFFSET;
import static dev.shm.core.lane.LaneDescriptor.FRAME_FLAGS_OFFSET;
import static dev.shm.core.lane.LaneDescriptor.FRAME_HEADER_LENGTH;
import static dev.shm.core.lane.LaneDescriptor.FRAME_LENGTH_OFFSET;
import static dev.shm.core.lane.LaneDescriptor.FRAME_TYPE_OFFSET;
import static dev.shm.core.lane.LaneDescriptor.INLINE;
import static dev.shm.core.lane.LaneDescriptor.LAST_OFFSET;
import static dev.shm.core.lane.LaneDescriptor.MEMFD_REF;
import static dev.shm.core.lane.LaneDescriptor.MEMFD_REF_LENGTH;
import static dev.shm.core.lane.LaneDescriptor.READING_OFFSET;
import static dev.shm.core.lane.LaneDescriptor.READ_OFFSET;
import static dev.shm.core.lane.LaneDescriptor.SLOT_REF;
import static dev.shm.core.lane.LaneDescriptor.SLOT_REF_LENGTH;
import static dev.shm.core.lane.LaneDescriptor.WRITE_OFFSET;
import static dev.shm.core.lane.LaneDescriptor.WRITING_OFFSET;
import static dev.shm.core.lane.LaneDescriptor.epochOf;
import static dev.shm.core.lane.LaneDescriptor.frameLength;
import static dev.shm.core.lane.LaneDescriptor.position;
import static dev.shm.core.lane.LaneDescriptor.positionOf;

import dev.shm.core.counters.Counters;
import dev.shm.core.counters.SegmentCounters;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;

/**
 * One direction of a lane: a single-producer, single-consumer bip-buffer of frames in shared
 * memory (see {@link LaneDescriptor}). One process writes, one reads.
 *
 * <h2>Writing</h2>
 * {@link #offerInline}, {@link #offerSlot} and {@link #offerMemfd} each write one frame and return
 * a named outcome: {@link #OK}, {@link #FULL} (retry later), {@link #RESET} (the lane was reset by
 * recovery: the other side died; reopen) or {@link #TOO_LARGE} (use a slot reference instead). A
 * frame is contiguous in the lane, so a reader can hand it out without copying.
 *
 * <h2>Reading</h2>
 * {@link #poll} hands frames to a {@link FrameHandler} in order and releases each after the handler
 * returns, so a reader that dies mid-frame leaves the frame in the lane, where recovery finds the
 * slot reference it carries. Every frame header is checked before use: a frame that claims more
 * bytes than the lane holds, or an unknown type, is counted as corrupt, and the rest of the lane's
 * data is dropped.
 *
 * <p>From its first look at the positions to the end of a write, or of a poll that found frames,
 * each side holds its in-flight word ({@link LaneDescriptor}); a releaser of the pair waits for it
 * before it formats the lane for its next user (see {@code LaneTable}). An empty poll takes none.
 *
 * <p>Thread-safety: one producer thread and one consumer thread.
 */
public final class Lane {

    /** Outcome: the frame was written. */
    public static final int OK = 0;
    /** Outcome: not enough contiguous room now; retry after the reader caught up. */
    public static final int FULL = -1;
    /** Outcome: the lane was reset (the other side died and was recovered); reopen it. */
    public static final int RESET = -2;
    /** Outcome: the frame can never fit; send a slot reference instead. */
    public static final int TOO_LARGE = -3;

    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();

    private final MemorySegment memory;
    private final MemorySegment data;
    private final int capacity;
    private final int epoch;
    private final Counters counters;
    private final String name;
    private final Doorbell doorbell;

    /**
     * Wraps a formatted lane direction.
     *
     * @param memory the direction: header and data, {@link LaneDescriptor#directionLength} bytes
     * @param capacity the data capacity
     * @param epoch the lane's epoch at open; a different epoch in the positions means a reset
     * @param counters the segment's counters
     * @param name what the lane is, for messages
     */
    Lane(MemorySegment memory, int capacity, int epoch, Counters counters, String name) {
        this.memory = memory;
        this.data = memory.asSlice(DATA_OFFSET, capacity);
        this.capacity = capacity;
        this.epoch = epoch & 0xFFFF;
        this.counters = counters;
        this.name = name;
        this.doorbell = new Doorbell(memory.asSlice(DOORBELL_OFFSET, Doorbell.LENGTH));
    }

    /**
     * Formats a direction: empty, at an epoch.
     *
     * @param memory the direction's memory
     * @param epoch the epoch
     */
    static void format(MemorySegment memory, int epoch) {
        Doorbell.clear(memory.asSlice(DOORBELL_OFFSET, Doorbell.LENGTH));
        LONG.setRelease(memory, (long) WRITING_OFFSET, 0L);
        LONG.setRelease(memory, (long) READING_OFFSET, 0L);
        LONG.setRelease(memory, (long) LAST_OFFSET, 0L);
        LONG.setRelease(memory, (long) READ_OFFSET, position(epoch, 0));
        LONG.setRelease(memory, (long) WRITE_OFFSET, position(epoch, 0));
    }

    /** The lane's epoch at open. */
    int epoch() {
        return epoch;
    }

    /**
     * Returns the largest payload an inline frame may carry.
     *
     * @return a quarter of the capacity, less the frame header
     */
    public int maxInlineLength() {
        return capacity / 4 - FRAME_HEADER_LENGTH;
    }

    /**
     * Returns whether the lane was reset since it was opened.
     *
     * @return {@code true} after a reset
     */
    public boolean isReset() {
        return epochOf((long) LONG.getAcquire(memory, (long) WRITE_OFFSET)) != epoch
                || epochOf((long) LONG.getAcquire(memory, (long) READ_OFFSET)) != epoch;
    }

    // ---------------------------------------------------------------- producer

    /**
     * Writes a frame with the bytes of {@code source}.
     *
     * @param source the bytes
     * @param offset where they start in {@code source}
     * @param length how many
     * @return {@link #OK}, {@link #FULL}, {@link #RESET} or {@link #TOO_LARGE}
     */
    public int offerInline(MemorySegment source, long offset, int length) {
        if (length < 0 || length > maxInlineLength()) {
            return TOO_LARGE;
        }
        long at = beginWrite(frameLength(length));
        if (at < 0) {
            return (int) at;
        }
        try {
            MemorySegment.copy(source, offset, data, at + FRAME_HEADER_LENGTH, length);
            return commit(at, length, INLINE);
        } finally {
            endWrite();
        }
    }

    /**
     * Writes a frame that carries a slot reference.
     *
     * @param ref the slot reference
     * @param length the message length in the slot
     * @return {@link #OK}, {@link #FULL} or {@link #RESET}
     */
    public int offerSlot(long ref, long length) {
        long at = beginWrite(frameLength(SLOT_REF_LENGTH));
        if (at < 0) {
            return (int) at;
        }
        try {
            data.set(ValueLayout.JAVA_LONG, at + FRAME_HEADER_LENGTH, ref);
            data.set(ValueLayout.JAVA_LONG, at + FRAME_HEADER_LENGTH + 8, length);
            return commit(at, SLOT_REF_LENGTH, SLOT_REF);
        } finally {
            endWrite();
        }
    }

    /**
     * Writes a frame that carries a memfd reference.
     *
     * @param lease the lease of the memfd in the segment's lease table
     * @param generation the lease's generation
     * @param offset where the message starts in the memfd
     * @param length the message length
     * @return {@link #OK}, {@link #FULL} or {@link #RESET}
     */
    public int offerMemfd(int lease, int generation, long offset, long length) {
        long at = beginWrite(frameLength(MEMFD_REF_LENGTH));
        if (at < 0) {
            return (int) at;
        }
        try {
            data.set(ValueLayout.JAVA_INT, at + FRAME_HEADER_LENGTH, lease);
            data.set(ValueLayout.JAVA_INT, at + FRAME_HEADER_LENGTH + 4, generation);
            data.set(ValueLayout.JAVA_LONG, at + FRAME_HEADER_LENGTH + 8, offset);
            data.set(ValueLayout.JAVA_LONG, at + FRAME_HEADER_LENGTH + 16, length);
            return commit(at, MEMFD_REF_LENGTH, MEMFD_REF);
        } finally {
            endWrite();
        }
    }

    /** Where the granted frame starts, or FULL / RESET. Remembers whether it wraps. */
    private long pendingWrite;
    private long pendingWord;

    /**
     * Takes the in-flight word, then a grant ({@link #grant}); gives the word back when there is
     * none. The word is stored before the positions are read, and the releaser of the pair reads it
     * after it moved the write position to the next epoch (both sequentially consistent): either
     * this grant sees the lane stopped, or the releaser sees the word and waits for {@link #endWrite}
     * before it formats the lane for its next user, whose data this writer would otherwise overwrite
     * (the frame bytes, and {@code last} on a wrap) between its grant and its failed commit.
     * Package-private for the test of a writer paused there.
     */
    long beginWrite(int frameLength) {
        if (!enter(WRITING_OFFSET)) {
            return RESET;
        }
        long at;
        try {
            at = grant(frameLength);
        } catch (RuntimeException e) { // damaged positions: the word goes back, or a release waits for it
            endWrite();
            throw e;
        }
        if (at < 0) {
            endWrite();
        }
        return at;
    }

    /** Gives the in-flight word back (unless a format already cleared it, or it is a later epoch's). */
    void endWrite() {
        LONG.compareAndSet(memory, (long) WRITING_OFFSET, inFlight(), 0L);
    }

    /** The in-flight word of this lane's epoch. */
    private long inFlight() {
        return position(epoch, 1);
    }

    /**
     * Takes this side's in-flight word at {@code offset} by compare-and-set (sequentially
     * consistent, so the positions read after it are read after the word is visible). A word of
     * another epoch is a stale side's: one that outlived a release's wait, or a lane object of a
     * pair released since, whose word a plain store would have replaced and whose clear would then
     * have wiped the current side's. The write position says which of the two is stale: when it is
     * this lane, the word is taken over; when it is not, this lane was reset and nothing is stored.
     *
     * @return false when this lane was reset (RESET, without a word)
     */
    private boolean enter(long offset) {
        long mine = inFlight();
        while (true) {
            long word = (long) LONG.getVolatile(memory, offset);
            if (word != 0 && word != mine && epochOf((long) LONG.getVolatile(memory, (long) WRITE_OFFSET)) != epoch) {
                return false;
            }
            if (LONG.compareAndSet(memory, offset, word, mine)) {
                return true;
            }
        }
    }

    private long grant(int frameLength) {
        long w = (long) LONG.getVolatile(memory, (long) WRITE_OFFSET);
        long r = (long) LONG.getAcquire(memory, (long) READ_OFFSET);
        if (epochOf(w) != epoch || epochOf(r) != epoch) {
            return RESET;
        }
        long write = positionOf(w);
        long read = positionOf(r);
        if (write > capacity || read > capacity || ((write | read) & 7) != 0) {
            // Positions only ever move by whole frames within the data: these were written by something
            // else. Granting from them would write outside the data or over unread frames.
            counters.increment(SegmentCounters.CORRUPT_FRAMES_REJECTED);
            throw new dev.shm.core.CorruptionException(name + ": positions write=" + write + ", read=" + read
                    + " outside capacity=" + capacity + " or not 8-byte aligned; nothing written");
        }
        pendingWord = w;
        if (write >= read) {
            if (write + frameLength <= capacity) {
                pendingWrite = write;
                return write;
            }
            if (frameLength < read) {
                pendingWrite = write;
                return 0; // wrap to the start; the data before ends at `write`
            }
            return FULL;
        }
        if (write + frameLength < read) {
            pendingWrite = write;
            return write;
        }
        return FULL;
    }

    /** Publishes the granted frame: OK, or RESET when the lane was stopped or reset since the grant. */
    int commit(long at, int payloadLength, short type) {
        data.set(ValueLayout.JAVA_INT, at + FRAME_LENGTH_OFFSET, payloadLength);
        data.set(ValueLayout.JAVA_SHORT, at + FRAME_TYPE_OFFSET, type);
        data.set(ValueLayout.JAVA_SHORT, at + FRAME_FLAGS_OFFSET, (short) 0);
        if (at == 0 && pendingWrite != 0) {
            // Wrapped: the reader must stop at the old position before it jumps to the start.
            LONG.setRelease(memory, (long) LAST_OFFSET, pendingWrite);
        }
        long next = position(epoch, at + frameLength(payloadLength));
        // The compare-and-set publishes the frame (volatile, hence release) and fails after a reset.
        if (!LONG.compareAndSet(memory, (long) WRITE_OFFSET, pendingWord, next)) {
            return RESET;
        }
        doorbell.ring(); // a system call only when the reader sleeps
        return OK;
    }

    // ---------------------------------------------------------------- consumer

    /** Receives the frames of a lane. */
    @FunctionalInterface
    public interface FrameHandler {
        /**
         * Handles one frame. The payload is valid only during the call.
         *
         * @param type {@link LaneDescriptor#INLINE}, {@link LaneDescriptor#SLOT_REF} or {@link LaneDescriptor#MEMFD_REF}
         * @param payload the frame's payload, read-only; for references, decode it with the
         *     static methods of this class
         */
        void onFrame(short type, MemorySegment payload);
    }

    /**
     * Hands up to {@code limit} frames to {@code handler}, releasing each after the handler
     * returns. Frames are checked before use; a corrupt one is counted and the lane's remaining
     * data dropped. A handler that throws keeps its frame, and the frames behind it, in the lane:
     * the exception passes out of this poll, and the next poll hands that frame out again (the
     * frames handled before it in this poll are released).
     *
     * @param handler receives the frames
     * @param limit the most frames to hand out
     * @return the number of frames handled, or {@link #RESET} when the lane was reset
     */
    public int poll(FrameHandler handler, int limit) {
        long r = (long) LONG.getAcquire(memory, (long) READ_OFFSET);
        long w = (long) LONG.getAcquire(memory, (long) WRITE_OFFSET);
        if (epochOf(w) != epoch || epochOf(r) != epoch) {
            return RESET;
        }
        if (w == r) {
            return 0; // nothing to read: no in-flight word for an empty poll
        }
        // As a writer's (beginWrite): the releaser formats the lane only once no reader of this epoch
        // reads frames from its data, which after the format would be the next user's.
        if (!enter(READING_OFFSET)) {
            return RESET;
        }
        try {
            return read(handler, limit, LIVE);
        } finally {
            LONG.compareAndSet(memory, (long) READING_OFFSET, inFlight(), 0L);
        }
    }

    /**
     * Sleeps until the writer commits a frame (it rings this lane's doorbell), at most
     * {@code timeoutNanos}; returns at once when a frame is there or the lane was reset. For the
     * lane's one reader, after polling found nothing for a while: a sleep costs the writer's first
     * commit after it a {@code futex} wake, and the writer nothing otherwise.
     *
     * @param timeoutNanos the longest sleep
     */
    public void awaitFrames(long timeoutNanos) {
        doorbell.await(0x1_0000 | epoch, this::hasFrames, timeoutNanos);
    }

    /**
     * Wakes this lane's reader if it sleeps in {@link #awaitFrames}: for a reader's owner that
     * moved on to another lane, or stops.
     */
    public void wakeReader() {
        doorbell.wake();
    }

    /**
     * Returns whether a frame is there to read (or the lane was reset): a look, for a reader that
     * polls several lanes before it sleeps.
     *
     * @return {@code true} when a poll would hand out a frame or report the reset
     */
    public boolean hasFrames() {
        long r = (long) LONG.getVolatile(memory, (long) READ_OFFSET);
        long w = (long) LONG.getVolatile(memory, (long) WRITE_OFFSET);
        return w != r || epochOf(w) != epoch || epochOf(r) != epoch;
    }

    /**
     * Waits until neither side of this lane's epoch is in flight (between its first look at the
     * positions and the end of its write or read), for a releaser that stopped the writer
     * ({@link #drain}) and is about to format the lane: a side that died holds its word for good,
     * so a dead writer or reader is not waited for, and none past {@code deadline}.
     *
     * @param deadWriter whether the writer is the dead peer being recovered
     * @param deadReader whether the reader is
     * @param deadline the {@link System#nanoTime} after which it stops waiting
     * @return whether no side was in flight when it returned
     */
    boolean awaitQuiet(boolean deadWriter, boolean deadReader, long deadline) {
        for (int round = 0; ; round++) {
            boolean writing = !deadWriter && (long) LONG.getVolatile(memory, (long) WRITING_OFFSET) == inFlight();
            boolean reading = !deadReader && (long) LONG.getVolatile(memory, (long) READING_OFFSET) == inFlight();
            if (!writing && !reading) {
                return true;
            }
            if (System.nanoTime() - deadline >= 0) {
                return false;
            }
            if (round < 1_000) {
                Thread.onSpinWait();
            } else {
                LockSupport.parkNanos(50_000);
            }
        }
    }

    /** For {@link #read}: the writer is live; read its position for every frame. */
    private static final long LIVE = -1;

    /**
     * Stops the writer and hands every frame it committed before to {@code handler}, releasing each:
     * for the releaser of a pair ({@link LaneTable}), before it formats the lane. The write position
     * moves to the next epoch first, by compare-and-set, so a commit after that fails with
     * {@link #RESET} and its writer keeps (and frees) what it wrote, and every frame committed
     * before it is drained here. Draining first and stopping the writer after would wipe a frame
     * committed in between, which its writer took as sent. A lane stopped by a releaser that died is
     * drained from where it stopped; a lane formatted since holds nothing of this epoch.
     *
     * @param handler receives the frames
     * @return the number of frames handled, or {@link #RESET} when the lane holds nothing of this epoch
     * @throws dev.shm.core.CorruptionException when a frame is corrupt (counted; the rest is dropped)
     */
    int drain(FrameHandler handler) {
        long w;
        do {
            w = (long) LONG.getAcquire(memory, (long) WRITE_OFFSET);
            if (epochOf(w) == ((epoch + 1) & 0xFFFF)) {
                break; // stopped already, by a releaser that died
            }
            if (epochOf(w) != epoch) {
                return RESET;
            }
        } while (!LONG.compareAndSet(memory, (long) WRITE_OFFSET, w, position(epoch + 1, positionOf(w))));
        doorbell.wake(); // a reader asleep on the lane sees the reset now, not at the end of its sleep
        return read(handler, Integer.MAX_VALUE, position(epoch, positionOf(w)));
    }

    /**
     * Hands frames to {@code handler} up to the write position: the writer's, read for every frame
     * ({@link #LIVE}), or {@code stopped}, the word of a writer stopped by {@link #drain}.
     */
    private int read(FrameHandler handler, int limit, long stopped) {
        int handled = 0;
        while (handled < limit) {
            long r = (long) LONG.getAcquire(memory, (long) READ_OFFSET);
            long w = stopped == LIVE ? (long) LONG.getVolatile(memory, (long) WRITE_OFFSET) : stopped;
            if (epochOf(w) != epoch || epochOf(r) != epoch) {
                return RESET;
            }
            long read = positionOf(r);
            long write = positionOf(w);
            long end;
            if (write >= read) {
                end = write;
            } else {
                long last = (long) LONG.getAcquire(memory, (long) LAST_OFFSET);
                if (read >= last) {
                    // Everything before the wrap is read: jump to the start.
                    if (!LONG.compareAndSet(memory, (long) READ_OFFSET, r, position(epoch, 0)) && stopped == LIVE) {
                        return RESET;
                    }
                    continue;
                }
                end = last;
            }
            if (read == end) {
                return handled;
            }
            if (end > capacity || read > end || ((read | end) & 7) != 0) {
                return corrupt(r, write, "positions read=" + read + ", end=" + end + " outside capacity=" + capacity
                        + " or not 8-byte aligned");
            }
            long available = end - read;
            int payloadLength = available >= FRAME_HEADER_LENGTH
                    ? data.get(ValueLayout.JAVA_INT, read + FRAME_LENGTH_OFFSET) : -1;
            short type = available >= FRAME_HEADER_LENGTH ? data.get(ValueLayout.JAVA_SHORT, read + FRAME_TYPE_OFFSET) : 0;
            // The length is compared before it is rounded: rounding a length near 2^31 overflows.
            if (payloadLength < 0 || payloadLength > available - FRAME_HEADER_LENGTH
                    || frameLength(payloadLength) > available || !validType(type, payloadLength)) {
                return corrupt(r, write, "frame at " + read + " with type=" + type + ", length=" + payloadLength
                        + " in " + available + " readable bytes");
            }
            handler.onFrame(type, data.asSlice(read + FRAME_HEADER_LENGTH, payloadLength).asReadOnly());
            if (!LONG.compareAndSet(memory, (long) READ_OFFSET, r,
                    position(epoch, read + frameLength(payloadLength)))) {
                if (stopped == LIVE) {
                    return RESET;
                }
                // A drain whose lane's reader, still live, moved the read position first (it had this
                // frame in hand): go on from where it left it, or the frames after it are never read.
                continue;
            }
            handled++;
        }
        return handled;
    }

    private static boolean validType(short type, int payloadLength) {
        return switch (type) {
            case INLINE -> true;
            case SLOT_REF -> payloadLength == SLOT_REF_LENGTH;
            case MEMFD_REF -> payloadLength == MEMFD_REF_LENGTH;
            default -> false;
        };
    }

    /** Counts a corrupt frame and drops everything readable after it. */
    private int corrupt(long r, long write, String what) {
        counters.increment(SegmentCounters.CORRUPT_FRAMES_REJECTED);
        LONG.compareAndSet(memory, (long) READ_OFFSET, r, position(epoch, Math.min(write, capacity)));
        throw new dev.shm.core.CorruptionException(name + ": " + what + "; its unread data was dropped");
    }

    /**
     * Returns the bytes written and not yet read.
     *
     * @return the pending bytes
     */
    public long pending() {
        long read = positionOf((long) LONG.getAcquire(memory, (long) READ_OFFSET));
        long write = positionOf((long) LONG.getAcquire(memory, (long) WRITE_OFFSET));
        if (write >= read) {
            return write - read;
        }
        return positionOf((long) LONG.getAcquire(memory, (long) LAST_OFFSET)) - read + write;
    }

    /**
     * Returns the data capacity.
     *
     * @return bytes
     */
    public int capacity() {
        return capacity;
    }

    // ---------------------------------------------------------------- decoding references

    /**
     * Reads the slot reference of a {@code SLOT_REF} payload.
     *
     * @param payload the payload
     * @return the slot reference (untrusted: check it with the pool)
     */
    public static long slotRef(MemorySegment payload) {
        return payload.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
    }

    /**
     * Reads the message length of a {@code SLOT_REF} payload.
     *
     * @param payload the payload
     * @return the length (untrusted)
     */
    public static long slotLength(MemorySegment payload) {
        return payload.get(ValueLayout.JAVA_LONG_UNALIGNED, 8);
    }

    /**
     * Reads the lease of a {@code MEMFD_REF} payload.
     *
     * @param payload the payload
     * @return the lease index (untrusted)
     */
    public static int memfdLease(MemorySegment payload) {
        return payload.get(ValueLayout.JAVA_INT_UNALIGNED, 0);
    }

    /**
     * Reads the lease generation of a {@code MEMFD_REF} payload.
     *
     * @param payload the payload
     * @return the generation (untrusted)
     */
    public static int memfdGeneration(MemorySegment payload) {
        return payload.get(ValueLayout.JAVA_INT_UNALIGNED, 4);
    }

    /**
     * Reads the offset of a {@code MEMFD_REF} payload.
     *
     * @param payload the payload
     * @return the offset (untrusted)
     */
    public static long memfdOffset(MemorySegment payload) {
        return payload.get(ValueLayout.JAVA_LONG_UNALIGNED, 8);
    }

    /**
     * Reads the length of a {@code MEMFD_REF} payload.
     *
     * @param payload the payload
     * @return the length (untrusted)
     */
    public static long memfdLength(MemorySegment payload) {
        return payload.get(ValueLayout.JAVA_LONG_UNALIGNED, 16);
    }

    @Override
    public String toString() {
        return "Lane[" + name + ", capacity=" + capacity + ", pending=" + pending() + "]";
    }
}
