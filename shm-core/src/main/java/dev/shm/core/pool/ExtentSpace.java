package dev.shm.core.pool;

import java.lang.foreign.MemorySegment;
import java.util.function.Supplier;

/**
 * The file space that structures of a segment grow into: extents appended to the segment file and
 * mapped without remapping anything already mapped. A {@code Segment} provides it.
 */
public interface ExtentSpace {

    /**
     * Runs {@code action} while holding the segment's extent lock: exclusive among the threads of
     * this process and among processes (an open-file-description lock, released by the kernel if
     * the holder dies).
     *
     * @param <T> the action's result
     * @param action what to do
     * @return the action's result
     */
    <T> T withExtentLock(Supplier<T> action);

    /**
     * Appends an extent to the file: grows it (preallocated) and publishes the segment's new size.
     * Call while holding the extent lock.
     *
     * @param length the extent's length
     * @return the extent's file offset, page-aligned; -1 when the segment's maximum size leaves no room
     * @throws dev.shm.core.CorruptionException when the published size is damaged (not page-aligned
     *     between the extents' start and the maximum size)
     */
    long append(long length);

    /**
     * Returns a writable segment over a published range of the file, mapping it if needed.
     *
     * @param offset the range's file offset
     * @param length the range's length
     * @return the memory
     * @throws dev.shm.core.CorruptionException when the range lies outside the published size
     */
    MemorySegment map(long offset, long length);

    /**
     * Returns the peer id of this process's attachment.
     *
     * @return the peer id
     */
    int peerId();
}
