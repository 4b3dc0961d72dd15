package dev.shm.core.segment;

import dev.shm.core.Platform;
import dev.shm.core.counters.Counters;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.memory.MapMode;
import dev.shm.core.memory.MappedFile;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.segment.SegmentDescriptor.Header;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A read-only look at a live segment from outside, without joining it: its header, peers and
 * their liveness, directory, lanes, slot pool and counters — what the {@code stat} command prints,
 * in the manner of Aeron's AeronStat. It takes no lock and writes nothing; liveness is tested with
 * {@code F_OFD_GETLK}, which works on a read-only descriptor.
 *
 * <p>The header is validated as an attaching process does; the rest is read as untrusted input.
 */
public final class SegmentInspector implements AutoCloseable {

    private final SegmentMemory memory;

    private SegmentInspector(SegmentMemory memory) {
        this.memory = memory;
    }

    /**
     * Opens a segment file read-only.
     *
     * @param path the segment file
     * @return the inspector
     * @throws SegmentException for a file that is not a valid segment
     * @throws dev.shm.core.memory.MappingException for a file that cannot be opened
     */
    public static SegmentInspector open(Path path) {
        Platform.ensureSupported();
        MappedFile file = MappedFile.open(path, MapMode.READ_ONLY);
        try {
            SegmentMemory memory = SegmentMemory.validate(file, path);
            memory.bind(NO_PEER, 0);
            return new SegmentInspector(memory);
        } catch (RuntimeException | Error e) {
            file.close();
            throw e;
        }
    }

    /**
     * Maps the structure of a directory entry (a channel's ring) read-only.
     *
     * @param entry the entry
     * @return its memory, read-only
     * @throws dev.shm.core.ShmException when the entry names memory outside the segment's extents
     */
    public java.lang.foreign.MemorySegment structure(Directory.Entry entry) {
        return memory.map(entry.structureOffset(), entry.structureLength()).asReadOnly();
    }

    /** The peer id an inspector acts as: none. */
    private static final int NO_PEER = 0xFF;

    /**
     * Returns the header.
     *
     * @return the header
     */
    public Header header() {
        return memory.header;
    }

    /**
     * Returns the file bytes in use now.
     *
     * @return the current size
     */
    public long currentSize() {
        return memory.currentSize();
    }

    /**
     * Returns whether the creator announced its shutdown.
     *
     * @return {@code true} after the creator's goodbye
     */
    public boolean isHostGoodbye() {
        return memory.hostGoodbye();
    }

    /**
     * Returns every peer table entry.
     *
     * @return one entry per peer id
     */
    public List<PeerInfo> peers() {
        List<PeerInfo> peers = new ArrayList<>();
        for (int id = 0; id < memory.peers.capacity(); id++) {
            peers.add(memory.peers.info(id));
        }
        return peers;
    }

    /**
     * Returns the directory's entries.
     *
     * @return the declared channels and services
     */
    public List<Directory.Entry> directory() {
        return memory.directory().entries();
    }

    /**
     * Returns the lane table's entries in use or once used.
     *
     * @return the lanes
     */
    public List<LaneTable.LaneInfo> lanes() {
        return memory.lanes().lanes();
    }

    /**
     * Returns what each slot class holds.
     *
     * @return one entry per class
     */
    public List<SlotPool.ClassStats> slotPool() {
        return memory.pool().stats();
    }

    /**
     * Returns the memfd leases.
     *
     * @return the active leases
     */
    public List<LeaseTable.Lease> leases() {
        return memory.leases().leases();
    }

    /**
     * Returns the counters.
     *
     * @return the counters, read-only
     */
    public Counters counters() {
        return memory.counters();
    }

    /**
     * Tells whether every peer is dead or absent: a stale segment.
     *
     * @return {@code true} when no peer's process lives
     */
    public boolean isStale() {
        for (int id = 0; id < memory.peers.capacity(); id++) {
            Liveness liveness = memory.peers.liveness(id);
            if (liveness == Liveness.ALIVE || liveness == Liveness.STALLED) {
                return false;
            }
        }
        return true;
    }

    @Override
    public void close() {
        memory.file.close();
    }
}
