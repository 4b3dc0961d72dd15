package dev.shm.core.segment;

import dev.shm.core.CorruptionException;
import dev.shm.core.Platform;
import dev.shm.core.ShmException;
import dev.shm.core.ShmTimeoutException;
import dev.shm.core.counters.Counters;
import dev.shm.core.counters.SegmentCounters;
import dev.shm.core.internal.Processes;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.memory.CreateOptions;
import dev.shm.core.memory.MapMode;
import dev.shm.core.memory.MappedFile;
import dev.shm.core.memory.MappingException;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.pool.SlotPoolDescriptor;
import dev.shm.core.segment.SegmentDescriptor.Header;
import dev.shm.core.segment.SegmentDescriptor.Layout;
import dev.shm.core.segment.SegmentException.Reason;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A segment: one file (default {@code /dev/shm/<name>.shm}) that the processes of a host share,
 * holding a peer table, counters, a directory of channels and services, lanes, a slot pool and
 * memfd leases (see {@link SegmentDescriptor} for the layout). This object is one process's
 * attachment to it, as one peer.
 *
 * {@snippet :
 * SegmentOptions options = SegmentOptions.named("orders");
 * try (Segment segment = Segment.open(options, "billing")) {   // create, or attach to, orders.shm
 *     long ref = segment.slotPool().allocate(1000);
 *     ...
 * }                                                            // detach; the last one out removes the file
 * }
 *
 * <h2>Create or attach</h2>
 * {@link #open} attaches to the segment if its file exists, and creates it otherwise. A creator
 * builds the whole file under a temporary name — header, tables, initial slot extents, and the
 * magic last with release — and links it to its name only then; if another process linked one
 * first, the creator drops its own and attaches to the other. So processes that create a segment
 * at the same moment end with exactly one, fully initialised, that all of them attach to. An
 * attaching process validates the header against the file before touching anything else
 * ({@link SegmentDescriptor#check}), and its parameters against its own options
 * ({@code PARAMETER_MISMATCH} otherwise).
 *
 * <h2>Liveness and recovery</h2>
 * Each peer holds a lock on its own byte of the file that the kernel drops when its process dies;
 * death is decided by that lock and the process's (pid, start time), never by heartbeats. A
 * monitor thread writes this peer's heartbeat every heartbeat interval, reports stalled peers
 * (heartbeat older than the liveness timeout while the process lives; counted, never recovered),
 * and recovers dead ones: claimed once by compare-and-set, then, in order, mark goodbye, reclaim
 * the references in its lanes and reset them, free the slots it owned, drop its memfd leases, run
 * the registered participants (rings), release its directory roles, and empty its entry.
 *
 * <h2>Stale segments and leaving</h2>
 * A segment file whose peers are all dead is stale: per {@link SegmentOptions#stalePolicy()} it
 * is recovered and reused, or removed and created anew. {@link #close()} detaches cleanly; the
 * creator says goodbye first (other peers see {@link #isHostGoodbye()}), and the last peer out
 * removes the file when {@link SegmentOptions#unlinkOnLastDetach()} says so.
 *
 * <p>Thread-safety: safe for use by many threads.
 */
public final class Segment implements AutoCloseable {

    /** How long {@link #open} keeps trying while other processes create, recreate or remove the file. */
    private static final Duration ATTACH_PATIENCE = Duration.ofSeconds(30);
    private static final AtomicInteger TEMPORARY_NAMES = new AtomicInteger();

    /** Takes part in the recovery of a dead peer, e.g. to unblock the rings it stalled. */
    @FunctionalInterface
    public interface RecoveryParticipant {
        /**
         * Releases what the dead peer held in a structure of the segment. Must be idempotent: if
         * this process dies half-way, another peer runs it again.
         *
         * @param dead the dead peer
         */
        void recover(int dead);

        /** This process detaches from the segment ({@link Segment#close}): forget what was kept about it. */
        default void detached() {
        }
    }

    private final SegmentOptions options;
    private final SegmentMemory memory;
    private final int peerId;
    private final int epoch;
    private final boolean creator;
    private final List<RecoveryParticipant> participants = new CopyOnWriteArrayList<>();
    private final ReentrantLock recoveryLock = new ReentrantLock();
    private final Set<Integer> stalled = new HashSet<>();
    private final Object closeLock = new Object();
    private volatile boolean closed;
    private volatile Thread monitor;
    private volatile RuntimeException monitorFailure;

    private Segment(SegmentOptions options, SegmentMemory memory, int peerId, int epoch, boolean creator) {
        this.options = options;
        this.memory = memory;
        this.peerId = peerId;
        this.epoch = epoch;
        this.creator = creator;
        participants.add(dev.shm.core.ring.RingRecovery.of(this));
    }

    // ---------------------------------------------------------------- opening

    /**
     * Attaches to the segment as a new (walk-in) peer, creating the segment if it does not exist.
     *
     * @param options the segment's options
     * @param peerName this peer's name, e.g. {@code spring.application.name}
     * @return the attachment
     * @throws SegmentException {@code PARAMETER_MISMATCH} when the segment exists with other
     *     parameters, {@code PEER_TABLE_FULL}, or a header problem ({@code BAD_MAGIC},
     *     {@code UNSUPPORTED_VERSION}, {@code TRUNCATED}, {@code OFFSET_OUTSIDE_FILE},
     *     {@code CORRUPT})
     * @throws MappingException when the file cannot be created or opened (e.g. {@code NO_SPACE}:
     *     {@code /dev/shm} too small; {@code ACCESS_DENIED})
     * @throws dev.shm.core.ShmTimeoutException when another process held one of the segment's file
     *     locks for the lock patience (30 s; stopped while it held it): architecture.md, "Liveness: the
     *     operating system decides"
     */
    public static Segment open(SegmentOptions options, String peerName) {
        return attach(options, peerName, -1);
    }

    /**
     * Attaches as the peer that another peer reserved for this process ({@link #reservePeer()}).
     *
     * @param options the segment's options
     * @param reservedPeer the reserved peer id
     * @param peerName this peer's name
     * @return the attachment
     * @throws SegmentException {@code BAD_PEER} when that entry is not reserved
     */
    public static Segment claim(SegmentOptions options, int reservedPeer, String peerName) {
        if (reservedPeer < 0) {
            throw new IllegalArgumentException("reservedPeer=" + reservedPeer + " must not be negative");
        }
        return attach(options, peerName, reservedPeer);
    }

    private static Segment attach(SegmentOptions options, String peerName, int reservedPeer) {
        Platform.ensureSupported();
        Path path = options.path();
        long deadline = System.nanoTime() + ATTACH_PATIENCE.toNanos();
        while (true) {
            if (System.nanoTime() - deadline > 0) {
                throw new SegmentException(Reason.CORRUPT, "could not attach to " + path + " within "
                        + ATTACH_PATIENCE.toSeconds() + " s: other processes kept creating or removing it");
            }
            SegmentMemory memory;
            boolean created;
            MappedFile existing = openIfExists(path);
            if (existing == null) {
                memory = createAndPublish(options);
                created = true;
            } else {
                memory = lockAndValidate(existing, path);
                created = false;
            }
            if (memory == null) {
                continue; // another process published, removed or replaced the file meanwhile: look again
            }
            MappedFile file = memory.file;
            try {
                checkParameters(options, memory);
                if (!created && !anyPeerAlive(memory) && options.stalePolicy() == StalePolicy.RECREATE
                        && removeStale(memory)) {
                    continue;
                }
                long claimed = reservedPeer >= 0 ? memory.peers.claimReserved(reservedPeer, peerName)
                        : memory.peers.claimWalkIn(peerName);
                if (claimed < 0) {
                    throw new SegmentException(Reason.PEER_TABLE_FULL, "the peer table of " + path + " is full: all "
                            + memory.peers.capacity() + " entries are in use; raise maxPeers (in every process, "
                            + "once no process uses the segment)");
                }
                int id = (int) claimed;
                int epoch = (int) (claimed >>> 32);
                memory.bind(id, epoch);
                Segment segment = new Segment(options, memory, id, epoch, created);
                file.unlockByte(SegmentDescriptor.MAINTENANCE_LOCK);
                segment.recoverDeadPeers(); // a stale segment, or peers that died while nobody watched
                segment.startMonitor();
                return segment;
            } catch (RuntimeException | Error e) {
                file.close();
                throw e;
            }
        }
    }

    /** Opens the segment file read-write, or returns {@code null} when it does not exist. */
    private static MappedFile openIfExists(Path path) {
        try {
            return MappedFile.open(path, MapMode.READ_WRITE);
        } catch (MappingException e) {
            if (e.reason() == MappingException.Reason.NOT_FOUND) {
                return null;
            }
            throw e;
        }
    }

    /**
     * Takes the shared maintenance lock (waiting while a process removes or recreates the file),
     * checks that the path still names the file, and validates its header. Returns {@code null},
     * with the file closed, when the file was removed or replaced meanwhile.
     */
    private static SegmentMemory lockAndValidate(MappedFile file, Path path) {
        try {
            file.lockByte(SegmentDescriptor.MAINTENANCE_LOCK, false, true);
            if (!file.isLinkedAt(path)) {
                file.close();
                return null;
            }
            return SegmentMemory.validate(file, path);
        } catch (RuntimeException | Error e) {
            file.close();
            throw e;
        }
    }

    /**
     * Returns the bytes a new segment file of these options starts with: its header and tables, and
     * the first extent of each slot class. The segment's {@code size} must be at least this; what it
     * has beyond is room for rings, lanes and growth.
     *
     * @param options the options
     * @return the initial file size
     */
    public static long initialSize(SegmentOptions options) {
        return initialExtents(Layout.of(options), options.slotClasses())[options.slotClasses().size()];
    }

    /** Where the first extent of each slot class starts in a new file, one after another, and (last) where the file ends. */
    private static long[] initialExtents(Layout layout, List<SlotClass> classes) {
        long[] offsets = new long[classes.size() + 1];
        long cursor = layout.extentsOffset();
        for (int c = 0; c < classes.size(); c++) {
            offsets[c] = cursor;
            cursor = SegmentDescriptor.alignExtent(cursor
                    + SlotPoolDescriptor.extentLength(classes.get(c).count(), classes.get(c).size()));
        }
        offsets[classes.size()] = cursor;
        return offsets;
    }

    /**
     * Builds a new segment file under a temporary name and links it to the segment's name. Returns
     * its memory, with the shared maintenance lock held, or {@code null} when another process
     * linked one first.
     */
    private static SegmentMemory createAndPublish(SegmentOptions options) {
        Layout layout = Layout.of(options);
        long[] extents = initialExtents(layout, options.slotClasses());
        long[] extentOffsets = Arrays.copyOf(extents, extents.length - 1);
        long initialSize = extents[extents.length - 1];
        if (initialSize > options.size()) {
            throw new IllegalArgumentException("segment " + options.name() + ": size=" + options.size()
                    + " cannot hold its tables and initial slot classes, which need " + initialSize
                    + " bytes; raise size or shrink slotClasses");
        }
        Path path = options.path();
        Path temporary = options.directory().resolve("." + options.name() + SegmentOptions.FILE_SUFFIX + "."
                + Processes.pid() + "." + TEMPORARY_NAMES.incrementAndGet() + ".tmp");
        MappedFile file = MappedFile.create(temporary, initialSize,
                new CreateOptions(options.permissions(), true));
        try {
            file.lockByte(SegmentDescriptor.MAINTENANCE_LOCK, false, false);
            format(file, options, layout, initialSize, extentOffsets);
            try {
                Files.createLink(path, temporary);
            } catch (FileAlreadyExistsException lost) {
                file.close();
                return null;
            }
            return SegmentMemory.validate(file, path);
        } catch (IOException e) {
            file.close();
            throw new UncheckedIOException("cannot publish segment " + path, e);
        } catch (RuntimeException | Error e) {
            file.close();
            throw e;
        } finally {
            try {
                Files.deleteIfExists(temporary);
            } catch (IOException ignored) {
                // a leftover temporary name is removed by `clean`
            }
        }
    }

    /** Writes every part of a new segment; the magic last, with release. */
    private static void format(MappedFile file, SegmentOptions options, Layout layout, long initialSize,
                               long[] extentOffsets) {
        file.putInt(SegmentDescriptor.VERSION_OFFSET, SegmentDescriptor.LAYOUT_VERSION);
        file.putInt(SegmentDescriptor.HEADER_LENGTH_OFFSET, SegmentDescriptor.HEADER_LENGTH);
        file.putLong(SegmentDescriptor.MAX_SIZE_OFFSET, options.size());
        file.putLong(SegmentDescriptor.CURRENT_SIZE_OFFSET, initialSize);
        file.putInt(SegmentDescriptor.MAX_PEERS_OFFSET, layout.maxPeers());
        file.putInt(SegmentDescriptor.MAX_COUNTERS_OFFSET, layout.maxCounters());
        file.putInt(SegmentDescriptor.MAX_DIRECTORY_ENTRIES_OFFSET, layout.maxDirectoryEntries());
        file.putInt(SegmentDescriptor.MAX_LANES_OFFSET, layout.maxLanes());
        file.putInt(SegmentDescriptor.SLOT_CLASS_COUNT_OFFSET, layout.slotClassCount());
        file.putInt(SegmentDescriptor.LANE_CAPACITY_OFFSET, options.laneCapacity());
        file.putLong(SegmentDescriptor.PEER_TABLE_OFFSET_OFFSET, layout.peerTableOffset());
        file.putLong(SegmentDescriptor.COUNTERS_OFFSET_OFFSET, layout.countersOffset());
        file.putLong(SegmentDescriptor.DIRECTORY_OFFSET_OFFSET, layout.directoryOffset());
        file.putLong(SegmentDescriptor.LANE_TABLE_OFFSET_OFFSET, layout.laneTableOffset());
        file.putLong(SegmentDescriptor.POOL_OFFSET_OFFSET, layout.poolOffset());
        file.putLong(SegmentDescriptor.LEASE_TABLE_OFFSET_OFFSET, layout.leaseTableOffset());
        file.putInt(SegmentDescriptor.MAX_LEASES_OFFSET, layout.maxLeases());
        file.putLong(SegmentDescriptor.EXTENTS_OFFSET_OFFSET, layout.extentsOffset());
        file.putLong(SegmentDescriptor.HEARTBEAT_INTERVAL_OFFSET, options.heartbeatInterval().toNanos());
        file.putLong(SegmentDescriptor.LIVENESS_TIMEOUT_OFFSET, options.livenessTimeout().toNanos());
        file.putLong(SegmentDescriptor.CREATOR_PID_OFFSET, Processes.pid());
        file.putLong(SegmentDescriptor.CREATION_TIME_OFFSET, System.currentTimeMillis());

        Counters counters = new Counters(file.slice(layout.countersOffset(),
                (long) layout.maxCounters() * SegmentDescriptor.COUNTER_RECORD_LENGTH), layout.maxCounters());
        for (int id = 0; id < SegmentCounters.COUNT; id++) {
            counters.define(id, SegmentCounters.TYPE_SEGMENT, 0, SegmentCounters.label(id));
        }
        List<SlotClass> classes = options.slotClasses();
        long[] sizes = new long[classes.size()];
        int[] counts = new int[classes.size()];
        for (int c = 0; c < classes.size(); c++) {
            sizes[c] = classes.get(c).size();
            counts[c] = classes.get(c).count();
        }
        SlotPool.format(file.slice(layout.poolOffset(), (long) classes.size() * SegmentDescriptor.SLOT_CLASS_ENTRY_LENGTH),
                sizes, counts, extentOffsets, file.slice(0, initialSize));
        file.atomicLong(SegmentDescriptor.MAGIC_OFFSET).setRelease(SegmentDescriptor.MAGIC); // last
    }

    private static void checkParameters(SegmentOptions options, SegmentMemory memory) {
        Header header = memory.header;
        Layout layout = header.layout();
        List<String> theirs = new ArrayList<>();
        List<String> ours = new ArrayList<>();
        compare("maxPeers", layout.maxPeers(), options.maxPeers(), theirs, ours);
        compare("size", header.maxSize(), options.size(), theirs, ours);
        compare("maxLanes", layout.maxLanes(), options.maxLanes(), theirs, ours);
        compare("laneCapacity", header.laneCapacity(), options.laneCapacity(), theirs, ours);
        compare("maxDirectoryEntries", layout.maxDirectoryEntries(), options.maxDirectoryEntries(), theirs, ours);
        compare("maxCounters", layout.maxCounters(), options.maxCounters(), theirs, ours);
        compare("maxLeases", layout.maxLeases(), options.maxLeases(), theirs, ours);
        List<Long> sizes = new ArrayList<>();
        if (layout.slotClassCount() != options.slotClasses().size()) {
            theirs.add("slotClasses=" + layout.slotClassCount() + " classes");
            ours.add("slotClasses=" + options.slotClasses().size() + " classes");
        } else {
            for (int c = 0; c < layout.slotClassCount(); c++) {
                long size = memory.fixed.get(java.lang.foreign.ValueLayout.JAVA_LONG,
                        layout.poolOffset() + (long) c * SegmentDescriptor.SLOT_CLASS_ENTRY_LENGTH
                                + SlotPoolDescriptor.SLOT_SIZE_OFFSET);
                sizes.add(size);
            }
            List<Long> wanted = options.slotClasses().stream().map(SlotClass::size).toList();
            if (!sizes.equals(wanted)) {
                theirs.add("slot class sizes=" + sizes);
                ours.add("slot class sizes=" + wanted);
            }
        }
        if (!theirs.isEmpty()) {
            throw new SegmentException(Reason.PARAMETER_MISMATCH, "segment " + options.name() + " (" + memory.path
                    + ") exists with " + String.join(", ", theirs) + "; this process requires "
                    + String.join(", ", ours) + ": use the same segment settings in every process, or remove the "
                    + "file once no process uses it");
        }
    }

    private static void compare(String name, long theirs, long ours, List<String> theirList, List<String> ourList) {
        if (theirs != ours) {
            theirList.add(name + "=" + theirs);
            ourList.add(name + "=" + ours);
        }
    }

    private static boolean anyPeerAlive(SegmentMemory memory) {
        for (int id = 0; id < memory.peers.capacity(); id++) {
            Liveness liveness = memory.peers.liveness(id);
            if (liveness == Liveness.ALIVE || liveness == Liveness.STALLED) {
                return true;
            }
        }
        return false;
    }

    /**
     * Removes a stale segment file, if this process can take the maintenance lock exclusively (no
     * other process is attaching) and the segment is still stale then. Closes the file on success.
     */
    private static boolean removeStale(SegmentMemory memory) {
        MappedFile file = memory.file;
        if (!file.lockByte(SegmentDescriptor.MAINTENANCE_LOCK, true, false)) {
            return false; // another process is attaching: the segment is about to be live
        }
        if (!file.isLinkedAt(memory.path) || anyPeerAlive(memory)) {
            file.lockByte(SegmentDescriptor.MAINTENANCE_LOCK, false, true); // back to shared
            return false;
        }
        try {
            Files.deleteIfExists(memory.path);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove stale segment " + memory.path, e);
        }
        file.close();
        return true;
    }

    /** What {@link #removeIfStale(Path)} did. */
    public enum Removal {
        /** Every peer was dead or absent; the file is gone. */
        REMOVED,
        /** A peer's process lives (alive or stalled); the file stays. */
        IN_USE,
        /** Another process is attaching, or replaced the file meanwhile; the file stays. */
        BUSY
    }

    /**
     * Removes a segment file whose peers are all dead (or absent), without attaching to it: for
     * operators and the {@code clean} command. Holds the maintenance lock exclusively while it
     * decides, so a process attaching at that moment either finishes first (and the file stays) or
     * waits and then creates a new segment.
     *
     * @param path the segment file
     * @return what was done
     * @throws SegmentException for a file that is not a valid segment (it is left alone)
     * @throws MappingException when the file cannot be opened
     */
    public static Removal removeIfStale(Path path) {
        Platform.ensureSupported();
        MappedFile file = MappedFile.open(path, MapMode.READ_WRITE);
        try {
            SegmentMemory memory = SegmentMemory.validate(file, path);
            if (!file.lockByte(SegmentDescriptor.MAINTENANCE_LOCK, true, false) || !file.isLinkedAt(path)) {
                return Removal.BUSY;
            }
            if (anyPeerAlive(memory)) {
                return Removal.IN_USE;
            }
            Files.deleteIfExists(path);
            return Removal.REMOVED;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove stale segment " + path, e);
        } finally {
            file.close(); // drops the lock
        }
    }

    // ---------------------------------------------------------------- identity and parts

    /**
     * Returns the segment's name.
     *
     * @return the name
     */
    public String name() {
        return options.name();
    }

    /**
     * Returns the segment file.
     *
     * @return the path
     */
    public Path path() {
        return memory.path;
    }

    /**
     * Returns the options this process attached with.
     *
     * @return the options
     */
    public SegmentOptions options() {
        return options;
    }

    /**
     * Returns the header as it was validated at attach.
     *
     * @return the header
     */
    public Header header() {
        return memory.header;
    }

    /**
     * Returns the file bytes in use now, published by the last growth.
     *
     * @return the current size
     */
    public long currentSize() {
        return memory.currentSize();
    }

    /**
     * Returns this peer's id.
     *
     * @return the index of this peer's entry in the peer table
     */
    public int peerId() {
        return peerId;
    }

    /**
     * Returns this peer's epoch.
     *
     * @return the epoch of this attachment
     */
    public int epoch() {
        return epoch;
    }

    /**
     * Returns whether this process created the segment file.
     *
     * @return {@code true} for the creator
     */
    public boolean isCreator() {
        return creator;
    }

    /**
     * Returns the slot pool.
     *
     * @return the pool
     */
    public SlotPool slotPool() {
        return memory.pool();
    }

    /**
     * Returns the lane table.
     *
     * @return the lanes
     */
    public LaneTable lanes() {
        return memory.lanes();
    }

    /**
     * Returns the directory.
     *
     * @return the directory
     */
    public Directory directory() {
        return memory.directory();
    }

    /**
     * Returns the memfd lease table.
     *
     * @return the leases
     */
    public LeaseTable leases() {
        return memory.leases();
    }

    /**
     * Returns the counters.
     *
     * @return the counters
     */
    public Counters counters() {
        return memory.counters();
    }

    /**
     * Returns the segment's memory, for structures built in it (rings): writable, from the file's
     * start; extents beyond the first mapping through {@link #extents()}.
     *
     * @return the extent space of this attachment
     */
    public dev.shm.core.pool.ExtentSpace extents() {
        return memory;
    }

    /**
     * Returns whether the creator announced its shutdown.
     *
     * @return {@code true} after the creator's goodbye
     */
    public boolean isHostGoodbye() {
        return memory.hostGoodbye();
    }

    // ---------------------------------------------------------------- peers

    /**
     * Returns a snapshot of every peer table entry.
     *
     * @return one entry per peer id
     */
    public List<PeerInfo> peers() {
        List<PeerInfo> peers = new ArrayList<>(memory.peers.capacity());
        for (int id = 0; id < memory.peers.capacity(); id++) {
            peers.add(memory.peers.info(id));
        }
        return peers;
    }

    /**
     * Returns a snapshot of one peer table entry.
     *
     * @param id the peer id
     * @return the entry
     */
    public PeerInfo peer(int id) {
        return memory.peers.info(id);
    }

    /**
     * Reserves an entry for a process about to be spawned, which attaches with
     * {@link #claim(SegmentOptions, int, String)}. Release it with {@link #releaseReservedPeer}
     * if the spawn fails. If this peer dies, its reservations are recovered.
     *
     * @return the reserved peer id
     * @throws SegmentException {@code PEER_TABLE_FULL} when no entry is free
     */
    public int reservePeer() {
        ensureOpen();
        int id = memory.peers.reserve(peerId);
        if (id < 0) {
            throw new SegmentException(Reason.PEER_TABLE_FULL, "no free entry to reserve in the peer table of "
                    + path() + " (" + memory.peers.capacity() + " entries)");
        }
        return id;
    }

    /**
     * Returns a reservation that will not be claimed.
     *
     * @param id the reserved peer id
     * @return whether it was reserved by this peer and is free again
     */
    public boolean releaseReservedPeer(int id) {
        return memory.peers.releaseReserved(id, peerId);
    }

    /**
     * Runs {@code action} holding the segment's directory lock, which serialises declarations of
     * channels and services and the creation of their consumer groups, among threads and processes.
     *
     * @param <T> the action's result
     * @param action what to do
     * @return the action's result
     */
    public <T> T withDirectoryLock(java.util.function.Supplier<T> action) {
        ensureOpen();
        return memory.withLock(SegmentDescriptor.DIRECTORY_LOCK, action);
    }

    /**
     * Adds a participant to the recoveries this process runs.
     *
     * @param participant releases what a dead peer held in a structure
     */
    public void addRecoveryParticipant(RecoveryParticipant participant) {
        participants.add(participant);
    }

    /**
     * Recovers every dead peer now (the monitor thread also does so every heartbeat interval).
     *
     * @return the peers this call recovered
     */
    public int recoverDeadPeers() {
        int recovered = 0;
        for (int id = 0; id < memory.peers.capacity(); id++) {
            if (id != peerId && recover(id)) {
                recovered++;
            }
        }
        return recovered;
    }

    /** Claims and runs the recovery of one dead peer, in the order of DESIGN §2.5 (package-private for tests). */
    boolean recover(int dead) {
        recoveryLock.lock();
        try {
            PeerTable.Claim claim = memory.peers.claimRecovery(dead, peerId);
            if (claim == null) {
                return false;
            }
            try {
                // 1. marked: the entry is RECOVERING; nobody treats it as live or claims it while it is.
                release(dead, true); // 2 to 8
                // Counted before the entry empties, so whoever sees it EMPTY also sees the count. (A
                // recoverer that dies right here leaves the entry RECOVERING; the next one counts again.)
                if (claim.from() != PeerState.RESERVED) {
                    memory.counters().increment(SegmentCounters.PEERS_RECOVERED);
                }
            } catch (RuntimeException | Error e) {
                // Not left RECOVERING by a live recoverer, which no one would take over: claimable
                // again, for the next round (a participant that cannot load a class now, say).
                memory.peers.abandonRecovery(dead, claim);
                throw e;
            }
            // Its id is free for the next process once its entry is empty: no entry may name it then.
            memory.peers.forgetActor(dead);
            memory.peers.finishRecovery(dead, claim.claimed());
            return true;
        } finally {
            recoveryLock.unlock();
        }
    }

    /**
     * Releases what {@code peer} holds, in the order of DESIGN §2.5 (steps 2 to 8 of a recovery):
     * under the recovery lock, for a dead peer or for this one as it leaves.
     *
     * @param count whether to count what is released (recovery of a dead peer) or not (a clean detach)
     */
    private void release(int peer, boolean count) {
        // 2 + 3. reclaim the references in its lanes, then reset them.
        step(() -> memory.lanes().recover(peer, count));
        // 4. free the slots it owned, and finish its half-done pool operations.
        step(() -> memory.pool().reclaim(peer, count));
        // 5. drop its memfd leases.
        step(() -> memory.leases().drop(peer, count));
        // 6 + 7. rings: unblock what it stalled, release its group memberships.
        for (RecoveryParticipant participant : participants) {
            step(() -> participant.recover(peer));
        }
        // 8. its directory roles (the entry itself is the caller's).
        step(() -> memory.directory().recover(peer));
    }

    /**
     * Runs one step of a release. Damage that the step meets in shared memory (a corrupt table) is
     * counted and the other steps run: it would stop the step the same way on every later try, and
     * hold back everything after it. Any other failure ends the release, to be tried again.
     */
    private void step(Runnable step) {
        try {
            step.run();
        } catch (CorruptionException damaged) {
            memory.counters().increment(SegmentCounters.CORRUPT_FRAMES_REJECTED);
        }
    }

    // ---------------------------------------------------------------- monitor

    private void startMonitor() {
        Thread thread = Thread.ofPlatform().daemon().name("shm-monitor-" + name() + "-" + peerId).unstarted(this::monitor);
        monitor = thread;
        thread.start();
    }

    /**
     * Writes this peer's heartbeat, reports stalls and recovers dead peers, every heartbeat interval.
     * A failure (a {@code RuntimeException}, or a {@code LinkageError}: a class that cannot be loaded
     * for want of a descriptor, say) is recorded in {@link #monitorFailure()} and the monitor carries
     * on: one that ended would write no more heartbeats and recover no one, unseen. A recovery that
     * failed is tried again after a back-off (twice the heartbeat interval, doubling up to the
     * liveness timeout), and the other peers are looked at meanwhile. Any other {@code Error} is
     * recorded, as far as it can be, and ends the monitor.
     */
    private void monitor() {
        long interval = memory.header.heartbeatIntervalNanos();
        int capacity = memory.peers.capacity();
        long[] retryAt = new long[capacity]; // per peer, after a failed recovery: not before (0: none)
        long[] backoff = new long[capacity];
        try {
            while (!closed) {
                try {
                    memory.peers.heartbeat(peerId);
                } catch (RuntimeException | LinkageError e) {
                    failed(e);
                }
                for (int id = 0; id < capacity && !closed; id++) {
                    if (id == peerId) {
                        continue;
                    }
                    try {
                        Liveness liveness = memory.peers.scan(id);
                        if (liveness == Liveness.DEAD) {
                            long now = System.nanoTime();
                            if (backoff[id] != 0 && now - retryAt[id] < 0) {
                                continue;
                            }
                            try {
                                recover(id);
                                backoff[id] = 0;
                            } catch (RuntimeException | LinkageError e) {
                                backoff[id] = Math.min(Math.max(2 * interval, 2 * backoff[id]),
                                        Math.max(2 * interval, memory.header.livenessTimeoutNanos()));
                                retryAt[id] = now + backoff[id];
                                failed(e);
                            }
                        } else if (liveness == Liveness.STALLED) {
                            if (stalled.add(id)) {
                                memory.counters().increment(SegmentCounters.STALLS_DETECTED);
                            }
                        } else {
                            stalled.remove(id);
                        }
                    } catch (RuntimeException | LinkageError e) {
                        failed(e);
                    }
                }
                LockSupport.parkNanos(interval);
            }
        } catch (Error e) {
            try {
                monitorFailure = new ShmException("the monitor of segment '" + name() + "' ended: " + e, e);
            } catch (Error ignored) {
                // no memory even for that: the Error itself goes on
            }
            throw e;
        }
    }

    /** Records a failure of a monitor round, which carries on. */
    private void failed(Throwable e) {
        monitorFailure = e instanceof RuntimeException r ? r
                : new ShmException("the monitor of segment '" + name() + "' failed a round: " + e, e);
    }

    /**
     * Returns the last failure of the monitor thread, if any; the monitor carries on after one. It
     * stays until this process leaves the segment, so that a failure is seen even when a later
     * round succeeded (the health indicator reports DOWN meanwhile).
     *
     * @return the failure, or {@code null}
     */
    public RuntimeException monitorFailure() {
        return monitorFailure;
    }

    // ---------------------------------------------------------------- leaving

    /**
     * Detaches cleanly: stops the monitor; the creator says goodbye; then GOODBYE, release this
     * peer's lanes, slots, leases and ring state (as for a dead peer: subscriptions left open leave
     * their groups), EMPTY, and drop the peer lock. Call it after the threads that use the
     * segment's channels stopped. The last peer out removes the
     * file when {@link SegmentOptions#unlinkOnLastDetach()} says so. Idempotent.
     */
    @Override
    public void close() {
        synchronized (closeLock) {
            if (closed) {
                return;
            }
            closed = true;
        }
        Thread thread = monitor;
        if (thread != null) {
            LockSupport.unpark(thread);
            try {
                thread.join(Duration.ofSeconds(10));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        MappedFile file = memory.file;
        try {
            if (creator) {
                memory.sayHostGoodbye();
            }
            if (memory.peers.goodbye(peerId, epoch)) {
                recoveryLock.lock();
                try {
                    // As for a dead peer; in the rings, a message a subscription left open had in hand
                    // goes to another member, flagged redelivered, and its memberships and holds end.
                    release(peerId, false);
                } finally {
                    recoveryLock.unlock();
                }
                memory.peers.forgetActor(peerId); // reservations it made and nobody claimed: dead from here
                memory.peers.leave(peerId, epoch);
            }
            file.unlockByte(SegmentDescriptor.peerLock(peerId));
            if (options.unlinkOnLastDetach()) {
                unlinkIfLast(file);
            }
        } finally {
            try {
                participants.forEach(RecoveryParticipant::detached);
            } finally {
                file.close();
            }
        }
    }

    private void unlinkIfLast(MappedFile file) {
        // Waits for the lock: a process attaching holds it shared for a moment, and peers leaving
        // at the same time take it in turn, so the last of them sees every entry EMPTY. One that stays
        // held for the lock patience is a process stopped while attaching: it will use the file, which
        // stays (a file whose peers all left is removed by the next process or `clean` otherwise).
        try {
            file.lockByte(SegmentDescriptor.MAINTENANCE_LOCK, true, true);
        } catch (ShmTimeoutException stopped) {
            return;
        }
        try {
            for (int id = 0; id < memory.peers.capacity(); id++) {
                if (PeerDescriptor.state(memory.peers.word(id)) != PeerState.EMPTY) {
                    return;
                }
            }
            if (file.isLinkedAt(memory.path)) {
                Files.deleteIfExists(memory.path);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove segment " + memory.path, e);
        } finally {
            file.unlockByte(SegmentDescriptor.MAINTENANCE_LOCK);
        }
    }

    /**
     * Returns whether this attachment is open.
     *
     * @return {@code false} after {@link #close()}
     */
    public boolean isOpen() {
        return !closed;
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("segment " + name() + " (peer " + peerId + ") is closed");
        }
    }

    @Override
    public String toString() {
        return "Segment[" + name() + ", " + path() + ", peer " + peerId + ", epoch " + epoch
                + (closed ? ", closed" : "") + "]";
    }
}
