package dev.shm.core.counters;

import dev.shm.core.internal.Utf8;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * Counters in shared memory, readable by any process that maps them (and by the command-line tool
 * without attaching), in the manner of Aeron's counters: a fixed array of records, each with a type,
 * an owner, a label and a 64-bit value on its own cache line.
 *
 * <p>Values are only ever added to ({@link #add}) with an atomic get-and-add, so several processes
 * can count into one record. Reads are opaque: a reader sees a recent value, never a torn one.
 *
 * <p>Thread-safety: safe from any thread of any process; {@link #allocate} and {@link #freeOwned}
 * under the segment's directory lock, as the segment's structures call them.
 */
public final class Counters {

    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();
    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();

    private final MemorySegment memory;
    private final int capacity;

    /**
     * Wraps the counters part of a segment.
     *
     * @param memory the part: {@code capacity} records of {@value CounterDescriptor#LENGTH} bytes
     * @param capacity the number of records
     */
    public Counters(MemorySegment memory, int capacity) {
        if (memory.byteSize() < (long) capacity * CounterDescriptor.LENGTH) {
            throw new IllegalArgumentException("counters memory of " + memory.byteSize() + " bytes cannot hold "
                    + capacity + " records");
        }
        this.memory = memory;
        this.capacity = capacity;
    }

    /**
     * Returns the number of records.
     *
     * @return the capacity
     */
    public int capacity() {
        return capacity;
    }

    /**
     * Writes a record's metadata and marks it allocated, whatever its state: for records with fixed
     * ids that the creator sets up before anyone can see the segment.
     *
     * @param id the record
     * @param typeId the counter's type
     * @param owner what the counter belongs to (type-specific)
     * @param label the label
     */
    public void define(int id, int typeId, long owner, String label) {
        long at = record(id);
        fill(at, typeId, owner, label);
        INT.setRelease(memory, at + CounterDescriptor.STATE_OFFSET, CounterDescriptor.ALLOCATED);
    }

    /**
     * Allocates a free record. Call it holding the segment's directory lock, as every allocation
     * does: then no other allocation runs, and a record found {@link CounterDescriptor#CLAIMED} is
     * one whose allocator died before it finished; it is taken like a free one.
     *
     * @param typeId the counter's type
     * @param owner what the counter belongs to (type-specific)
     * @param label the label, cut to {@value CounterDescriptor#LABEL_CAPACITY} UTF-8 bytes
     * @return the record's id, or -1 when every record is in use
     */
    public int allocate(int typeId, long owner, String label) {
        for (int id = 0; id < capacity; id++) {
            long at = record(id);
            int state = (int) INT.getAcquire(memory, at + CounterDescriptor.STATE_OFFSET);
            if ((state == CounterDescriptor.UNUSED || state == CounterDescriptor.CLAIMED)
                    && INT.compareAndSet(memory, at + CounterDescriptor.STATE_OFFSET, state, CounterDescriptor.CLAIMED)) {
                LONG.setRelease(memory, at + CounterDescriptor.VALUE_OFFSET, 0L);
                fill(at, typeId, owner, label);
                INT.setRelease(memory, at + CounterDescriptor.STATE_OFFSET, CounterDescriptor.ALLOCATED);
                return id;
            }
        }
        return -1;
    }

    /**
     * Frees every allocated record of a type and owner: the records of a structure that is being
     * set up again, left by a process that died after it allocated them and before the structure
     * recorded them. Call it holding the segment's directory lock.
     *
     * @param typeId the counters' type
     * @param owner their owner
     * @return the records freed
     */
    public int freeOwned(int typeId, long owner) {
        int freed = 0;
        for (int id = 0; id < capacity; id++) {
            long at = record(id);
            if ((int) INT.getAcquire(memory, at + CounterDescriptor.STATE_OFFSET) == CounterDescriptor.ALLOCATED
                    && memory.get(ValueLayout.JAVA_INT_UNALIGNED, at + CounterDescriptor.TYPE_ID_OFFSET) == typeId
                    && memory.get(ValueLayout.JAVA_LONG_UNALIGNED, at + CounterDescriptor.OWNER_OFFSET) == owner
                    && INT.compareAndSet(memory, at + CounterDescriptor.STATE_OFFSET,
                            CounterDescriptor.ALLOCATED, CounterDescriptor.UNUSED)) {
                freed++;
            }
        }
        return freed;
    }

    /**
     * Frees a record, for reuse by a later {@link #allocate}.
     *
     * @param id the record
     */
    public void free(int id) {
        INT.setRelease(memory, record(id) + CounterDescriptor.STATE_OFFSET, CounterDescriptor.UNUSED);
    }

    /**
     * Adds to a counter atomically.
     *
     * @param id the record
     * @param delta the amount
     * @return the value before
     */
    public long add(int id, long delta) {
        return (long) LONG.getAndAdd(memory, record(id) + CounterDescriptor.VALUE_OFFSET, delta);
    }

    /**
     * Increments a counter atomically.
     *
     * @param id the record
     */
    public void increment(int id) {
        add(id, 1);
    }

    /**
     * Reads a counter.
     *
     * @param id the record
     * @return its value
     */
    public long get(int id) {
        return (long) LONG.getOpaque(memory, record(id) + CounterDescriptor.VALUE_OFFSET);
    }

    /** What {@link #forEach} reports of one allocated counter. */
    @FunctionalInterface
    public interface Visitor {
        /**
         * Receives one counter.
         *
         * @param id the record
         * @param typeId its type
         * @param owner what it belongs to
         * @param label its label
         * @param value its value
         */
        void counter(int id, int typeId, long owner, String label, long value);
    }

    /**
     * Reports every allocated counter. Labels are read as untrusted input: a corrupt length is
     * clamped to the record.
     *
     * @param visitor receives each counter
     */
    public void forEach(Visitor visitor) {
        for (int id = 0; id < capacity; id++) {
            long at = record(id);
            if ((int) INT.getAcquire(memory, at + CounterDescriptor.STATE_OFFSET) == CounterDescriptor.ALLOCATED) {
                int typeId = memory.get(ValueLayout.JAVA_INT_UNALIGNED, at + CounterDescriptor.TYPE_ID_OFFSET);
                long owner = memory.get(ValueLayout.JAVA_LONG_UNALIGNED, at + CounterDescriptor.OWNER_OFFSET);
                int length = memory.get(ValueLayout.JAVA_INT_UNALIGNED, at + CounterDescriptor.LABEL_LENGTH_OFFSET);
                String label = Utf8.read(memory, at + CounterDescriptor.LABEL_OFFSET, length,
                        CounterDescriptor.LABEL_CAPACITY);
                visitor.counter(id, typeId, owner, label, get(id));
            }
        }
    }

    private void fill(long at, int typeId, long owner, String label) {
        memory.set(ValueLayout.JAVA_INT_UNALIGNED, at + CounterDescriptor.TYPE_ID_OFFSET, typeId);
        memory.set(ValueLayout.JAVA_LONG_UNALIGNED, at + CounterDescriptor.OWNER_OFFSET, owner);
        int length = Utf8.write(memory, at + CounterDescriptor.LABEL_OFFSET, label, CounterDescriptor.LABEL_CAPACITY);
        memory.set(ValueLayout.JAVA_INT_UNALIGNED, at + CounterDescriptor.LABEL_LENGTH_OFFSET, length);
    }

    private long record(int id) {
        if (id < 0 || id >= capacity) {
            throw new IndexOutOfBoundsException("counter id=" + id + " outside 0.." + (capacity - 1));
        }
        return (long) id * CounterDescriptor.LENGTH;
    }
}
