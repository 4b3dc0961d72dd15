package dev.shm.core.ring;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A message handed to a {@link MessageHandler}: a reused view, valid during the call only. The
 * payload is {@link #length()} bytes of {@link #buffer()} from {@link #offset()}, read-only and
 * in place (zero-copy) for required groups.
 */
public final class Message {

    private MemorySegment buffer = MemorySegment.NULL;
    private long offset;
    private long length;
    private long sequence;
    private boolean redelivered;
    private int kind;

    Message() {
    }

    void set(MemorySegment buffer, long offset, long length, long sequence, boolean redelivered, int kind) {
        if (this.buffer != buffer) {
            this.buffer = buffer; // mostly the same view: a reference store costs the GC's barrier
        }
        this.offset = offset;
        this.length = length;
        this.sequence = sequence;
        this.redelivered = redelivered;
        this.kind = kind;
    }

    /**
     * Returns the memory that holds the payload: read-only.
     *
     * @return the buffer
     */
    public MemorySegment buffer() {
        return buffer;
    }

    /**
     * Returns where the payload starts in {@link #buffer()}.
     *
     * @return the offset
     */
    public long offset() {
        return offset;
    }

    /**
     * Returns the payload's length in bytes.
     *
     * @return the length
     */
    public long length() {
        return length;
    }

    /**
     * Returns the payload as a segment of its own (a slice: allocates).
     *
     * @return the payload, read-only
     */
    public MemorySegment payload() {
        return buffer.asSlice(offset, length);
    }

    /**
     * Copies the payload to a new array.
     *
     * @return the payload's bytes
     * @throws IllegalStateException when the payload exceeds an array's capacity
     */
    public byte[] toByteArray() {
        if (length > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("a payload of " + length + " bytes does not fit in an array");
        }
        byte[] bytes = new byte[(int) length];
        MemorySegment.copy(buffer, ValueLayout.JAVA_BYTE, offset, bytes, 0, bytes.length);
        return bytes;
    }

    /**
     * Returns the message's sequence in the ring.
     *
     * @return the sequence
     */
    public long sequence() {
        return sequence;
    }

    /**
     * Tells whether a member of this group received the message before and died before it was
     * done: the message may have been handled once already.
     *
     * @return {@code true} for a redelivery
     */
    public boolean isRedelivered() {
        return redelivered;
    }

    /**
     * Returns how the payload travelled: {@link RingDescriptor#INLINE}, {@link RingDescriptor#SLOT_REF}
     * or {@link RingDescriptor#MEMFD_REF}.
     *
     * @return the frame type
     */
    public int frameType() {
        return kind;
    }
}
