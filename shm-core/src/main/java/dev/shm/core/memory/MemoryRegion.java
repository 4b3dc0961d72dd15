package dev.shm.core.memory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;

/**
 * Mapped memory with typed, bounds-checked access and atomic views: the common face of
 * {@link MappedFile}, {@link MappedExtent} and {@link MemfdBuffer}.
 *
 * <h2>Access</h2>
 * Offsets are relative to the region's first byte. Every access is checked against
 * {@link #size()} and fails with {@link OutOfBoundsAccessException} (offset, length and size in the
 * message) instead of reaching outside. Plain accessors ({@code getLong}, {@code putInt}, ...) are
 * unaligned and in the platform's byte order, which is little-endian on every platform shm-core
 * supports. A write to a read-only mapping throws {@link ReadOnlyMappingException}.
 *
 * <h2>Atomic views</h2>
 * {@link #atomicInt}, {@link #atomicLong} and their slice variants return views for atomic access in
 * every memory order (plain, opaque, acquire/release, volatile) and for compare-and-set and
 * get-and-add. They need natural alignment ({@link MisalignedAccessException} otherwise) and work
 * across processes that map the same file: a {@code getAndAdd} is atomic against every process.
 *
 * <h2>Lifetime</h2>
 * A view, and a {@link #slice}, belongs to the mapping it was taken from. When the region is closed
 * or resized, that mapping is unmapped; an access through an old view then throws
 * {@link StaleMappingException} and never touches unmapped memory (raw slices throw the JDK's
 * {@link IllegalStateException}). The region's own accessors always use its current mapping.
 *
 * <p>Thread-safety: all methods may be called from any thread.
 */
public abstract sealed class MemoryRegion permits MappedFile, MappedExtent, MemfdBuffer {

    static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;
    static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED;
    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED;
    static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED;

    MemoryRegion() {
    }

    /** The mapping accesses use now. */
    abstract Mapping mapping();

    /** Whether the region was closed. */
    abstract boolean isClosed();

    /** What the region is, for messages: a path, {@code memfd:<name>}, an extent. */
    abstract String subject();

    /** How the region is mapped. */
    abstract MapMode mode();

    /** The length of the file behind the region now, to tell truncation from other faults. */
    abstract long fileSize();

    /**
     * Returns the number of bytes that can be accessed.
     *
     * @return the size of the current mapping
     */
    public final long size() {
        return mapping().length;
    }

    /**
     * Returns whether writes are refused.
     *
     * @return {@code true} for a {@link MapMode#READ_ONLY} mapping
     */
    public final boolean isReadOnly() {
        return !mode().writable();
    }

    /**
     * Reads a byte.
     *
     * @param offset the offset
     * @return the byte
     */
    public final byte getByte(long offset) {
        for (;;) {
            Mapping m = readable(offset, Byte.BYTES);
            try {
                return m.segment.get(BYTE, offset);
            } catch (IllegalStateException | InternalError e) {
                recover(m, e, offset, Byte.BYTES);
            }
        }
    }

    /**
     * Writes a byte.
     *
     * @param offset the offset
     * @param value the byte
     */
    public final void putByte(long offset, byte value) {
        for (;;) {
            Mapping m = writable(offset, Byte.BYTES);
            try {
                m.segment.set(BYTE, offset, value);
                return;
            } catch (IllegalStateException | InternalError e) {
                recover(m, e, offset, Byte.BYTES);
            }
        }
    }

    /**
     * Reads a {@code short}.
     *
     * @param offset the offset
     * @return the value
     */
    public final short getShort(long offset) {
        for (;;) {
            Mapping m = readable(offset, Short.BYTES);
            try {
                return m.segment.get(SHORT, offset);
            } catch (IllegalStateException | InternalError e) {
                recover(m, e, offset, Short.BYTES);
            }
        }
    }

    /**
     * Writes a {@code short}.
     *
     * @param offset the offset
     * @param value the value
     */
    public final void putShort(long offset, short value) {
        for (;;) {
            Mapping m = writable(offset, Short.BYTES);
            try {
                m.segment.set(SHORT, offset, value);
                return;
            } catch (IllegalStateException | InternalError e) {
                recover(m, e, offset, Short.BYTES);
            }
        }
    }

    /**
     * Reads an {@code int}.
     *
     * @param offset the offset
     * @return the value
     */
    public final int getInt(long offset) {
        for (;;) {
            Mapping m = readable(offset, Integer.BYTES);
            try {
                return m.segment.get(INT, offset);
            } catch (IllegalStateException | InternalError e) {
                recover(m, e, offset, Integer.BYTES);
            }
        }
    }

    /**
     * Writes an {@code int}.
     *
     * @param offset the offset
     * @param value the value
     */
    public final void putInt(long offset, int value) {
        for (;;) {
            Mapping m = writable(offset, Integer.BYTES);
            try {
                m.segment.set(INT, offset, value);
                return;
            } catch (IllegalStateException | InternalError e) {
                recover(m, e, offset, Integer.BYTES);
            }
        }
    }

