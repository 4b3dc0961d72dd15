package dev.shm.core.memory;

import dev.shm.core.internal.FileStatus;
import dev.shm.core.internal.Libc;
import java.util.ArrayList;
import java.util.List;

/**
 * An open file descriptor with its current whole-file mapping and the extents mapped beside it.
 * Shared by {@link MappedFile} and {@link MemfdBuffer}.
 *
 * <p>Thread-safety: {@link #current()} and {@link #isClosed()} may be called from any thread
 * without locking; resize, extents and close are serialised on a lock.
 */
final class FileMapping {

    private final int fd;
    private final String subject;
    private final MapMode mode;
    private final Object lock = new Object();
    private final List<MappedExtent> extents = new ArrayList<>();
    private volatile Mapping current;
    /** Set before the mapping is closed, so that an access that fails on a closed mapping sees it. */
    private volatile boolean closed;

    /** Maps the first {@code length} bytes of {@code fd}; closes {@code fd} if that fails. */
    FileMapping(int fd, String subject, MapMode mode, long length) {
        this.fd = fd;
        this.subject = subject;
        this.mode = mode;
        try {
            this.current = Mapping.map(fd, 0, length, mode, subject, 1);
        } catch (RuntimeException | Error e) {
            Libc.closeQuietly(fd);
            throw e;
        }
    }

    int fd() {
        return fd;
    }

    String subject() {
        return subject;
    }

    MapMode mode() {
        return mode;
    }

    Mapping current() {
        return current;
    }

    boolean isClosed() {
        return closed;
    }

    FileStatus stat() {
        return Libc.fstat(fd, subject);
    }

    /**
     * Replaces the mapping with one of {@code newSize} bytes, growing the file when it is shorter,
     * or shrinking it. Views of the old mapping become stale.
     *
     * <p>Growing: the file grows first, then the new mapping is published, then the old one is
     * closed. Shrinking: the smaller mapping is published and the old one closed (which waits until
     * no thread is inside an access) before the file shrinks, so that no thread of this process can
     * touch a page past the new end. Other processes that map the shrunk range fault; only the
     * file's owner may shrink it.
     */
    void resize(long newSize, boolean preallocate) {
        synchronized (lock) {
            ensureOpen("resize");
            Mapping old = current;
            if (newSize == old.length) {
                return;
            }
            if (newSize > old.length) {
                long fileSize = stat().size();
                if (fileSize < newSize) {
                    Libc.ftruncate(fd, newSize, subject);
                    if (preallocate) {
                        Libc.fallocate(fd, fileSize, newSize - fileSize, subject);
                    }
                }
                current = Mapping.map(fd, 0, newSize, mode, subject, old.generation + 1);
                old.close();
            } else {
                current = Mapping.map(fd, 0, newSize, mode, subject, old.generation + 1);
                old.close();
                for (MappedExtent extent : List.copyOf(extents)) {
                    if (extent.fileOffset() + extent.size() > newSize) {
                        extent.close();
                    }
                }
                Libc.ftruncate(fd, newSize, subject);
            }
        }
    }

    /** Maps a further range of the file, which must be long enough now; see {@link MappedFile#mapExtent}. */
    MappedExtent mapExtent(long offset, long length) {
        if (offset < 0 || length <= 0) {
            throw new IllegalArgumentException("an extent needs offset >= 0 and length > 0; offset=" + offset
                    + ", length=" + length);
        }
        synchronized (lock) {
            ensureOpen("map an extent of");
            long fileSize = stat().size();
            if (offset > fileSize - length) {
                throw new MappingException(MappingException.Reason.TOO_SHORT, subject + " is " + fileSize
                        + " bytes, shorter than the caller expects: the extent at offset=" + offset + ", length="
                        + length + " needs " + (offset > Long.MAX_VALUE - length ? "more than " + Long.MAX_VALUE
                        : String.valueOf(offset + length)) + " bytes", null);
            }
            Mapping mapping = Mapping.map(fd, offset, length, mode, subject + " extent@" + offset, 1);
            MappedExtent extent = new MappedExtent(this, mapping);
            extents.add(extent);
            return extent;
        }
    }

    void forget(MappedExtent extent) {
        synchronized (lock) {
            extents.remove(extent);
        }
    }

    /** Unmaps everything and closes the descriptor. Idempotent. */
    void close() {
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            for (MappedExtent extent : List.copyOf(extents)) {
                extent.close();
            }
            current.close();
            Libc.closeQuietly(fd);
        }
    }

    private void ensureOpen(String action) {
        if (closed) {
            throw new IllegalStateException("cannot " + action + " " + subject + ": it is closed");
        }
    }
}
