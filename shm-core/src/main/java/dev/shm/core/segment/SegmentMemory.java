package dev.shm.core.segment;

import dev.shm.core.CorruptionException;
import dev.shm.core.counters.Counters;
import dev.shm.core.counters.SegmentCounters;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.memory.MapMode;
import dev.shm.core.memory.MappedExtent;
import dev.shm.core.memory.MappedFile;
import dev.shm.core.memory.MappingException;
import dev.shm.core.pool.ExtentSpace;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.segment.SegmentDescriptor.Header;
import dev.shm.core.segment.SegmentDescriptor.Layout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

/**
 * A validated, mapped segment file and its parts, shared by an attached {@link Segment} and the
 * read-only {@link SegmentInspector}. Owns the extent space: appending extents under the extent lock
 * and mapping them as they are met.
 */
final class SegmentMemory implements ExtentSpace {

    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();
    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();

    final MappedFile file;
    final Path path;
    final Header header;
    final MemorySegment fixed;
    final PeerTable peers;
    final Counters counters;
    private final Map<Long, MappedExtent> extents = new ConcurrentHashMap<>();
    private final Map<Long, ReentrantLock> locks = new ConcurrentHashMap<>();
    private volatile int peerId = PeerDescriptor.NO_ACTOR & 0xFF;
    private volatile int peerEpoch;
    private SlotPool pool;
    private LaneTable lanes;
    private Directory directory;
    private LeaseTable leases;

    private SegmentMemory(MappedFile file, Path path, Header header) {
        this.file = file;
        this.path = path;
        this.header = header;
        Layout layout = header.layout();
        this.fixed = file.slice(0, layout.extentsOffset());
        this.peers = new PeerTable(fixed.asSlice(layout.peerTableOffset(),
                (long) layout.maxPeers() * PeerDescriptor.LENGTH), layout.maxPeers(), this);
        this.counters = new Counters(fixed.asSlice(layout.countersOffset(),
                (long) layout.maxCounters() * SegmentDescriptor.COUNTER_RECORD_LENGTH), layout.maxCounters());
    }

    /**
     * Validates the header of a mapped segment file, before touching anything else of it, and wraps
     * the file.
     */
    static SegmentMemory validate(MappedFile file, Path path) {
        String subject = path.toString();
        SegmentDescriptor.checkLength(subject, file.size());
        Header header = readHeader(file);
        // The published size is checked against the file as it is now (others may have grown it
        // since it was mapped); the fixed part must lie in what this process mapped.
        SegmentDescriptor.check(subject, file.fileSize(), header);
        if (header.layout().extentsOffset() > file.size()) {
            throw new SegmentException(SegmentException.Reason.TRUNCATED, subject + " was " + file.size()
                    + " bytes when mapped, shorter than its fixed part of " + header.layout().extentsOffset());
        }
        return new SegmentMemory(file, path, header);
    }

    static Header readHeader(MappedFile file) {
        long magic = file.atomicLong(SegmentDescriptor.MAGIC_OFFSET).getAcquire(); // read first, with acquire
        Layout layout = new Layout(
                file.getInt(SegmentDescriptor.MAX_PEERS_OFFSET),
                file.getInt(SegmentDescriptor.MAX_COUNTERS_OFFSET),
                file.getInt(SegmentDescriptor.MAX_DIRECTORY_ENTRIES_OFFSET),
                file.getInt(SegmentDescriptor.MAX_LANES_OFFSET),
                file.getInt(SegmentDescriptor.MAX_LEASES_OFFSET),
                file.getInt(SegmentDescriptor.SLOT_CLASS_COUNT_OFFSET),
                file.getLong(SegmentDescriptor.PEER_TABLE_OFFSET_OFFSET),
                file.getLong(SegmentDescriptor.COUNTERS_OFFSET_OFFSET),
                file.getLong(SegmentDescriptor.DIRECTORY_OFFSET_OFFSET),
                file.getLong(SegmentDescriptor.LANE_TABLE_OFFSET_OFFSET),
                file.getLong(SegmentDescriptor.LEASE_TABLE_OFFSET_OFFSET),
                file.getLong(SegmentDescriptor.POOL_OFFSET_OFFSET),
                file.getLong(SegmentDescriptor.EXTENTS_OFFSET_OFFSET));
        return new Header(magic, file.getInt(SegmentDescriptor.VERSION_OFFSET),
                file.getInt(SegmentDescriptor.HEADER_LENGTH_OFFSET), file.getLong(SegmentDescriptor.MAX_SIZE_OFFSET),
                file.atomicLong(SegmentDescriptor.CURRENT_SIZE_OFFSET).getAcquire(), layout,
                file.getInt(SegmentDescriptor.LANE_CAPACITY_OFFSET),
                file.getLong(SegmentDescriptor.HEARTBEAT_INTERVAL_OFFSET),
                file.getLong(SegmentDescriptor.LIVENESS_TIMEOUT_OFFSET),
                file.getLong(SegmentDescriptor.CREATOR_PID_OFFSET),
                file.getLong(SegmentDescriptor.CREATION_TIME_OFFSET));
    }

