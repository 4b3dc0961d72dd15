package dev.shm.core.ring;

import java.time.Duration;
import java.util.Objects;

/**
 * How a channel is declared. Capacity, slot size, group entries and the single-producer flag are
 * the ring's layout: every process must declare them alike. Backpressure, send timeout and wait
 * strategy are this process's own.
 *
 * @param capacity ring slots, a power of two (default 4096)
 * @param slotSize bytes per slot, a multiple of 8; the inline capacity is this less the 16-byte
 *     slot header (default 512)
 * @param maxGroups consumer group entries, 1 to 16 (default 4)
 * @param singleProducer one thread of one process sends (a faster path; default false)
 * @param backpressure what send does when the ring is full (default BLOCK)
 * @param sendTimeout the longest a BLOCK send waits (default 5 s)
 * @param waitStrategy how consumers and blocked producers wait (default BACKOFF)
 * @param initialSequence the first sequence of a new ring (default 0; tests start near a wrap)
 */
public record ChannelOptions(int capacity, int slotSize, int maxGroups, boolean singleProducer,
                             Backpressure backpressure, Duration sendTimeout, WaitStrategy waitStrategy,
                             long initialSequence) {

    /** Default ring slots. */
    public static final int DEFAULT_CAPACITY = 4096;
    /** Default bytes per slot. */
    public static final int DEFAULT_SLOT_SIZE = 512;
    /** Default group entries. */
    public static final int DEFAULT_MAX_GROUPS = 4;
    /** Default send timeout. */
    public static final Duration DEFAULT_SEND_TIMEOUT = Duration.ofSeconds(5);

    /**
     * Checks the options.
     *
     * @throws IllegalArgumentException naming the option, its value and what it must be
     */
    public ChannelOptions {
        if (capacity < 2 || capacity > RingDescriptor.MAX_CAPACITY || Integer.bitCount(capacity) != 1) {
            throw new IllegalArgumentException("capacity=" + capacity + " must be a power of two from 2 to "
                    + RingDescriptor.MAX_CAPACITY);
        }
        if (maxGroups < 1 || maxGroups > RingDescriptor.MAX_GROUPS) {
            throw new IllegalArgumentException("maxGroups=" + maxGroups + " must be 1 to " + RingDescriptor.MAX_GROUPS);
        }
        int minimum = RingDescriptor.SLOT_BODY_OFFSET + RingDescriptor.SLOT_REF_LENGTH;
        if (slotSize < minimum || slotSize > RingDescriptor.MAX_SLOT_SIZE || slotSize % 8 != 0) {
            throw new IllegalArgumentException("slotSize=" + slotSize + " must be a multiple of 8 from " + minimum
                    + " (a slot header and a slot reference) to "
                    + RingDescriptor.MAX_SLOT_SIZE);
        }
        Objects.requireNonNull(backpressure, "backpressure");
        Objects.requireNonNull(waitStrategy, "waitStrategy");
        if (sendTimeout == null || sendTimeout.isNegative()) {
            throw new IllegalArgumentException("sendTimeout=" + sendTimeout + " must be zero or positive");
        }
    }

    /**
     * Returns the defaults.
     *
     * @return 4096 slots of 512 bytes, 4 groups, multiple producers, BLOCK up to 5 s, BACKOFF
     */
    public static ChannelOptions defaults() {
        return new ChannelOptions(DEFAULT_CAPACITY, DEFAULT_SLOT_SIZE, DEFAULT_MAX_GROUPS, false, Backpressure.BLOCK,
                DEFAULT_SEND_TIMEOUT, WaitStrategy.BACKOFF, 0);
    }

    /** @param value ring slots @return a copy with it */
    public ChannelOptions withCapacity(int value) {
        return new ChannelOptions(value, slotSize, maxGroups, singleProducer, backpressure, sendTimeout, waitStrategy,
                initialSequence);
    }

    /** @param value bytes per slot @return a copy with it */
    public ChannelOptions withSlotSize(int value) {
        return new ChannelOptions(capacity, value, maxGroups, singleProducer, backpressure, sendTimeout, waitStrategy,
                initialSequence);
    }

    /** @param value group entries @return a copy with it */
    public ChannelOptions withMaxGroups(int value) {
        return new ChannelOptions(capacity, slotSize, value, singleProducer, backpressure, sendTimeout, waitStrategy,
                initialSequence);
    }

    /** @param value whether one thread of one process sends @return a copy with it */
    public ChannelOptions withSingleProducer(boolean value) {
        return new ChannelOptions(capacity, slotSize, maxGroups, value, backpressure, sendTimeout, waitStrategy,
                initialSequence);
    }

    /** @param value what send does when full @return a copy with it */
    public ChannelOptions withBackpressure(Backpressure value) {
        return new ChannelOptions(capacity, slotSize, maxGroups, singleProducer, value, sendTimeout, waitStrategy,
                initialSequence);
    }

    /** @param value the longest a blocking send waits @return a copy with it */
    public ChannelOptions withSendTimeout(Duration value) {
        return new ChannelOptions(capacity, slotSize, maxGroups, singleProducer, backpressure, value, waitStrategy,
                initialSequence);
    }

    /** @param value how to wait @return a copy with it */
    public ChannelOptions withWaitStrategy(WaitStrategy value) {
        return new ChannelOptions(capacity, slotSize, maxGroups, singleProducer, backpressure, sendTimeout, value,
                initialSequence);
    }

    /** @param value the first sequence of a new ring @return a copy with it */
    public ChannelOptions withInitialSequence(long value) {
        return new ChannelOptions(capacity, slotSize, maxGroups, singleProducer, backpressure, sendTimeout, waitStrategy,
                value);
    }

    /**
     * Returns the largest payload that travels inline in a slot.
     *
     * @return slot size less the slot header
     */
    public int inlineCapacity() {
        return slotSize - RingDescriptor.SLOT_BODY_OFFSET;
    }
}
