package dev.shm.core.segment;

import dev.shm.core.counters.SegmentCounters;
import dev.shm.core.segment.SegmentException.Reason;
import java.nio.charset.StandardCharsets;

/**
 * The binary layout of a segment file, version {@value #LAYOUT_VERSION}: where each part lives,
 * computed in one place, and the validation an attaching process runs before it touches anything.
 *
 * <pre>
 * File
 * +-----------------------------+ 0
 * | Header (4096 bytes)         |
 * +-----------------------------+ peerTableOffset = 4096
 * | Peer table                  |  maxPeers x 64   (one cache line per peer, {@link PeerDescriptor})
 * +-----------------------------+ countersOffset
 * | Counters                    |  maxCounters x 128 ({@code CounterDescriptor})
 * +-----------------------------+ directoryOffset
 * | Directory                   |  maxDirectoryEntries x 256 ({@link DirectoryDescriptor})
 * +-----------------------------+ laneTableOffset
 * | Lane table                  |  maxLanes x 64 ({@code LaneDescriptor})
 * +-----------------------------+ leaseTableOffset
 * | Lease table                 |  maxLeases x 64 ({@link LeaseDescriptor})
 * +-----------------------------+ poolOffset
 * | Slot pool class table       |  slotClassCount x 512 ({@code SlotPoolDescriptor})
 * +-----------------------------+ extentsOffset (page-aligned)
 * | Extents, appended as needed |  slot class extents, lane buffers, rings
 * +-----------------------------+ currentSize  (published with release; at most maxSize)
 * </pre>
 *
 * <pre>
 * Header
 *  0                   8        12       16                  24                  32
 *  +-------------------+--------+--------+-------------------+-------------------+
 *  | magic (last!)     |version |hdr len | maxSize           | currentSize (rel) |
 *  +--------+--------+--------+--------+--------+--------+-------------------+
 *  |maxPeers|maxCount|maxDir  |maxLanes|classes |laneCap | peerTableOffset   |  32..64
 *  +-------------------+-------------------+-------------------+-------------------+
 *  | countersOffset    | directoryOffset   | laneTableOffset   | poolOffset        |  64..96
 *  +-------------------+--------+--------+-------------------+-------------------+
 *  | leaseTableOffset  |maxLease|  pad   | extentsOffset     | heartbeat (ns)    |  96..128
 *  +-------------------+-------------------+-------------------+-------------------+
 *  | livenessTimeout   | creatorPid        | creationTime (ms) |  reserved         | 128..160
 *  +-------------------+-------------------+-------------------+-------------------+
 *  ...                                                                            | 192
 *  +--------+-----------------------------------------------------------------+
 *  |goodbye |  (own cache line: the only header word written after creation)    | 192..256
 *  +--------+-----------------------------------------------------------------+
 *  ... reserved, zero, up to 4096
 * </pre>
 *
 * All values are little-endian. The creator writes every field, then the magic last with a
 * release store; an attaching process reads the magic with an acquire load first. (The creator
 * also publishes the file under its name only when it is complete; see {@link Segment}.)
 */
public final class SegmentDescriptor {

    /** "shmSEGv1" in ASCII, read as a little-endian long. */
    public static final long MAGIC = 0x3176_4745_536D_6873L;
    /**
     * The layout version this code writes and reads. Version 2: a lane pair is taken by its releaser
     * ({@code RELEASING}) before it is drained and reset. Version 3: each lane direction carries its
     * writer's and reader's in-flight words, which a releaser waits out before it formats the lane.
     * Version 4: lane directions and service entries carry a doorbell (a futex) that writers ring.
     */
    public static final int LAYOUT_VERSION = 4;
    /** The header's length, one page. */
    public static final int HEADER_LENGTH = 4096;
    /** Extents start at multiples of this. */
    public static final int EXTENT_ALIGNMENT = 4096;
    /** The most peers a segment can have: peer ids fit in one byte, 0xFF meaning none. */
    public static final int MAX_PEERS = 254;
    /** The most slot classes. */
    public static final int MAX_SLOT_CLASSES = 16;

