package dev.shm.core.memory;

import dev.shm.core.internal.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.locks.LockSupport;

/**
 * One {@code mmap} of a file range, owned by a shared arena. Closing it unmaps the range; the
 * shared arena's close waits until no thread is inside an access, and every later access through
 * {@link #segment} throws {@link IllegalStateException}. That is what keeps stale views from ever
 * touching unmapped memory.
 */
final class Mapping {

    /** The usable bytes: from the requested file offset, for the requested length. */
    final MemorySegment segment;
    /** File offset of {@link #segment}'s first byte. */
    final long fileOffset;
    /** Size of {@link #segment}. */
    final long length;
    /** Counts the mappings of one file; a resize makes a new generation. */
    final long generation;

    private final Arena arena;
    /** The whole mapped pages, which start at a page boundary at or below {@link #fileOffset}. */
    private final MemorySegment pages;

    private Mapping(Arena arena, MemorySegment pages, MemorySegment segment, long fileOffset, long length,
                    long generation) {
        this.arena = arena;
        this.pages = pages;
        this.segment = segment;
        this.fileOffset = fileOffset;
        this.length = length;
        this.generation = generation;
    }

    /**
     * Maps {@code length} bytes of {@code fd} from {@code fileOffset}, which need not be page-aligned:
     * the range is mapped from the page boundary below it and sliced.
     */
    static Mapping map(int fd, long fileOffset, long length, MapMode mode, String subject, long generation) {
        long pageSize = Libc.pageSize();
        long pageOffset = fileOffset - Math.floorMod(fileOffset, pageSize);
        long skip = fileOffset - pageOffset;
        Arena arena = Arena.ofShared();
        try {
            MemorySegment pages = Libc.mmap(fd, pageOffset, skip + length, mode.prot, mode.mapFlags, arena, subject);
            return new Mapping(arena, pages, pages.asSlice(skip, length), fileOffset, length, generation);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Unmaps. Threads inside an access finish it first; any later access throws. While a native
     * call (an {@code msync}, or a user's downcall that was given a slice) holds the memory, the
     * JDK refuses to close; this waits for it, with back-off, up to {@code patience}. Idempotent.
     *
     * @return whether the memory is unmapped now; {@code false} only when the patience ran out
     */
    boolean close(Duration patience) {
        long deadline = System.nanoTime() + patience.toNanos();
        long pauseNanos = 100_000;
        while (arena.scope().isAlive()) {
            try {
                arena.close();
            } catch (IllegalStateException inUse) {
                if (!arena.scope().isAlive()) {
                    break; // a concurrent close won
                }
                if (System.nanoTime() - deadline > 0) {
                    return false;
                }
                LockSupport.parkNanos(pauseNanos);
                pauseNanos = Math.min(pauseNanos * 2, 50_000_000);
            }
        }
        return true;
    }

    /** Writes dirty pages back to the file ({@code msync} needs the page-aligned start). */
    void sync(String subject) {
        Libc.msync(pages, subject);
    }

    boolean isAlive() {
        return arena.scope().isAlive();
    }
}
