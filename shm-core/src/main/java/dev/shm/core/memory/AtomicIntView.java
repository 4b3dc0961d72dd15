package dev.shm.core.memory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * An atomic view of one {@code int} in a {@link MemoryRegion}: the same memory that other threads
 * and other processes that map the file see. Each method's name says its memory order, as in
 * {@link VarHandle}: plain, opaque, acquire/release and volatile; compare-and-set and get-and-add are
 * volatile. Pair a release store with an acquire load.
 *
 * <p>The view belongs to the mapping it was taken from: after the region is closed or resized, every
 * method throws {@link StaleMappingException}; it never touches unmapped memory. A write to a
 * read-only mapping throws {@link ReadOnlyMappingException}.
 *
 * {@snippet :
 * try (MappedFile file = MappedFile.create(path, 4096)) {
 *     AtomicIntView counter = file.atomicInt(0);
 *     int before = counter.getAndAdd(1);   // atomic across processes
 * }
 * }
 */
public final class AtomicIntView {

    private static final VarHandle VALUE = ValueLayout.JAVA_INT.varHandle();

    private final MemoryRegion region;
    private final Mapping mapping;
    private final MemorySegment segment;
    private final long offset;
    private final boolean readOnly;

    AtomicIntView(MemoryRegion region, Mapping mapping, long offset) {
        this.region = region;
        this.mapping = mapping;
        this.segment = mapping.segment;
        this.offset = offset;
        this.readOnly = region.isReadOnly();
    }

    /**
     * Returns the offset of the value in its region.
     *
     * @return the offset
     */
    public long offset() {
        return offset;
    }

    /**
     * Reads with plain semantics: no ordering, and not even atomic for a {@code long} on every CPU.
     *
     * @return the value
     */
    public int getPlain() {
        try {
            return (int) VALUE.get(segment, offset);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e);
        }
    }

    /**
     * Reads atomically, without ordering against other variables.
     *
     * @return the value
     */
    public int getOpaque() {
        try {
            return (int) VALUE.getOpaque(segment, offset);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e);
        }
    }

    /**
     * Reads with acquire semantics: later reads and writes stay after it. Pairs with {@link #setRelease}.
     *
     * @return the value
     */
    public int getAcquire() {
        try {
            return (int) VALUE.getAcquire(segment, offset);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e);
        }
    }

    /**
     * Reads with volatile semantics (sequentially consistent).
     *
     * @return the value
     */
    public int getVolatile() {
        try {
            return (int) VALUE.getVolatile(segment, offset);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e);
        }
    }

    /**
     * Writes with plain semantics.
     *
     * @param value the value
     */
    public void setPlain(int value) {
        checkWritable();
        try {
            VALUE.set(segment, offset, value);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e);
        }
    }

    /**
     * Writes atomically, without ordering against other variables.
     *
     * @param value the value
     */
    public void setOpaque(int value) {
        checkWritable();
        try {
            VALUE.setOpaque(segment, offset, value);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e);
        }
    }

    /**
     * Writes with release semantics: earlier reads and writes stay before it. Pairs with
     * {@link #getAcquire}.
     *
     * @param value the value
     */
    public void setRelease(int value) {
        checkWritable();
        try {
            VALUE.setRelease(segment, offset, value);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e);
        }
    }

    /**
     * Writes with volatile semantics (sequentially consistent).
     *
     * @param value the value
     */
    public void setVolatile(int value) {
        checkWritable();
        try {
            VALUE.setVolatile(segment, offset, value);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e);
        }
    }

    /**
     * Sets the value to {@code update} if it is {@code expected}, atomically, with volatile semantics.
     *
     * @param expected the value expected
     * @param update the new value
     * @return whether the value was {@code expected} and is now {@code update}
     */
    public boolean compareAndSet(int expected, int update) {
        checkWritable();
        try {
            return VALUE.compareAndSet(segment, offset, expected, update);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e);
        }
    }

    /**
     * Sets the value to {@code update} if it is {@code expected}, atomically, with volatile
     * semantics, and returns what it was.
     *
     * @param expected the value expected
     * @param update the new value
     * @return the value before; equal to {@code expected} when the exchange happened
     */
    public int compareAndExchange(int expected, int update) {
        checkWritable();
        try {
            return (int) VALUE.compareAndExchange(segment, offset, expected, update);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e);
        }
    }

    /**
     * Adds {@code delta} atomically, with volatile semantics.
     *
     * @param delta the amount to add
     * @return the value before the addition
     */
    public int getAndAdd(int delta) {
        checkWritable();
        try {
            return (int) VALUE.getAndAdd(segment, offset, delta);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e);
        }
    }

    /**
     * Sets the value atomically, with volatile semantics, and returns what it was.
     *
     * @param value the new value
     * @return the value before
     */
    public int getAndSet(int value) {
        checkWritable();
        try {
            return (int) VALUE.getAndSet(segment, offset, value);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e);
        }
    }

    @Override
    public String toString() {
        return "AtomicIntView[" + region.subject() + ", offset=" + offset + "]";
    }

    private void checkWritable() {
        if (readOnly) {
            throw new ReadOnlyMappingException(region.subject(), offset);
        }
    }

    private RuntimeException failure(Throwable e) {
        return e instanceof InternalError fault
                ? region.fault(mapping, offset, Integer.BYTES, fault)
                : region.stale(mapping, offset, Integer.BYTES, e);
    }
}