    public static final int MAGIC_OFFSET = 0;
    public static final int VERSION_OFFSET = 8;
    public static final int HEADER_LENGTH_OFFSET = 12;
    public static final int MAX_SIZE_OFFSET = 16;
    public static final int CURRENT_SIZE_OFFSET = 24;
    public static final int MAX_PEERS_OFFSET = 32;
    public static final int MAX_COUNTERS_OFFSET = 36;
    public static final int MAX_DIRECTORY_ENTRIES_OFFSET = 40;
    public static final int MAX_LANES_OFFSET = 44;
    public static final int SLOT_CLASS_COUNT_OFFSET = 48;
    public static final int LANE_CAPACITY_OFFSET = 52;
    public static final int PEER_TABLE_OFFSET_OFFSET = 56;
    public static final int COUNTERS_OFFSET_OFFSET = 64;
    public static final int DIRECTORY_OFFSET_OFFSET = 72;
    public static final int LANE_TABLE_OFFSET_OFFSET = 80;
    public static final int POOL_OFFSET_OFFSET = 88;
    public static final int LEASE_TABLE_OFFSET_OFFSET = 96;
    public static final int MAX_LEASES_OFFSET = 104;
    public static final int EXTENTS_OFFSET_OFFSET = 112;
    public static final int HEARTBEAT_INTERVAL_OFFSET = 120;
    public static final int LIVENESS_TIMEOUT_OFFSET = 128;
    public static final int CREATOR_PID_OFFSET = 136;
    public static final int CREATION_TIME_OFFSET = 144;
    /** Host goodbye: 1 once the creator announced its shutdown. On its own cache line. */
    public static final int HOST_GOODBYE_OFFSET = 192;

    public static final int PEER_ENTRY_LENGTH = PeerDescriptor.LENGTH;
    public static final int COUNTER_RECORD_LENGTH = 128;
    public static final int DIRECTORY_ENTRY_LENGTH = DirectoryDescriptor.LENGTH;
    public static final int LANE_ENTRY_LENGTH = 64;
    public static final int LEASE_ENTRY_LENGTH = LeaseDescriptor.LENGTH;
    public static final int SLOT_CLASS_ENTRY_LENGTH = 512;

    /*
     * Advisory locks (open-file-description locks, see MappedFile.lockByte). They live on bytes far
     * past any data, where they cannot collide with the file's contents or with FileMapping's own
     * growth lock at 1 << 62.
     */
    /** Base of the lock bytes. */
    public static final long LOCK_REGION = 1L << 60;
    /** Shared while attaching, exclusive while removing or recreating the file. */
    public static final long MAINTENANCE_LOCK = LOCK_REGION;
    /** Exclusive while appending an extent. */
    public static final long EXTENT_LOCK = LOCK_REGION + 1;
    /** Exclusive while declaring a directory entry. */
    public static final long DIRECTORY_LOCK = LOCK_REGION + 2;

    private SegmentDescriptor() {
    }

    /**
     * The byte that peer {@code id} locks for as long as it is attached; the kernel releases the
     * lock when the peer's process dies, which is how death is decided.
     *
     * @param id the peer id
     * @return the lock byte
     */
    public static long peerLock(int id) {
        return LOCK_REGION + 64 + id;
    }

    /**
     * The offsets of a segment's parts, computed from its counts.
     *
     * @param maxPeers peer table entries
     * @param maxCounters counter records
     * @param maxDirectoryEntries directory entries
     * @param maxLanes lane table entries
     * @param maxLeases lease table entries
     * @param slotClassCount slot classes
     * @param peerTableOffset where the peer table starts
     * @param countersOffset where the counters start
     * @param directoryOffset where the directory starts
     * @param laneTableOffset where the lane table starts
     * @param leaseTableOffset where the lease table starts
     * @param poolOffset where the slot class table starts
     * @param extentsOffset where the first extent starts: the end of the fixed part
     */
    public record Layout(int maxPeers, int maxCounters, int maxDirectoryEntries, int maxLanes, int maxLeases,
                         int slotClassCount, long peerTableOffset, long countersOffset, long directoryOffset,
                         long laneTableOffset, long leaseTableOffset, long poolOffset, long extentsOffset) {

        /**
         * Computes the layout. Every part starts on a cache line; the extents on a page.
         *
         * @param maxPeers peer table entries
         * @param maxCounters counter records
         * @param maxDirectoryEntries directory entries
         * @param maxLanes lane table entries
         * @param maxLeases lease table entries
         * @param slotClassCount slot classes
         * @return the layout
         */
        public static Layout of(int maxPeers, int maxCounters, int maxDirectoryEntries, int maxLanes, int maxLeases,
                                int slotClassCount) {
            long peers = HEADER_LENGTH;
            long counters = peers + (long) maxPeers * PEER_ENTRY_LENGTH;
            long directory = counters + (long) maxCounters * COUNTER_RECORD_LENGTH;
            long lanes = directory + (long) maxDirectoryEntries * DIRECTORY_ENTRY_LENGTH;
            long leases = lanes + (long) maxLanes * LANE_ENTRY_LENGTH;
            long pool = leases + (long) maxLeases * LEASE_ENTRY_LENGTH;
            long end = pool + (long) slotClassCount * SLOT_CLASS_ENTRY_LENGTH;
            return new Layout(maxPeers, maxCounters, maxDirectoryEntries, maxLanes, maxLeases, slotClassCount,
                    peers, counters, directory, lanes, leases, pool, alignExtent(end));
        }

        static Layout of(SegmentOptions options) {
            return of(options.maxPeers(), options.maxCounters(), options.maxDirectoryEntries(), options.maxLanes(),
                    options.maxLeases(), options.slotClasses().size());
        }
    }

