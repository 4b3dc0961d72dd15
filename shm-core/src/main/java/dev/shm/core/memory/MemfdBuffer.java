package dev.shm.core.memory;

import dev.shm.core.ErrnoException;
import dev.shm.core.Platform;
import dev.shm.core.ShmException;
import dev.shm.core.ShmTimeoutException;
import dev.shm.core.internal.Errno;
import dev.shm.core.internal.Libc;
import dev.shm.core.memory.MappingException.Reason;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An anonymous shared-memory buffer ({@code memfd_create}) that other processes map by its file
 * descriptor: the same physical pages, no copy.
 *
 * <h2>Seals</h2>
 * {@link #create} sizes the buffer and then seals it against shrinking, growing and further
 * sealing ({@code F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL}): the kernel then refuses every
 * {@code ftruncate}, so no process can cut the buffer under a mapping (which would make accesses
 * fault). A receiver ({@link #open}, {@link #adopt}, {@link #receive}) checks those seals before it
 * trusts the size, and refuses an unsealed buffer or one smaller than it needs.
 *
 * <h2>Sharing</h2>
 * <ul>
 *   <li>by {@code (pid, fd)}: the receiver opens {@code /proc/<pid>/fd/<fd>} ({@link #open}); this
 *       needs the same user and the same PID namespace;
 *   <li>over a Unix domain socket ({@link #sendTo}, {@link #receive}), which also works between
 *       containers.
 * </ul>
 * Inside a process, {@link #share()} hands out further handles; the last {@link #close()} unmaps
 * the buffer and closes its descriptor. A closed handle refuses access; views taken from it stay
 * usable while another handle keeps the buffer mapped. Other processes' mappings stay valid after that: the
 * kernel frees the memory when the last mapping and descriptor are gone.
 *
 * {@snippet :
 * try (MemfdBuffer frames = MemfdBuffer.create("frames", 16 << 20)) {    // sealed
 *     frames.putLong(0, 42);
 *     // another process, same user:
 *     // MemfdBuffer.open(creatorPid, frames.fd(), 16 << 20).getLong(0) == 42
 * }
 * }
 *
 * <p>Linux only: elsewhere every factory throws {@link UnsupportedOperationException}.
 * Thread-safety: safe for use by many threads.
 */
public final class MemfdBuffer extends MemoryRegion implements AutoCloseable {

    /** The longest name {@code memfd_create} takes, in UTF-8 bytes (255 less {@code "memfd:"}). */
    public static final int MAX_NAME_BYTES = 249;

    /** The seals a receiver requires: no shrinking, no growing, no further seals. */
    public static final int REQUIRED_SEALS = Libc.F_SEAL_SHRINK | Libc.F_SEAL_GROW | Libc.F_SEAL_SEAL;

    /** The most bytes a hand-over message may have: header and name. */
    private static final int MAX_MESSAGE_BYTES = 512;
    /** "shmMEMFD" in ASCII, little-endian: the first field of a hand-over message. */
    private static final long MESSAGE_MAGIC = 0x4446_4D45_4D6D_6873L;
    private static final int MESSAGE_VERSION = 1;
    /*
     * Hand-over message, little-endian:
     *  0        8        12       20       24
     *  +--------+--------+--------+--------+----------------+
     *  | magic  |version | size   |nameLen | name (UTF-8)   |
     *  +--------+--------+--------+--------+----------------+
     */
    private static final int MESSAGE_HEADER_BYTES = 24;

    private final Shared shared;
    private final AtomicBoolean closed = new AtomicBoolean();

    private MemfdBuffer(Shared shared) {
        this.shared = shared;
    }

    /** What every handle of one buffer shares: the mapping and the count of open handles. */
    private static final class Shared {
        final FileMapping file;
        final String name;
        final AtomicInteger handles = new AtomicInteger(1);

        Shared(FileMapping file, String name) {
            this.file = file;
            this.name = name;
        }

        void acquire() {
            for (int n = handles.get(); ; n = handles.get()) {
                if (n == 0) {
                    throw new IllegalStateException("memfd:" + name + " is closed: no handle left to share");
                }
                if (handles.compareAndSet(n, n + 1)) {
                    return;
                }
            }
        }

        void release() {
            if (handles.decrementAndGet() == 0) {
                file.close();
            }
        }
    }

    /**
     * Creates a buffer of {@code size} zero bytes, mapped read-write, and seals its size.
     *
     * @param name the name shown in {@code /proc/<pid>/fd} as {@code memfd:<name>}; not empty, no
     *     NUL, at most {@value #MAX_NAME_BYTES} UTF-8 bytes
     * @param size the size in bytes, positive
     * @return the sealed buffer
     * @throws IllegalArgumentException for a bad name or size
     */
    public static MemfdBuffer create(String name, long size) {
        MemfdBuffer buffer = createUnsealed(name, size);
        try {
            buffer.seal();
            return buffer;
        } catch (RuntimeException | Error e) {
            buffer.close();
            throw e;
        }
    }

    /**
     * Creates a buffer that is not sealed yet, so that {@link #resize} can still change its size;
     * {@link #seal()} it before handing it to another process, which refuses it otherwise.
     *
     * @param name the name, as for {@link #create}
     * @param size the size in bytes, positive
     * @return the unsealed buffer
     * @throws IllegalArgumentException for a bad name or size
     */
    public static MemfdBuffer createUnsealed(String name, long size) {
        checkName(name);
        if (size <= 0) {
            throw new IllegalArgumentException("size=" + size + " must be positive");
        }
        Platform.ensureSupported();
        String subject = "memfd:" + name;
        int fd;
        try {
            fd = Libc.memfdCreate(name, Libc.MFD_ALLOW_SEALING);
        } catch (ErrnoException e) {
            throw Opening.translate(e, subject, "create", null);
        }
        try {
            Libc.ftruncate(fd, size, subject);
        } catch (ErrnoException e) {
            Libc.closeQuietly(fd);
            throw Opening.translate(e, subject, "size", null);
        }
        try {
            // FileMapping owns the descriptor from here: it closes it if the mapping fails.
            return new MemfdBuffer(new Shared(new FileMapping(fd, subject, MapMode.READ_WRITE, size), name));
        } catch (ErrnoException e) {
            throw Opening.translate(e, subject, "map", null);
        }
    }

    /**
     * Opens another process's memfd through {@code /proc/<pid>/fd/<fd>} and maps it read-write,
     * after checking that it is a memfd, that it is sealed ({@link #REQUIRED_SEALS}) and that it
     * holds at least {@code minimumSize} bytes. Needs the same user as that process (or
     * {@code CAP_SYS_PTRACE}) and the same PID namespace; across containers use {@link #receive}.
     *
     * @param pid the process that holds the descriptor
     * @param fd the descriptor's number in that process
     * @param minimumSize the fewest bytes the caller needs
     * @return the buffer
     * @throws MappingException {@code NOT_FOUND} (no such process or descriptor),
     *     {@code ACCESS_DENIED}, {@code NOT_MEMFD}, {@code NOT_SEALED} or {@code TOO_SHORT}
     */
    public static MemfdBuffer open(long pid, int fd, long minimumSize) {
        requireMinimum(minimumSize);
        Platform.ensureSupported();
        Path path = Path.of("/proc/" + pid + "/fd/" + fd);
        int own = Opening.open(path, Libc.O_RDWR, 0, "open the memfd of process " + pid + " at");
        return adopt(own, minimumSize, path.toString());
    }

    /**
     * Takes ownership of a descriptor this process received (for example from
     * {@link FdSocket#receive}), checks it as {@link #open} does, and maps it read-write. On
     * failure the descriptor is closed.
     *
     * @param fd the descriptor; this buffer closes it
     * @param minimumSize the fewest bytes the caller needs
     * @return the buffer
     * @throws MappingException {@code NOT_MEMFD}, {@code NOT_SEALED} or {@code TOO_SHORT}
     */
    public static MemfdBuffer adopt(int fd, long minimumSize) {
        requireMinimum(minimumSize);
        Platform.ensureSupported();
        return adopt(fd, minimumSize, "descriptor " + fd);
    }

    private static MemfdBuffer adopt(int fd, long minimumSize, String origin) {
        String name;
        long size;
        try {
            name = memfdName(fd, origin);
            size = checkSealedSize(fd, "memfd:" + name, origin, minimumSize);
        } catch (ErrnoException e) {
            Libc.closeQuietly(fd);
            throw Opening.translate(e, origin, "check the memfd at", null);
        } catch (RuntimeException | Error e) {
            Libc.closeQuietly(fd);
            throw e;
        }
        try {
            // FileMapping owns the descriptor from here: it closes it if the mapping fails.
            return new MemfdBuffer(new Shared(new FileMapping(fd, "memfd:" + name, MapMode.READ_WRITE, size), name));
        } catch (ErrnoException e) {
            throw Opening.translate(e, origin, "map the memfd at", null);
        }
    }

    private static void requireMinimum(long minimumSize) {
        if (minimumSize < 0) {
            throw new IllegalArgumentException("minimumSize=" + minimumSize + " must not be negative");
        }
    }

    /** Checks the seals before trusting the size, then the size; returns the size. */
    private static long checkSealedSize(int fd, String subject, String origin, long minimumSize) {
        int seals = Libc.fcntl(fd, Libc.F_GET_SEALS, 0, "fcntl(" + subject + ", F_GET_SEALS)");
        if ((seals & REQUIRED_SEALS) != REQUIRED_SEALS) {
            throw new MappingException(Reason.NOT_SEALED, subject + " (" + origin + ") lacks the seals "
                    + sealNames(REQUIRED_SEALS & ~seals) + " (it has " + sealNames(seals) + "): its size could "
                    + "change under the mapping, so it is refused; the sender must seal it "
                    + "(MemfdBuffer.create seals, or call seal())", null);
        }
        long size = Libc.fstat(fd, subject).size();
        if (size == 0) {
            throw new MappingException(Reason.EMPTY, subject + " (" + origin + ") is empty (0 bytes): nothing to map",
                    null);
        }
        if (size < minimumSize) {
            throw new MappingException(Reason.TOO_SHORT, "memfd too small: expected at least " + minimumSize
                    + " bytes, found " + size + " in " + subject + " (" + origin + ")", null);
        }
        return size;
    }

    /**
     * Hands this buffer to the process at the other end of {@code socket}: its descriptor, with a
     * message that announces the name and size. The other process calls {@link #receive}.
     *
     * @param socket a connected socket
     * @throws IllegalStateException when the buffer is not sealed (the receiver would refuse it) or closed
     * @throws dev.shm.core.ShmTimeoutException when the other process did not read its socket within
     *     the socket's {@linkplain FdSocket#sendTimeout() send timeout} (its queue stayed full)
     */
    public void sendTo(FdSocket socket) {
        ensureOpen();
        if (!isSealed()) {
            throw new IllegalStateException("memfd:" + shared.name + " is not sealed; seal() it before sending it");
        }
        byte[] name = shared.name.getBytes(StandardCharsets.UTF_8);
        MemorySegment message = MemorySegment.ofArray(new byte[MESSAGE_HEADER_BYTES + name.length]);
        message.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, MESSAGE_MAGIC);
        message.set(ValueLayout.JAVA_INT_UNALIGNED, 8, MESSAGE_VERSION);
        message.set(ValueLayout.JAVA_LONG_UNALIGNED, 12, size());
        message.set(ValueLayout.JAVA_INT_UNALIGNED, 20, name.length);
        MemorySegment.copy(name, 0, message, ValueLayout.JAVA_BYTE, MESSAGE_HEADER_BYTES, name.length);
        byte[] bytes = message.toArray(ValueLayout.JAVA_BYTE);
        shared.file.withFd("send", fd -> {
            socket.send(fd, bytes);
            return null;
        });
    }

    /**
     * Receives a buffer that another process sent with {@link #sendTo}, and checks it as
     * {@link #open} does; its size must also equal the size the sender announced.
     *
     * @param socket a connected socket
     * @param minimumSize the fewest bytes the caller needs
     * @param timeout how long to wait for it
     * @return the buffer
     * @throws ShmTimeoutException when nothing arrived in time
     * @throws MappingException {@code NOT_MEMFD} (a malformed or oversized message, or not a
     *     memfd), {@code NOT_SEALED}, {@code EMPTY}, {@code TOO_SHORT} or {@code SIZE_MISMATCH}
     * @throws ShmException when the peer closed the connection without sending one
     */
    public static MemfdBuffer receive(FdSocket socket, long minimumSize, Duration timeout) {
        FdSocket.Message message;
        try {
            message = socket.receive(MAX_MESSAGE_BYTES, timeout);
        } catch (ErrnoException e) {
            throw e;
        } catch (ShmException refused) {
            throw new MappingException(Reason.NOT_MEMFD, "no memfd hand-over on " + socket + ": "
                    + refused.getMessage(), refused);
        }
        if (message == null) {
            throw new ShmTimeoutException("a memfd on " + socket, timeout);
        }
        if (message.isEndOfStream()) {
            throw new ShmException("the peer closed " + socket + " without sending a memfd");
        }
        MemorySegment data = MemorySegment.ofArray(message.data());
        String problem = null;
        if (message.fds().length != 1) {
            problem = "carries " + message.fds().length + " descriptors instead of 1";
        } else if (data.byteSize() < MESSAGE_HEADER_BYTES
                || data.get(ValueLayout.JAVA_LONG_UNALIGNED, 0) != MESSAGE_MAGIC) {
            problem = "is not a memfd hand-over (bad magic or too short: " + data.byteSize() + " bytes)";
        } else if (data.get(ValueLayout.JAVA_INT_UNALIGNED, 8) != MESSAGE_VERSION) {
            problem = "has version " + data.get(ValueLayout.JAVA_INT_UNALIGNED, 8) + ", expected " + MESSAGE_VERSION;
        } else if (data.get(ValueLayout.JAVA_INT_UNALIGNED, 20) != data.byteSize() - MESSAGE_HEADER_BYTES) {
            problem = "announces a name of " + data.get(ValueLayout.JAVA_INT_UNALIGNED, 20) + " bytes but carries "
                    + (data.byteSize() - MESSAGE_HEADER_BYTES);
        }
        if (problem != null) {
            message.closeDescriptors();
            throw new MappingException(Reason.NOT_MEMFD, "the message on " + socket + " " + problem, null);
        }
        long announced = data.get(ValueLayout.JAVA_LONG_UNALIGNED, 12);
        MemfdBuffer buffer = adopt(message.fds()[0], minimumSize, "received on " + socket);
        if (buffer.size() != announced) {
            buffer.close();
            throw new MappingException(Reason.SIZE_MISMATCH, "memfd received on " + socket + " is " + buffer.size()
                    + " bytes, but its sender announced " + announced, null);
        }
        return buffer;
    }

    /**
     * Seals the buffer's size ({@link #REQUIRED_SEALS}); from now on the kernel refuses every change
     * of size, in every process. Idempotent.
     */
    public void seal() {
        ensureOpen();
        if (isSealed()) {
            return;
        }
        try {
            shared.file.withFd("seal", fd -> Libc.fcntl(fd, Libc.F_ADD_SEALS, REQUIRED_SEALS,
                    "fcntl(" + subject() + ", F_ADD_SEALS)"));
        } catch (ErrnoException e) {
            throw Opening.translate(e, subject(), "seal", null);
        }
    }

    /**
     * Returns the seals the kernel holds for this buffer.
     *
     * @return a bit set of {@code F_SEAL_*} values
     */
    public int seals() {
        ensureOpen();
        return shared.file.withFd("read the seals of", fd -> Libc.fcntl(fd, Libc.F_GET_SEALS, 0,
                "fcntl(" + subject() + ", F_GET_SEALS)"));
    }

    /**
     * Returns whether the buffer's size is sealed.
     *
     * @return {@code true} when {@link #REQUIRED_SEALS} are all set
     */
    public boolean isSealed() {
        return (seals() & REQUIRED_SEALS) == REQUIRED_SEALS;
    }

    /**
     * Changes the size of an unsealed buffer and remaps it; views taken before become stale. A
     * sealed buffer is refused: the kernel denies the change ({@code EPERM}) to every process.
     *
     * @param newSize the new size, positive
     * @throws MappingException {@code SEALED} when the buffer is sealed
     */
    public void resize(long newSize) {
        ensureOpen();
        if (newSize <= 0) {
            throw new IllegalArgumentException("size=" + newSize + " must be positive");
        }
        int seals = seals();
        int forbidding = newSize < size() ? Libc.F_SEAL_SHRINK : Libc.F_SEAL_GROW;
        // Shrinking unmaps before it truncates, so the kernel's refusal would come too late: check first.
        if (newSize < size() && (seals & forbidding) != 0) {
            throw sealed(newSize, seals, null);
        }
        try {
            shared.file.resize(newSize, false);
        } catch (ErrnoException e) {
            if (e.errno() == Errno.EPERM) {
                throw sealed(newSize, seals, e);
            }
            throw Opening.translate(e, subject(), "resize to " + newSize + " bytes", null);
        }
    }

    private MappingException sealed(long newSize, int seals, ErrnoException cause) {
        return new MappingException(Reason.SEALED, "cannot resize " + subject() + " from " + size() + " to " + newSize
                + " bytes: it is sealed (" + sealNames(seals) + ")" + (cause == null ? "" : ", and the kernel refused: "
                + cause.getMessage()), cause);
    }

    /**
     * Returns another handle to this buffer, for another owner in this process. The buffer is
     * unmapped when the last handle is closed.
     *
     * @return a new handle
     * @throws IllegalStateException when this handle is closed
     */
    public MemfdBuffer share() {
        ensureOpen();
        shared.acquire();
        return new MemfdBuffer(shared);
    }

    /**
     * Returns the buffer's name.
     *
     * @return the name given at creation
     */
    public String name() {
        return shared.name;
    }

    /**
     * Returns the descriptor, to hand to another process as {@code (pid, fd)}.
     *
     * @return the file descriptor number in this process
     */
    public int fd() {
        ensureOpen();
        return shared.file.withFd("read the descriptor of", fd -> fd);
    }

    /**
     * Closes this handle; the last handle's close unmaps the buffer and closes its descriptor.
     * Idempotent per handle.
     */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            shared.release();
        }
    }

    @Override
    Mapping mapping() {
        if (closed.get()) {
            throw new StaleMappingException(subject() + " is closed: this handle was closed (other handles may "
                    + "still be open)", null);
        }
        return shared.file.current();
    }

    @Override
    boolean isClosed() {
        return closed.get() || shared.file.isClosed();
    }

    @Override
    String subject() {
        return "memfd:" + shared.name;
    }

    @Override
    MapMode mode() {
        return MapMode.READ_WRITE;
    }

    @Override
    long fileSize() {
        return shared.file.stat().size();
    }

    private void ensureOpen() {
        if (isClosed()) {
            throw new IllegalStateException(subject() + " is closed");
        }
    }

    private static void checkName(String name) {
        if (name.isEmpty()) {
            throw new IllegalArgumentException("a memfd name must not be empty (it shows in /proc/<pid>/fd)");
        }
        if (name.indexOf('\0') >= 0) {
            throw new IllegalArgumentException("a memfd name must not contain NUL (\\0); name="
                    + name.replace("\0", "\\0"));
        }
        int bytes = name.getBytes(StandardCharsets.UTF_8).length;
        if (bytes > MAX_NAME_BYTES) {
            throw new IllegalArgumentException("a memfd name holds at most " + MAX_NAME_BYTES
                    + " UTF-8 bytes (the kernel's limit); name has " + bytes);
        }
    }

    /** The name of a memfd from its {@code /proc/self/fd} link, {@code /memfd:<name> (deleted)}. */
    private static String memfdName(int fd, String origin) {
        String target;
        try {
            target = Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString();
        } catch (IOException e) {
            throw new MappingException(Reason.NOT_MEMFD, "cannot tell what " + origin + " is: " + e.getMessage(), e);
        }
        if (!target.startsWith("/memfd:")) {
            throw new MappingException(Reason.NOT_MEMFD, origin + " is " + target + ", not a memfd", null);
        }
        String name = target.substring("/memfd:".length());
        return name.endsWith(" (deleted)") ? name.substring(0, name.length() - " (deleted)".length()) : name;
    }

    /** Names the seals in a bit set, e.g. {@code "F_SEAL_SHRINK|F_SEAL_GROW"}; {@code "none"} for none. */
    static String sealNames(int seals) {
        List<String> names = new ArrayList<>();
        if ((seals & Libc.F_SEAL_SEAL) != 0) {
            names.add("F_SEAL_SEAL");
        }
        if ((seals & Libc.F_SEAL_SHRINK) != 0) {
            names.add("F_SEAL_SHRINK");
        }
        if ((seals & Libc.F_SEAL_GROW) != 0) {
            names.add("F_SEAL_GROW");
        }
        if ((seals & Libc.F_SEAL_WRITE) != 0) {
            names.add("F_SEAL_WRITE");
        }
        return names.isEmpty() ? "none" : String.join("|", names);
    }
}
