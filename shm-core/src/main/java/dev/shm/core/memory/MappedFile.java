package dev.shm.core.memory;

import dev.shm.core.ErrnoException;
import dev.shm.core.Platform;
import dev.shm.core.internal.FileStatus;
import dev.shm.core.internal.Libc;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A file mapped into memory: read-only, read-write (shared with every process that maps it) or
 * copy-on-write. Reads and writes are typed and bounds-checked, atomic views are aligned, and
 * failures say what was expected and found (see {@link MemoryRegion}).
 *
 * {@snippet :
 * try (MappedFile file = MappedFile.create(Path.of("/dev/shm/demo"), 4096)) { // rw-------
 *     file.putLong(0, 42);
 *     AtomicLongView counter = file.atomicLong(8);
 *     counter.getAndAdd(1);       // atomic against every process that maps the file
 *     file.resize(8192);          // old views become stale; they can never touch unmapped memory
 * }
 * }
 *
 * <h2>Errors</h2>
 * Opening and mapping fail with {@link MappingException}, whose {@link MappingException#reason()}
 * tells the case: {@code NOT_FOUND}, {@code IS_DIRECTORY}, {@code EMPTY}, {@code UNMAPPABLE} (e.g.
 * {@code /dev/null}), {@code ACCESS_DENIED}, {@code TOO_SHORT}, {@code ALREADY_EXISTS},
 * {@code NO_SPACE}.
 *
 * <h2>Hazard: truncation</h2>
 * If another process truncates the file below the mapped size, an access to the lost pages faults
 * ({@code SIGBUS}). The JVM turns that into an {@link InternalError}, reported as
 * {@link MappingFaultException} when it arrives inside this class (see there): the fault must be
 * prevented, not caught. Only the file's owner should ever shrink it.
 *
 * <p>Thread-safety: safe for use by many threads; {@link #resize}, {@link #mapExtent} and
 * {@link #close} are serialised.
 */
public final class MappedFile extends MemoryRegion implements AutoCloseable {

    private final Path path;
    private final FileMapping file;
    private final boolean preallocate;

    private MappedFile(Path path, FileMapping file, boolean preallocate) {
        this.path = path;
        this.file = file;
        this.preallocate = preallocate;
    }

    /**
     * Creates a file of {@code size} zero bytes, owner-only ({@code rw-------}), and maps it
     * read-write. Fails if the file exists.
     *
     * @param path the file to create
     * @param size its size in bytes, positive
     * @return the mapped file
     * @throws MappingException {@code ALREADY_EXISTS}, {@code ACCESS_DENIED}, {@code NOT_FOUND} (no
     *     such directory) or {@code NO_SPACE}
     */
    public static MappedFile create(Path path, long size) {
        return create(path, size, CreateOptions.DEFAULTS);
    }

    /**
     * Creates a file of {@code size} zero bytes with the given options, and maps it read-write.
     * Fails if the file exists; on failure the file is removed again.
     *
     * @param path the file to create
     * @param size its size in bytes, positive
     * @param options the file's mode and whether to preallocate it
     * @return the mapped file
     * @throws MappingException {@code ALREADY_EXISTS}, {@code ACCESS_DENIED}, {@code NOT_FOUND} (no
     *     such directory) or {@code NO_SPACE}
     */
    public static MappedFile create(Path path, long size, CreateOptions options) {
        requirePositive(size);
        Platform.ensureSupported();
        String subject = path.toString();
        int mode = FileStatus.modeBits(options.permissions());
        int fd = Opening.open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL, mode, "create");
        try {
            Libc.fchmod(fd, mode, subject);
            Libc.ftruncate(fd, size, subject);
            if (options.preallocate()) {
                Libc.fallocate(fd, 0, size, subject);
            }
        } catch (ErrnoException e) {
            Libc.closeQuietly(fd);
            deleteQuietly(path);
            throw Opening.translate(e, subject, "create", path);
        } catch (RuntimeException | Error e) {
            Libc.closeQuietly(fd);
            deleteQuietly(path);
            throw e;
        }
        try {
            // FileMapping owns the descriptor from here: it closes it if the mapping fails.
            return new MappedFile(path, new FileMapping(fd, subject, MapMode.READ_WRITE, size), options.preallocate());
        } catch (ErrnoException e) {
            deleteQuietly(path);
            throw Opening.translate(e, subject, "map", path);
        } catch (RuntimeException | Error e) {
            deleteQuietly(path);
            throw e;
        }
    }

    /**
     * Opens an existing file and maps all of it.
     *
     * @param path the file
     * @param mode how to map it
     * @return the mapped file
     * @throws MappingException {@code NOT_FOUND}, {@code IS_DIRECTORY}, {@code EMPTY},
     *     {@code UNMAPPABLE} or {@code ACCESS_DENIED}
     */
    public static MappedFile open(Path path, MapMode mode) {
        return open(path, mode, 1);
    }

    /**
     * Opens an existing file that must be at least {@code minimumSize} bytes long, and maps all of it.
     *
     * @param path the file
     * @param mode how to map it
     * @param minimumSize the fewest bytes the caller needs
     * @return the mapped file
     * @throws MappingException {@code TOO_SHORT} when the file is shorter, or any reason of
     *     {@link #open(Path, MapMode)}
     */
    public static MappedFile open(Path path, MapMode mode, long minimumSize) {
        requirePositive(minimumSize);
        Platform.ensureSupported();
        String subject = path.toString();
        int fd = Opening.open(path, mode.openFlags, 0, "open for " + mode);
        FileStatus status;
        try {
            status = Opening.checkMappable(fd, subject, minimumSize);
        } catch (RuntimeException | Error e) {
            Libc.closeQuietly(fd);
            throw e;
        }
        try {
            // FileMapping owns the descriptor from here: it closes it if the mapping fails.
            return new MappedFile(path, new FileMapping(fd, subject, mode, status.size()), false);
        } catch (ErrnoException e) {
            throw Opening.translate(e, subject, "map", path);
        }
    }

    /**
     * Returns the file's path.
     *
     * @return the path
     */
    public Path path() {
        return path;
    }

    @Override
    public MapMode mode() {
        return file.mode();
    }

    /**
     * Returns the file's length now, which another process may have grown past {@link #size()}.
     *
     * @return the length in bytes
     */
    @Override
    public long fileSize() {
        return file.stat().size();
    }

    /**
     * Changes the file's size and remaps it. Growing extends the file with zeros (unless another
     * process already made it longer); shrinking cuts it. Every view taken before becomes stale and
     * throws {@link StaleMappingException}; this file's own accessors carry on with the new mapping.
     * Extents that reach past a new, smaller end are closed.
     *
     * <p>Only the owner of a file should shrink it: other processes that map the lost pages fault.
     *
     * @param newSize the new size, positive
     * @throws IllegalStateException when the mapping is not {@link MapMode#READ_WRITE} or is closed
     * @throws MappingException {@code NO_SPACE} and other failures of the file system
     */
    public void resize(long newSize) {
        requirePositive(newSize);
        if (mode() != MapMode.READ_WRITE) {
            throw new IllegalStateException("resize needs a READ_WRITE mapping; " + path + " is mapped " + mode());
        }
        try {
            file.resize(newSize, preallocate);
        } catch (ErrnoException e) {
            throw Opening.translate(e, path.toString(), "resize to " + newSize + " bytes", path);
        }
    }

    /**
     * Maps a further range of the file, which another process may have grown, without remapping
     * what is mapped already: views of this file stay valid. The extent's offsets start at its
     * first byte. It is closed with this file, or earlier by {@link MappedExtent#close()}.
     *
     * @param offset the file offset of the range; need not be page-aligned
     * @param length the length of the range, positive
     * @return the extent
     * @throws MappingException {@code TOO_SHORT} when the file does not reach {@code offset + length}
     */
    public MappedExtent mapExtent(long offset, long length) {
        try {
            return file.mapExtent(offset, length);
        } catch (ErrnoException e) {
            throw Opening.translate(e, path.toString(), "map an extent of", path);
        }
    }

    /**
     * Makes the file at least {@code size} bytes long, without remapping anything: views stay
     * valid, and the new range can be mapped with {@link #mapExtent}. Never shortens the file, even
     * when another process grows it at the same time (growth runs under an open-file-description
     * lock that every shm-core process takes).
     *
     * @param size the least length the file must have
     * @param preallocate whether to reserve the new blocks ({@code posix_fallocate}), so that a full
     *     file system fails here with {@code NO_SPACE} instead of faulting at first touch
     * @throws MappingException {@code NO_SPACE} and other failures of the file system
     * @throws IllegalStateException when the mapping is not {@link MapMode#READ_WRITE} or is closed
     */
    public void ensureFileSize(long size, boolean preallocate) {
        requirePositive(size);
        if (mode() != MapMode.READ_WRITE) {
            throw new IllegalStateException("growing a file needs a READ_WRITE mapping; " + path + " is mapped " + mode());
        }
        try {
            file.ensureFileSize(size, preallocate);
        } catch (ErrnoException e) {
            throw Opening.translate(e, path.toString(), "grow to " + size + " bytes", path);
        }
    }

    /**
     * Takes an advisory lock on one byte of the file, owned by this open file description (an
     * "OFD lock", {@code F_OFD_SETLK}): another {@code MappedFile} of the same file conflicts with
     * it, in this process or another, and the kernel releases it when this file is closed or its
     * process dies, whatever the cause. The byte need not exist: locks past the end of the file
     * are fine, and they do not affect reads or writes of the mapping. Locks of one byte are all
     * shm-core needs; it uses them to tell live processes from dead ones.
     *
     * @param offset the byte to lock
     * @param exclusive a write lock, which excludes every other lock, when {@code true}; a read
     *     lock, which excludes only write locks, otherwise
     * @param wait whether to wait while another description holds a conflicting lock: up to 30 s
     *     (the system property {@code shm.lockPatienceMillis} for tests), trying again with growing
     *     pauses, never in the kernel's unbounded wait
     * @return whether the lock is held; {@code false} only when {@code wait} is {@code false} and
     *     another description holds a conflicting lock
     * @throws IllegalStateException when the file is closed
     * @throws dev.shm.core.ShmTimeoutException when {@code wait} and the lock stayed held that long
     */
    public boolean lockByte(long offset, boolean exclusive, boolean wait) {
        if (wait) {
            file.lockWaiting(offset, exclusive);
            return true;
        }
        return file.withFd("lock a byte of", fd -> Libc.ofdLock(fd, exclusive, offset, 1, false, path.toString()));
    }

    /**
     * Releases this file's lock on one byte, if it holds one.
     *
     * @param offset the byte
     * @throws IllegalStateException when the file is closed
     */
    public void unlockByte(long offset) {
        file.withFd("unlock a byte of", fd -> {
            Libc.ofdUnlock(fd, offset, 1, path.toString());
            return null;
        });
    }

    /**
     * Tells whether another open file description — another {@code MappedFile} of this file, in
     * this process or any other — holds a lock on the byte. This file's own locks do not count.
     *
     * @param offset the byte
     * @return {@code true} when another description holds a lock on it
     * @throws IllegalStateException when the file is closed
     */
    public boolean isByteLockedByOther(long offset) {
        return file.withFd("test a lock of", fd -> Libc.ofdLocked(fd, offset, 1, path.toString()));
    }

    /**
     * Tells whether {@code path} names this open file now (same device and inode): {@code false}
     * once the file was removed, or replaced by another file of the same name.
     *
     * @param path the path to check, usually {@link #path()}
     * @return whether the path leads to this file
     */
    public boolean isLinkedAt(Path path) {
        FileStatus mine = file.stat();
        try {
            FileStatus named = Libc.stat(path.toString());
            return named.device() == mine.device() && named.inode() == mine.inode();
        } catch (ErrnoException gone) {
            return false;
        }
    }

    /**
     * Writes changes back to the file ({@code msync}), through this mapping and its extents. A
     * no-op for read-only and copy-on-write mappings, whose changes never reach the file.
     *
     * @throws IllegalStateException when the file is closed
     */
    public void flush() {
        if (mode() == MapMode.READ_WRITE) {
            file.sync();
        }
    }

    /**
     * Returns whether this file is still open.
     *
     * @return {@code false} after {@link #close()}
     */
    public boolean isOpen() {
        return !file.isClosed();
    }

    /**
     * Unmaps the file and its extents and closes its descriptor. Views become stale. The file
     * itself stays. Idempotent.
     */
    @Override
    public void close() {
        file.close();
    }

    @Override
    Mapping mapping() {
        return file.current();
    }

    @Override
    boolean isClosed() {
        return file.isClosed();
    }

    @Override
    String subject() {
        return path.toString();
    }

    private static void requirePositive(long size) {
        if (size <= 0) {
            throw new IllegalArgumentException("size=" + size + " must be positive");
        }
    }

    private static void deleteQuietly(Path path) {
        try {
            Files.deleteIfExists(path);
        } catch (IOException ignored) {
            // the failure being reported matters more
        }
    }
}