    /**
     * Rounds a file offset up to the next extent boundary.
     *
     * @param offset the offset
     * @return the offset rounded up to {@value #EXTENT_ALIGNMENT}
     */
    public static long alignExtent(long offset) {
        return (offset + EXTENT_ALIGNMENT - 1) & -EXTENT_ALIGNMENT;
    }

    /**
     * The header fields an attaching process reads, in the order it validates them.
     *
     * @param magic the magic word
     * @param version the layout version
     * @param headerLength the header's length
     * @param maxSize the most bytes the file may grow to
     * @param currentSize the bytes in use, published by the last growth
     * @param layout the part offsets as the header states them
     * @param laneCapacity bytes per lane direction
     * @param heartbeatIntervalNanos the heartbeat interval
     * @param livenessTimeoutNanos the liveness timeout
     * @param creatorPid the creating process
     * @param creationTimeMillis when the segment was created, in epoch milliseconds
     */
    public record Header(long magic, int version, int headerLength, long maxSize, long currentSize, Layout layout,
                         int laneCapacity, long heartbeatIntervalNanos, long livenessTimeoutNanos, long creatorPid,
                         long creationTimeMillis) {
    }

    /**
     * Checks that a file is long enough to hold a header, before the header is read.
     *
     * @param subject the file, for messages
     * @param fileLength the file's length
     * @throws SegmentException {@code TRUNCATED} for a shorter file
     */
    public static void checkLength(String subject, long fileLength) {
        if (fileLength < HEADER_LENGTH) {
            throw new SegmentException(Reason.TRUNCATED, subject + " is truncated: " + fileLength
                    + " bytes, shorter than the " + HEADER_LENGTH + "-byte segment header");
        }
    }