    /**
     * Reads a {@code long}.
     *
     * @param offset the offset
     * @return the value
     */
    public final long getLong(long offset) {
        for (;;) {
            Mapping m = readable(offset, Long.BYTES);
            try {
                return m.segment.get(LONG, offset);
            } catch (IllegalStateException | InternalError e) {
                recover(m, e, offset, Long.BYTES);
            }
        }
    }

    /**
     * Writes a {@code long}.
     *
     * @param offset the offset
     * @param value the value
     */
    public final void putLong(long offset, long value) {
        for (;;) {
            Mapping m = writable(offset, Long.BYTES);
            try {
                m.segment.set(LONG, offset, value);
                return;
            } catch (IllegalStateException | InternalError e) {
                recover(m, e, offset, Long.BYTES);
            }
        }
    }

    /**
     * Copies bytes out of the region.
     *
     * @param offset the region offset to copy from
     * @param dst the array to copy to
     * @param dstOffset the first index of {@code dst} to write
     * @param length the number of bytes
     */
    public final void getBytes(long offset, byte[] dst, int dstOffset, int length) {
        Objects.checkFromIndexSize(dstOffset, length, dst.length);
        for (;;) {
            Mapping m = readable(offset, length);
            try {
                MemorySegment.copy(m.segment, BYTE, offset, dst, dstOffset, length);
                return;
            } catch (IllegalStateException | InternalError e) {
                recover(m, e, offset, length);
            }
        }
    }

    /**
     * Copies bytes out of the region into a new array.
     *
     * @param offset the region offset to copy from
     * @param length the number of bytes
     * @return the bytes
     */
    public final byte[] getBytes(long offset, int length) {
        readable(offset, length); // before allocating: a bad length must not become a huge array
        byte[] bytes = new byte[length];
        getBytes(offset, bytes, 0, length);
        return bytes;
    }

    /**
     * Copies bytes into the region.
     *
     * @param offset the region offset to copy to
     * @param src the array to copy from
     * @param srcOffset the first index of {@code src} to read
     * @param length the number of bytes
     */
    public final void putBytes(long offset, byte[] src, int srcOffset, int length) {
        Objects.checkFromIndexSize(srcOffset, length, src.length);
        for (;;) {
            Mapping m = writable(offset, length);
            try {
                MemorySegment.copy(src, srcOffset, m.segment, BYTE, offset, length);
                return;
            } catch (IllegalStateException | InternalError e) {
                recover(m, e, offset, length);
            }
        }
    }

    /**
     * Returns a zero-copy segment over part of the current mapping; writable unless the region is
     * read-only. The segment belongs to the current mapping: after a resize or close, access
     * through it throws the JDK's {@link IllegalStateException}.
     *
     * @param offset the first byte
     * @param length the number of bytes
     * @return the segment
     */
    public final MemorySegment slice(long offset, long length) {
        Mapping m = readable(offset, length);
        return m.segment.asSlice(offset, length);
    }

    /**
     * Returns a read-only zero-copy segment over part of the current mapping, with the lifetime
     * described at {@link #slice}.
     *
     * @param offset the first byte
     * @param length the number of bytes
     * @return the read-only segment
     */
    public final MemorySegment readOnlySlice(long offset, long length) {
        return slice(offset, length).asReadOnly();
    }

    /**
     * Returns an atomic view of the {@code int} at {@code offset}.
     *
     * @param offset the offset, a multiple of 4
     * @return the view
     * @throws MisalignedAccessException when {@code offset} is not a multiple of 4
     * @throws OutOfBoundsAccessException when the value is not inside the region
     */
    public final AtomicIntView atomicInt(long offset) {
        return new AtomicIntView(this, atomicTarget(offset, Integer.BYTES, Integer.BYTES), offset);
    }

    /**
     * Returns an atomic view of the {@code long} at {@code offset}.
     *
     * @param offset the offset, a multiple of 8
     * @return the view
     * @throws MisalignedAccessException when {@code offset} is not a multiple of 8
     * @throws OutOfBoundsAccessException when the value is not inside the region
     */
    public final AtomicLongView atomicLong(long offset) {
        return new AtomicLongView(this, atomicTarget(offset, Long.BYTES, Long.BYTES), offset);
    }

    /**
     * Returns an atomic view of {@code count} consecutive {@code int}s from {@code offset}.
     *
     * @param offset the offset of the first, a multiple of 4
     * @param count the number of values
     * @return the view
     * @throws MisalignedAccessException when {@code offset} is not a multiple of 4
     * @throws OutOfBoundsAccessException when the values are not inside the region
     */
    public final AtomicIntSliceView atomicIntSlice(long offset, int count) {
        requireCount(count);
        Mapping m = atomicTarget(offset, (long) count * Integer.BYTES, Integer.BYTES);
        return new AtomicIntSliceView(this, m, offset, count);
    }

