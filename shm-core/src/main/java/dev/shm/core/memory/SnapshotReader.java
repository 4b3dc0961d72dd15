package dev.shm.core.memory;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * A read-only mapping of an immutable file (a snapshot) for many concurrent readers:
 * {@link #readExact(long, int)} copies bytes out, {@link #view(long, long)} lends them zero-copy.
 * Reads are lock-free; the kernel pages the file in on demand.
 *
 * {@snippet :
 * try (SnapshotReader snapshot = SnapshotReader.open(Path.of("/data/snapshot.bin"))) {
 *     byte[] header = snapshot.readExact(0, 512);
 *     MemorySegment block = snapshot.view(1 << 20, 4096);   // read-only, no copy
 * }
 * }
 *
 * <h2>Bounds</h2>
 * Every read checks {@code offset >= 0, length >= 0, offset <= size - length}, a form that cannot
 * overflow, and throws {@link OutOfBoundsAccessException} before any memory is touched or
 * allocated.
 *
 * <h2>Hazard: the file must not change</h2>
 * The reader assumes the file stays as it was when opened. If another process truncates it, a read
 * of a lost page faults ({@code SIGBUS}); the JVM turns that into an {@link InternalError},
 * reported as {@link MappingFaultException} when it arrives inside the read (see there), and
 * {@link #isIntact()} turns {@code false}. If another
 * process rewrites it in place, readers see the new bytes, torn. Write snapshots to a new file and
 * rename it over the old one: a reader keeps the file it opened.
 *
 * <p>Thread-safety: safe for any number of concurrent readers; closing while reads run makes them
 * throw {@link StaleMappingException}.
 */
public final class SnapshotReader implements AutoCloseable {

    private final MappedFile file;

    private SnapshotReader(MappedFile file) {
        this.file = file;
    }

    /**
     * Opens and maps a snapshot file read-only.
     *
     * @param path the file
     * @return the reader
     * @throws MappingException {@code NOT_FOUND}, {@code IS_DIRECTORY}, {@code EMPTY},
     *     {@code UNMAPPABLE} or {@code ACCESS_DENIED}
     */
    public static SnapshotReader open(Path path) {
        return new SnapshotReader(MappedFile.open(path, MapMode.READ_ONLY));
    }

    /**
     * Returns the size of the snapshot as mapped.
     *
     * @return the size in bytes
     */
    public long size() {
        return file.size();
    }

    /**
     * Returns the snapshot's path.
     *
     * @return the path
     */
    public Path path() {
        return file.path();
    }

    /**
     * Copies exactly {@code length} bytes from {@code offset}.
     *
     * @param offset the first byte
     * @param length the number of bytes
     * @return a new array of {@code length} bytes
     * @throws OutOfBoundsAccessException when the range is not inside the snapshot
     * @throws MappingFaultException when the file was truncated under the reader (or the JVM's
     *     {@code InternalError} in compiled code; see {@link MappingFaultException})
     */
    public byte[] readExact(long offset, int length) {
        return file.getBytes(offset, length);
    }

    /**
     * Copies exactly {@code length} bytes from {@code offset} into {@code dst}.
     *
     * @param offset the first byte
     * @param dst the array to fill
     * @param dstOffset the first index of {@code dst} to write
     * @param length the number of bytes
     * @throws OutOfBoundsAccessException when the range is not inside the snapshot
     * @throws MappingFaultException when the file was truncated under the reader
     */
    public void readExact(long offset, byte[] dst, int dstOffset, int length) {
        file.getBytes(offset, dst, dstOffset, length);
    }

    /**
     * Returns a read-only zero-copy view of {@code length} bytes from {@code offset}. The view is
     * valid until the reader is closed; after that, access through it throws the JDK's
     * {@link IllegalStateException}.
     *
     * @param offset the first byte
     * @param length the number of bytes
     * @return the read-only segment
     * @throws OutOfBoundsAccessException when the range is not inside the snapshot
     */
    public MemorySegment view(long offset, long length) {
        return file.readOnlySlice(offset, length);
    }

    /**
     * Tells whether the file is still as long as when it was mapped, i.e. not truncated.
     *
     * @return {@code true} when every mapped byte is still backed by the file
     */
    public boolean isIntact() {
        return file.fileSize() >= file.size();
    }

    /** Unmaps the snapshot. Idempotent. */
    @Override
    public void close() {
        file.close();
    }
}
