package dev.shm.core.memory;

import dev.shm.core.ShmTimeoutException;
import dev.shm.core.internal.FileStatus;
import dev.shm.core.internal.Libc;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntFunction;

/**
 * An open file descriptor with its current whole-file mapping and the extents mapped beside it.
 * Shared by {@link MappedFile} and {@link MemfdBuffer}.
 *
 * <p>Thread-safety: {@link #current()} and {@link #isClosed()} may be called from any thread
 * without locking; everything that uses the descriptor, and resize, extents and close, run under
 * one lock, so that no call can use the descriptor number after close released it.
 */
final class FileMapping {

    /** How long a close waits for native calls that hold the mapped memory. */
    static final Duration UNMAP_PATIENCE = Duration.ofSeconds(10);

    /**
     * The byte that processes lock (an open-file-description lock, see {@link Libc#ofdLock}) around
     * reading a file's size and growing it, so that two growers never cut each other's growth.
     * Far past any data; locks do not need the byte to exist.
     */
    static final long GROWTH_LOCK_BYTE = 1L << 62;

    private final int fd;
    private final String subject;
    private final MapMode mode;
    private final Object lock = new Object();
    private final List<MappedExtent> extents = new ArrayList<>();
    /** Mappings that a resize replaced but could not unmap yet (a native call held them). */
    private final List<Mapping> retired = new ArrayList<>();
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

    /**
     * How long a wait for a byte lock lasts before it fails: 30 s, or the system property
     * {@code shm.lockPatienceMillis} (for tests). Holders keep these locks for short steps; one that
     * holds one this long is stopped (SIGSTOP, a debugger) or broken.
     */
    static Duration lockPatience() {
        return Duration.ofMillis(Math.max(1, Long.getLong("shm.lockPatienceMillis", 30_000)));
    }