    /**
     * Returns an atomic view of {@code count} consecutive {@code long}s from {@code offset}.
     *
     * @param offset the offset of the first, a multiple of 8
     * @param count the number of values
     * @return the view
     * @throws MisalignedAccessException when {@code offset} is not a multiple of 8
     * @throws OutOfBoundsAccessException when the values are not inside the region
     */
    public final AtomicLongSliceView atomicLongSlice(long offset, int count) {
        requireCount(count);
        Mapping m = atomicTarget(offset, (long) count * Long.BYTES, Long.BYTES);
        return new AtomicLongSliceView(this, m, offset, count);
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[" + subject() + ", " + mode()
                + (isClosed() ? ", closed" : ", size=" + size()) + "]";
    }

    // ---------------------------------------------------------------- checks and failure translation

    private Mapping readable(long offset, long length) {
        Mapping m = mapping();
        checkBounds(m, offset, length);
        return m;
    }

    private Mapping writable(long offset, long length) {
        if (isReadOnly()) {
            throw new ReadOnlyMappingException(subject(), offset);
        }
        return readable(offset, length);
    }

    private void checkBounds(Mapping m, long offset, long length) {
        // size - length cannot overflow: both are non-negative here.
        if (offset < 0 || length < 0 || offset > m.length - length) {
            throw new OutOfBoundsAccessException(subject(), offset, length, m.length);
        }
    }

    private Mapping atomicTarget(long offset, long length, long alignment) {
        if (isClosed()) {
            throw new IllegalStateException("cannot take an atomic view of " + subject() + ": it is closed");
        }
        Mapping m = mapping();
        // The alignment that matters is the address's: an extent may start inside a page.
        if (offset >= 0 && (m.segment.address() + offset) % alignment != 0) {
            throw new MisalignedAccessException(subject(), offset, length, m.length, alignment);
        }
        checkBounds(m, offset, length);
        return m;
    }

    private static void requireCount(int count) {
        if (count < 0) {
            throw new IllegalArgumentException("count=" + count + " must not be negative");
        }
    }

    /**
     * Decides what to do after an access through the region's own accessors failed: return to
     * retry (a concurrent resize replaced the mapping), or throw a clear exception.
     */
    private void recover(Mapping used, Throwable failure, long offset, long length) {
        if (failure instanceof InternalError fault) {
            throw fault(used, offset, length, fault);
        }
        if (!isClosed() && used.isAlive()) {
            throw (IllegalStateException) failure; // not a closed mapping: not ours to explain
        }
        if (!isClosed() && mapping() != used) {
            return; // resized under us: the new mapping holds the same file bytes
        }
        throw stale(used, offset, length, failure);
    }

    /** The exception for an access through a view or slice whose mapping is gone. */
    final RuntimeException stale(Mapping used, long offset, long length, Throwable failure) {
        if (used.isAlive() && !isClosed()) {
            return (RuntimeException) failure;
        }
        String what = "access to " + subject() + " at offset=" + offset + ", length=" + length;
        if (isClosed()) {
            return new StaleMappingException(what + " refused: " + subject() + " is closed", failure);
        }
        Mapping now = mapping();
        if (now != used) {
            return new StaleMappingException(what + " refused: the view is stale; it was taken from mapping generation "
                    + used.generation + " (" + used.length + " bytes), which a resize replaced with generation "
                    + now.generation + " (" + now.length + " bytes); take a new view", failure);
        }
        return new StaleMappingException(what + " refused: its mapping was closed", failure);
    }

    /** The exception for an access that faulted (SIGBUS), or the JVM's error if it was something else. */
    final RuntimeException fault(Mapping used, long offset, long length, InternalError fault) {
        String message = fault.getMessage();
        if (message == null || !message.contains("unsafe memory access")) {
            throw fault;
        }
        long needed = used.fileOffset + offset + length;
        long fileSize;
        try {
            fileSize = fileSize();
        } catch (RuntimeException statFailed) {
            fault.addSuppressed(statFailed);
            fileSize = -1;
        }
        String what = "access to " + subject() + " at offset=" + offset + ", length=" + length + " faulted (SIGBUS)";
        if (fileSize >= 0 && fileSize < needed) {
            return new MappingFaultException(what + ": the file is now " + fileSize + " bytes, shorter than the "
                    + needed + " bytes this access needs; another process truncated it", true, fault);
        }
        return new MappingFaultException(what + (fileSize >= 0 ? " though the file is " + fileSize + " bytes" : "")
                + ": the file system probably had no room for a page of this sparse file (a full /dev/shm?); "
                + "create it with preallocation to fail early instead", false, fault);
    }
}