    /**
     * Validates a header against the file's length, before anything else of the file is touched.
     * Each problem has its own reason; the message names the field, what was expected and what was
     * found.
     *
     * @param subject the file, for messages
     * @param fileLength the file's length now
     * @param header the header as read
     * @throws SegmentException {@code TRUNCATED}, {@code BAD_MAGIC}, {@code UNSUPPORTED_VERSION},
     *     {@code OFFSET_OUTSIDE_FILE} or {@code CORRUPT}
     */
    public static void check(String subject, long fileLength, Header header) {
        if (header.magic() != MAGIC) {
            throw new SegmentException(Reason.BAD_MAGIC, subject + " is not a segment: expected magic 0x"
                    + Long.toHexString(MAGIC) + " (\"" + ascii(MAGIC) + "\"), found 0x" + Long.toHexString(header.magic())
                    + (header.magic() == 0 ? " (zeros: not a segment, or one whose creator never finished)" : ""));
        }
        if (header.version() != LAYOUT_VERSION) {
            throw new SegmentException(Reason.UNSUPPORTED_VERSION, subject + " has segment layout version "
                    + header.version() + "; this code reads version " + LAYOUT_VERSION);
        }
        if (header.headerLength() != HEADER_LENGTH) {
            throw new SegmentException(Reason.CORRUPT, subject + " states a header length of " + header.headerLength()
                    + " bytes; version " + LAYOUT_VERSION + " headers are " + HEADER_LENGTH);
        }
        Layout layout = header.layout();
        checkCount(subject, "maxPeers", layout.maxPeers(), 1, MAX_PEERS);
        checkCount(subject, "maxCounters", layout.maxCounters(), SegmentCounters.COUNT, 1 << 20);
        checkCount(subject, "maxDirectoryEntries", layout.maxDirectoryEntries(), 1, 1 << 16);
        checkCount(subject, "maxLanes", layout.maxLanes(), 0, 1 << 16);
        checkCount(subject, "maxLeases", layout.maxLeases(), 0, 1 << 16);
        checkCount(subject, "slotClassCount", layout.slotClassCount(), 0, MAX_SLOT_CLASSES);
        if (header.laneCapacity() < 1024 || Integer.bitCount(header.laneCapacity()) != 1
                || header.laneCapacity() > (1 << 30)) {
            throw new SegmentException(Reason.CORRUPT, subject + " states laneCapacity=" + header.laneCapacity()
                    + "; expected a power of two from 1024 to 2^30");
        }
        if (header.heartbeatIntervalNanos() <= 0 || header.livenessTimeoutNanos() <= header.heartbeatIntervalNanos()) {
            throw new SegmentException(Reason.CORRUPT, subject + " states heartbeatInterval="
                    + header.heartbeatIntervalNanos() + " ns and livenessTimeout=" + header.livenessTimeoutNanos()
                    + " ns; expected 0 < heartbeatInterval < livenessTimeout");
        }
        Layout expected = Layout.of(layout.maxPeers(), layout.maxCounters(), layout.maxDirectoryEntries(),
                layout.maxLanes(), layout.maxLeases(), layout.slotClassCount());
        checkPart(subject, fileLength, "peer table", layout.peerTableOffset(), expected.peerTableOffset(),
                expected.countersOffset() - expected.peerTableOffset());
        checkPart(subject, fileLength, "counters", layout.countersOffset(), expected.countersOffset(),
                expected.directoryOffset() - expected.countersOffset());
        checkPart(subject, fileLength, "directory", layout.directoryOffset(), expected.directoryOffset(),
                expected.laneTableOffset() - expected.directoryOffset());
        checkPart(subject, fileLength, "lane table", layout.laneTableOffset(), expected.laneTableOffset(),
                expected.leaseTableOffset() - expected.laneTableOffset());
        checkPart(subject, fileLength, "lease table", layout.leaseTableOffset(), expected.leaseTableOffset(),
                expected.poolOffset() - expected.leaseTableOffset());
        checkPart(subject, fileLength, "slot class table", layout.poolOffset(), expected.poolOffset(),
                (long) layout.slotClassCount() * SLOT_CLASS_ENTRY_LENGTH);
        checkPart(subject, fileLength, "extents", layout.extentsOffset(), expected.extentsOffset(), 0);
        if (header.currentSize() < layout.extentsOffset() || header.currentSize() > header.maxSize()
                || header.currentSize() % EXTENT_ALIGNMENT != 0) {
            throw new SegmentException(Reason.CORRUPT, subject + " states currentSize=" + header.currentSize()
                    + "; expected a multiple of " + EXTENT_ALIGNMENT + " from extentsOffset=" + layout.extentsOffset()
                    + " to maxSize=" + header.maxSize());
        }
        if (header.currentSize() > fileLength) {
            throw new SegmentException(Reason.TRUNCATED, subject + " is truncated: its header publishes "
                    + header.currentSize() + " bytes, but the file has " + fileLength);
        }
    }

    private static void checkCount(String subject, String field, int value, int min, int max) {
        if (value < min || value > max) {
            throw new SegmentException(Reason.CORRUPT, subject + " states " + field + "=" + value + "; expected "
                    + min + " to " + max);
        }
    }

    private static void checkPart(String subject, long fileLength, String part, long offset, long expected,
                                  long length) {
        if (offset < HEADER_LENGTH || offset > fileLength || length > fileLength - offset) {
            throw new SegmentException(Reason.OFFSET_OUTSIDE_FILE, subject + ": the " + part + " at offset " + offset
                    + " (" + length + " bytes) lies outside the file's " + fileLength + " bytes");
        }
        if (offset != expected) {
            throw new SegmentException(Reason.CORRUPT, subject + ": the " + part + " is at offset " + offset
                    + ", but the header's counts put it at " + expected);
        }
    }

    static String ascii(long word) {
        byte[] bytes = new byte[8];
        for (int i = 0; i < 8; i++) {
            byte b = (byte) (word >>> (8 * i));
            bytes[i] = b >= 0x20 && b < 0x7f ? b : (byte) '?';
        }
        return new String(bytes, StandardCharsets.US_ASCII);
    }
}
