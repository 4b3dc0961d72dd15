package dev.shm.core.memory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * An atomic view of consecutive {@code int} values in a {@link MemoryRegion}, addressed by index.
 * Memory orders and lifetime are those of {@link AtomicIntView}: each method names its order; after the
 * region is closed or resized every method throws {@link StaleMappingException}. An index outside
 * {@code [0, length())} throws {@link OutOfBoundsAccessException}.
 */
public final class AtomicIntSliceView {

    private static final VarHandle VALUE = ValueLayout.JAVA_INT.varHandle();

    private final MemoryRegion region;
    private final Mapping mapping;
    private final MemorySegment segment;
    private final long offset;
    private final int length;
    private final boolean readOnly;

    AtomicIntSliceView(MemoryRegion region, Mapping mapping, long offset, int length) {
        this.region = region;
        this.mapping = mapping;
        this.segment = mapping.segment;
        this.offset = offset;
        this.length = length;
        this.readOnly = region.isReadOnly();
    }

    /**
     * Returns the offset of the first value in its region.
     *
     * @return the offset
     */
    public long offset() {
        return offset;
    }

    /**
     * Returns the number of values.
     *
     * @return the length
     */
    public int length() {
        return length;
    }

    /**
     * Reads with plain semantics.
     *
     * @param index the value's index
     * @return the value
     */
    public int getPlain(int index) {
        long at = at(index);
        try {
            return (int) VALUE.get(segment, at);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e, at);
        }
    }

    /**
     * Reads atomically, without ordering against other variables.
     *
     * @param index the value's index
     * @return the value
     */
    public int getOpaque(int index) {
        long at = at(index);
        try {
            return (int) VALUE.getOpaque(segment, at);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e, at);
        }
    }

    /**
     * Reads with acquire semantics. Pairs with {@link #setRelease}.
     *
     * @param index the value's index
     * @return the value
     */
    public int getAcquire(int index) {
        long at = at(index);
        try {
            return (int) VALUE.getAcquire(segment, at);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e, at);
        }
    }

    /**
     * Reads with volatile semantics.
     *
     * @param index the value's index
     * @return the value
     */
    public int getVolatile(int index) {
        long at = at(index);
        try {
            return (int) VALUE.getVolatile(segment, at);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e, at);
        }
    }

    /**
     * Writes with plain semantics.
     *
     * @param index the value's index
     * @param value the value
     */
    public void setPlain(int index, int value) {
        long at = writableAt(index);
        try {
            VALUE.set(segment, at, value);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e, at);
        }
    }

    /**
     * Writes atomically, without ordering against other variables.
     *
     * @param index the value's index
     * @param value the value
     */
    public void setOpaque(int index, int value) {
        long at = writableAt(index);
        try {
            VALUE.setOpaque(segment, at, value);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e, at);
        }
    }

    /**
     * Writes with release semantics. Pairs with {@link #getAcquire}.
     *
     * @param index the value's index
     * @param value the value
     */
    public void setRelease(int index, int value) {
        long at = writableAt(index);
        try {
            VALUE.setRelease(segment, at, value);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e, at);
        }
    }

    /**
     * Writes with volatile semantics.
     *
     * @param index the value's index
     * @param value the value
     */
    public void setVolatile(int index, int value) {
        long at = writableAt(index);
        try {
            VALUE.setVolatile(segment, at, value);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e, at);
        }
    }

    /**
     * Sets a value to {@code update} if it is {@code expected}, atomically, with volatile semantics.
     *
     * @param index the value's index
     * @param expected the value expected
     * @param update the new value
     * @return whether the value was {@code expected} and is now {@code update}
     */
    public boolean compareAndSet(int index, int expected, int update) {
        long at = writableAt(index);
        try {
            return VALUE.compareAndSet(segment, at, expected, update);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e, at);
        }
    }

    /**
     * Adds {@code delta} to a value atomically, with volatile semantics.
     *
     * @param index the value's index
     * @param delta the amount to add
     * @return the value before the addition
     */
    public int getAndAdd(int index, int delta) {
        long at = writableAt(index);
        try {
            return (int) VALUE.getAndAdd(segment, at, delta);
        } catch (IllegalStateException | InternalError e) {
            throw failure(e, at);
        }
    }

    @Override
    public String toString() {
        return "AtomicIntSliceView[" + region.subject() + ", offset=" + offset + ", length=" + length + "]";
    }

    private long at(int index) {
        if (index < 0 || index >= length) {
            throw new OutOfBoundsAccessException(toString(), (long) index * Integer.BYTES, Integer.BYTES, (long) length * Integer.BYTES);
        }
        return offset + (long) index * Integer.BYTES;
    }

    private long writableAt(int index) {
        long at = at(index);
        if (readOnly) {
            throw new ReadOnlyMappingException(region.subject(), at);
        }
        return at;
    }

    private RuntimeException failure(Throwable e, long at) {
        return e instanceof InternalError fault
                ? region.fault(mapping, at, Integer.BYTES, fault)
                : region.stale(mapping, at, Integer.BYTES, e);
    }
}