    /** Builds the parts that act for a peer; call once the peer id is known (or never, for inspection). */
    void bind(int peer, int epoch) {
        this.peerId = peer;
        this.peerEpoch = epoch;
        Layout layout = header.layout();
        this.pool = new SlotPool(fixed.asSlice(layout.poolOffset(),
                (long) layout.slotClassCount() * SegmentDescriptor.SLOT_CLASS_ENTRY_LENGTH), layout.slotClassCount(),
                this, counters);
        this.lanes = new LaneTable(fixed.asSlice(layout.laneTableOffset(),
                (long) layout.maxLanes() * SegmentDescriptor.LANE_ENTRY_LENGTH), layout.maxLanes(),
                header.laneCapacity(), this, counters, pool);
        this.directory = new Directory(fixed.asSlice(layout.directoryOffset(),
                (long) layout.maxDirectoryEntries() * DirectoryDescriptor.LENGTH), layout.maxDirectoryEntries(), this);
        this.leases = new LeaseTable(fixed.asSlice(layout.leaseTableOffset(),
                (long) layout.maxLeases() * LeaseDescriptor.LENGTH), layout.maxLeases(), this);
    }

    SlotPool pool() {
        return pool;
    }

    LaneTable lanes() {
        return lanes;
    }

    Directory directory() {
        return directory;
    }

    LeaseTable leases() {
        return leases;
    }

    Counters counters() {
        return counters;
    }

    String subject() {
        return path.toString();
    }

    @Override
    public int peerId() {
        return peerId;
    }

    int peerEpoch() {
        return peerEpoch;
    }

    boolean isPeerAlive(int peer) {
        Liveness liveness = peers.liveness(peer);
        return liveness == Liveness.ALIVE || liveness == Liveness.STALLED;
    }

    long currentSize() {
        return (long) LONG.getAcquire(fixed, (long) SegmentDescriptor.CURRENT_SIZE_OFFSET);
    }

    boolean hostGoodbye() {
        return (int) INT.getAcquire(fixed, (long) SegmentDescriptor.HOST_GOODBYE_OFFSET) != 0;
    }

    void sayHostGoodbye() {
        INT.setRelease(fixed, (long) SegmentDescriptor.HOST_GOODBYE_OFFSET, 1);
    }

    // ---------------------------------------------------------------- locks

    /**
     * Runs {@code action} holding a segment lock: a Java lock for the threads of this process, and
     * an open-file-description lock on {@code lockByte} for other processes (released by the kernel
     * if this process dies while holding it).
     */
    <T> T withLock(long lockByte, Supplier<T> action) {
        ReentrantLock lock = locks.computeIfAbsent(lockByte, b -> new ReentrantLock());
        lock.lock();
        try {
            boolean outermost = lock.getHoldCount() == 1;
            if (outermost) {
                file.lockByte(lockByte, true, true);
            }
            try {
                return action.get();
            } finally {
                if (outermost) {
                    file.unlockByte(lockByte);
                }
            }
        } finally {
            lock.unlock();
        }
    }

    // ---------------------------------------------------------------- extent space

    @Override
    public <T> T withExtentLock(Supplier<T> action) {
        return withLock(SegmentDescriptor.EXTENT_LOCK, action);
    }

    /**
     * The published size, checked as attach checks it: a damaged one is a {@link CorruptionException},
     * not an append at a negative or unaligned offset.
     */
    private long publishedSize() {
        long size = currentSize();
        long start = header.layout().extentsOffset();
        if (size < start || size > header.maxSize() || size % SegmentDescriptor.EXTENT_ALIGNMENT != 0) {
            throw new CorruptionException(subject() + ": the published size " + size + " is not a multiple of "
                    + SegmentDescriptor.EXTENT_ALIGNMENT + " between the extents' start " + start
                    + " and the maximum size " + header.maxSize());
        }
        return size;
    }

    @Override
    public long append(long length) {
        long offset = publishedSize();
        if (length <= 0 || length > header.maxSize() - offset) {
            return -1;
        }
        long end = SegmentDescriptor.alignExtent(offset + length);
        if (end > header.maxSize()) {
            return -1;
        }
        try {
            file.ensureFileSize(end, true);
        } catch (MappingException noRoom) {
            if (noRoom.reason() == MappingException.Reason.NO_SPACE) {
                return -1;
            }
            throw noRoom;
        }
        LONG.setRelease(fixed, (long) SegmentDescriptor.CURRENT_SIZE_OFFSET, end);
        counters.increment(SegmentCounters.EXTENTS_ADDED);
        return offset;
    }

    @Override
    public MemorySegment map(long offset, long length) {
        long extentsStart = header.layout().extentsOffset();
        long published = publishedSize();
        if (offset < extentsStart || length < 0 || offset > published - length) {
            throw new CorruptionException(subject() + ": the range at offset " + offset + " (" + length
                    + " bytes) lies outside the published extents " + extentsStart + ".." + published);
        }
        if (offset % SegmentDescriptor.EXTENT_ALIGNMENT != 0) {
            throw new CorruptionException(subject() + ": an extent at offset " + offset + " is not aligned to "
                    + SegmentDescriptor.EXTENT_ALIGNMENT + " bytes, as every extent is");
        }
        if (offset + length <= file.size()) {
            MemorySegment mapped = file.slice(offset, length);
            return file.mode() == MapMode.READ_ONLY ? mapped.asReadOnly() : mapped;
        }
        MappedExtent extent = extents.computeIfAbsent(offset, o -> file.mapExtent(o, length));
        if (extent.size() < length) {
            throw new CorruptionException(subject() + ": the extent at offset " + offset + " was mapped with "
                    + extent.size() + " bytes, now asked for " + length);
        }
        return extent.slice(0, length);
    }
}