    /**
     * Takes the lock on one byte, waiting while another open file description holds a conflicting
     * one, up to {@link #lockPatience()}: tries without waiting ({@code F_OFD_SETLK}), and pauses
     * between tries (20 µs, doubling up to 10 ms) without this mapping's monitor (unless the caller
     * holds it, as {@link #grow} does), so that the file's other users in this process go on. The kernel's own wait ({@code F_OFD_SETLKW}) has no bound:
     * a process stopped while it holds the lock would hold up every waiter, and their threads, for
     * as long as it stays stopped. An interrupt does not end the wait (the kernel's did not either).
     *
     * @throws ShmTimeoutException when the lock stayed held for the patience
     */
    void lockWaiting(long offset, boolean exclusive) {
        Duration patience = null; // looked up once the first try failed
        long deadline = 0;
        long pause = 20_000;
        boolean interrupted = false;
        try {
            while (!withFd("lock a byte of", fd -> Libc.ofdLock(fd, exclusive, offset, 1, false, subject))) {
                if (patience == null) {
                    patience = lockPatience();
                    deadline = System.nanoTime() + patience.toNanos();
                } else if (System.nanoTime() - deadline >= 0) {
                    throw new ShmTimeoutException("the " + (exclusive ? "exclusive" : "shared") + " lock on byte "
                            + offset + " of " + subject + ", which another process holds and does not let go (one "
                            + "stopped by SIGSTOP or a debugger while it held it holds it for as long as it stays so)",
                            patience);
                }
                if (Thread.interrupted()) {
                    interrupted = true; // parks return at once while the flag is set
                }
                LockSupport.parkNanos(pause);
                pause = Math.min(pause * 2, 10_000_000L);
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Runs {@code call} with the descriptor, which stays open until it returns. */
    <T> T withFd(String action, IntFunction<T> call) {
        synchronized (lock) {
            ensureOpen(action);
            return call.apply(fd);
        }
    }

    /** The file's status now. */
    FileStatus stat() {
        return withFd("stat", descriptor -> Libc.fstat(descriptor, subject));
    }

    /**
     * Replaces the mapping with one of {@code newSize} bytes, growing the file when it is shorter,
     * or shrinking it. Views of the old mapping become stale.
     *
     * <p>Growing: under the {@link #GROWTH_LOCK_BYTE} lock, the file grows if it is shorter than
     * {@code newSize} (preallocated with {@code posix_fallocate}, which extends the file only when
     * it succeeds, or sparse with {@code ftruncate}); then the new mapping is published and the old
     * one closed. Shrinking: the smaller mapping is published and the old one closed — which waits
     * until no thread is inside an access and no native call holds it — and only then is the file
     * cut, so no thread of this process can touch a page past the new end. Other processes that
     * map the cut range fault; only the file's owner may shrink it.
     *
     * @throws IllegalStateException when shrinking and the old mapping stays in use by a native
     *     call for {@link #UNMAP_PATIENCE}; the file is then left as it was
     */
    void resize(long newSize, boolean preallocate) {
        synchronized (lock) {
            ensureOpen("resize");
            Mapping old = current;
            if (newSize == old.length) {
                return;
            }
            if (newSize > old.length) {
                grow(newSize, preallocate);
                current = Mapping.map(fd, 0, newSize, mode, subject, old.generation + 1);
                retire(old);
            } else {
                // A mapping that an earlier resize could not unmap (retire kept it) may still reach past
                // the new size: it must be gone too before the file is cut. Looked at first, so that a
                // shrink that cannot go ahead changes nothing.
                for (Mapping held : List.copyOf(retired)) {
                    if (held.length > newSize) {
                        if (!held.close(UNMAP_PATIENCE)) {
                            throw new IllegalStateException("cannot shrink " + subject + " to " + newSize + " bytes: "
                                    + "a mapping that an earlier resize replaced is still used by a native call after "
                                    + UNMAP_PATIENCE.toSeconds() + " s, and cutting the file under it would fault; "
                                    + "the file keeps its size");
                        }
                        retired.remove(held);
                    }
                }
                current = Mapping.map(fd, 0, newSize, mode, subject, old.generation + 1);
                if (!retire(old)) {
                    throw new IllegalStateException("cannot shrink " + subject + " to " + newSize + " bytes: its old "
                            + "mapping is still used by a native call after " + UNMAP_PATIENCE.toSeconds()
                            + " s, and cutting the file under it would fault; the file keeps its size");
                }
                for (MappedExtent extent : List.copyOf(extents)) {
                    if (extent.fileOffset() + extent.size() > newSize) {
                        extent.close();
                    }
                }
                Libc.ftruncate(fd, newSize, subject);
            }
        }
    }

    /**
     * Makes the file at least {@code size} bytes long without remapping anything; see
     * {@link MappedFile#ensureFileSize}.
     */
    void ensureFileSize(long size, boolean preallocate) {
        synchronized (lock) {
            ensureOpen("grow");
            grow(size, preallocate);
        }
    }

    /** Makes the file at least {@code newSize} bytes long, never shorter, whatever other processes do. */
    private void grow(long newSize, boolean preallocate) {
        lockWaiting(GROWTH_LOCK_BYTE, true);
        try {
            long fileSize = Libc.fstat(fd, subject).size();
            if (fileSize < newSize) {
                if (preallocate) {
                    Libc.fallocate(fd, fileSize, newSize - fileSize, subject);
                } else {
                    Libc.ftruncate(fd, newSize, subject);
                }
            }
        } finally {
            Libc.ofdUnlock(fd, GROWTH_LOCK_BYTE, 1, subject);
        }
    }

    /** Closes a replaced mapping, or keeps it for a later attempt; returns whether it is unmapped. */
    private boolean retire(Mapping old) {
        if (old.close(UNMAP_PATIENCE)) {
            return true;
        }
        retired.add(old);
        return false;
    }

    /** Maps a further range of the file, which must be long enough now; see {@link MappedFile#mapExtent}. */
    MappedExtent mapExtent(long offset, long length) {
        if (offset < 0 || length <= 0) {
            throw new IllegalArgumentException("an extent needs offset >= 0 and length > 0; offset=" + offset
                    + ", length=" + length);
        }
        synchronized (lock) {
            ensureOpen("map an extent of");
            long fileSize = Libc.fstat(fd, subject).size();
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

    /** Writes the dirty pages of the mapping and its extents back to the file. */
    void sync() {
        synchronized (lock) {
            ensureOpen("flush");
            current.sync(subject);
            for (MappedExtent extent : extents) {
                try {
                    extent.mapping().sync(subject);
                } catch (IllegalStateException closed) {
                    // An extent closing now unmaps before it leaves the list (MappedExtent.close): its
                    // pages went back to the file with the unmap; only another failure is one.
                    if (extent.mapping().isAlive()) {
                        throw closed;
                    }
                }
            }
        }
    }

    /**
     * Unmaps everything and closes the descriptor. Idempotent.
     *
     * @throws IllegalStateException when a mapping stays in use by a native call for
     *     {@link #UNMAP_PATIENCE}; it then stays mapped, and the descriptor is closed anyway
     */
    void close() {
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            List<Mapping> stuck = new ArrayList<>();
            for (MappedExtent extent : List.copyOf(extents)) {
                if (!extent.mapping().close(UNMAP_PATIENCE)) {
                    stuck.add(extent.mapping());
                }
            }
            extents.clear();
            retired.add(current);
            for (Mapping mapping : retired) {
                if (!mapping.close(UNMAP_PATIENCE)) {
                    stuck.add(mapping);
                }
            }
            retired.clear();
            Libc.closeQuietly(fd);
            if (!stuck.isEmpty()) {
                throw new IllegalStateException("closed " + subject + ", but " + stuck.size() + " of its mappings stay "
                        + "mapped: a native call still used them after " + UNMAP_PATIENCE.toSeconds() + " s");
            }
        }
    }

    private void ensureOpen(String action) {
        if (closed) {
            throw new IllegalStateException("cannot " + action + " " + subject + ": it is closed");
        }
    }
}
