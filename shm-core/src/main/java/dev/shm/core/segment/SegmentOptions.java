package dev.shm.core.segment;

import dev.shm.core.counters.SegmentCounters;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * How to create or attach a segment. The defaults are those of the Spring properties under
 * {@code shm.segments.<name>}; a test keeps the two in step.
 *
 * {@snippet :
 * SegmentOptions options = SegmentOptions.named("orders")
 *         .withMaxPeers(8)
 *         .withSlotClasses(List.of(new SlotClass(4096, 256)));
 * try (Segment segment = Segment.open(options, "billing")) { ... }
 * }
 *
 * @param name the segment's name; its file is {@code <directory>/<name>.shm}
 * @param directory where the file lives
 * @param size the most bytes the file may grow to
 * @param maxPeers the entries of the peer table, 1 to {@value SegmentDescriptor#MAX_PEERS}
 * @param heartbeatInterval how often each peer writes its heartbeat
 * @param livenessTimeout how old a heartbeat may get before its peer counts as stalled
 * @param permissions the file's mode
 * @param slotClasses the slot pool's size classes, in ascending size
 * @param maxLanes the entries of the lane table (request-reply pairs)
 * @param laneCapacity the bytes of one lane direction, a power of two
 * @param maxDirectoryEntries the entries of the directory of channels and services
 * @param maxCounters the counters the segment can hold
 * @param maxLeases the memfd leases the segment can track
 * @param stalePolicy what to do with a file whose peers are all dead
 * @param unlinkOnLastDetach whether the last peer to detach cleanly removes the file
 */
public record SegmentOptions(
        String name,
        Path directory,
        long size,
        int maxPeers,
        Duration heartbeatInterval,
        Duration livenessTimeout,
        Set<PosixFilePermission> permissions,
        List<SlotClass> slotClasses,
        int maxLanes,
        int laneCapacity,
        int maxDirectoryEntries,
        int maxCounters,
        int maxLeases,
        StalePolicy stalePolicy,
        boolean unlinkOnLastDetach) {

    /** Default directory: {@code /dev/shm}, a tmpfs on every Linux. */
    public static final Path DEFAULT_DIRECTORY = Path.of("/dev/shm");
    /** Default size: 64 MiB. */
    public static final long DEFAULT_SIZE = 64L << 20;
    /** Default peer table size. */
    public static final int DEFAULT_MAX_PEERS = 32;
    /** Default heartbeat interval. */
    public static final Duration DEFAULT_HEARTBEAT_INTERVAL = Duration.ofMillis(100);
    /** Default liveness timeout. */
    public static final Duration DEFAULT_LIVENESS_TIMEOUT = Duration.ofSeconds(2);
    /** Default file mode: owner-only. */
    public static final String DEFAULT_PERMISSIONS = "rw-------";
    /** Default slot classes: 1024 slots of 4 KiB and 64 of 256 KiB. */
    public static final List<SlotClass> DEFAULT_SLOT_CLASSES =
            List.of(new SlotClass(4096, 1024), new SlotClass(256 * 1024, 64));
    /** Default lane table size. */
    public static final int DEFAULT_MAX_LANES = 64;
    /** Default bytes per lane direction. */
    public static final int DEFAULT_LANE_CAPACITY = 64 * 1024;
    /** Default directory size. */
    public static final int DEFAULT_MAX_DIRECTORY_ENTRIES = 256;
    /** Default counter capacity. */
    public static final int DEFAULT_MAX_COUNTERS = 1024;
    /** Default lease table size. */
    public static final int DEFAULT_MAX_LEASES = 64;

    /** The file name suffix. */
    public static final String FILE_SUFFIX = ".shm";

    /**
     * Validates the options.
     */
    public SegmentOptions {
        if (name.isEmpty() || name.contains("/") || name.contains("\0") || name.equals(".") || name.equals("..")) {
            throw new IllegalArgumentException("segment name=" + name + " must be a non-empty file name without '/'");
        }
        if (maxPeers < 1 || maxPeers > SegmentDescriptor.MAX_PEERS) {
            throw new IllegalArgumentException("maxPeers=" + maxPeers + " must be between 1 and "
                    + SegmentDescriptor.MAX_PEERS);
        }
        requirePositive("heartbeatInterval", heartbeatInterval);
        requirePositive("livenessTimeout", livenessTimeout);
        if (livenessTimeout.compareTo(heartbeatInterval) <= 0) {
            throw new IllegalArgumentException("livenessTimeout=" + livenessTimeout + " must be longer than "
                    + "heartbeatInterval=" + heartbeatInterval);
        }
        permissions = Set.copyOf(permissions.isEmpty() ? EnumSet.noneOf(PosixFilePermission.class) : permissions);
        slotClasses = List.copyOf(slotClasses);
        if (slotClasses.size() > SegmentDescriptor.MAX_SLOT_CLASSES) {
            throw new IllegalArgumentException("slotClasses has " + slotClasses.size() + " classes; at most "
                    + SegmentDescriptor.MAX_SLOT_CLASSES);
        }
        for (int i = 1; i < slotClasses.size(); i++) {
            if (slotClasses.get(i).size() <= slotClasses.get(i - 1).size()) {
                throw new IllegalArgumentException("slotClasses must ascend strictly in size; class " + i + " has size="
                        + slotClasses.get(i).size() + " after size=" + slotClasses.get(i - 1).size());
            }
        }
        requireRange("maxLanes", maxLanes, 0, 1 << 16);
        if (laneCapacity < 1024 || Integer.bitCount(laneCapacity) != 1) {
            throw new IllegalArgumentException("laneCapacity=" + laneCapacity + " must be a power of two of at least 1024");
        }
        requireRange("maxDirectoryEntries", maxDirectoryEntries, 1, 1 << 16);
        requireRange("maxCounters", maxCounters, SegmentCounters.COUNT, 1 << 20);
        requireRange("maxLeases", maxLeases, 0, 1 << 16);
        if (size <= 0) {
            throw new IllegalArgumentException("size=" + size + " must be positive");
        }
    }

    /**
     * Returns the default options for a segment.
     *
     * @param name the segment's name
     * @return the options
     */
    public static SegmentOptions named(String name) {
        return new SegmentOptions(name, DEFAULT_DIRECTORY, DEFAULT_SIZE, DEFAULT_MAX_PEERS, DEFAULT_HEARTBEAT_INTERVAL,
                DEFAULT_LIVENESS_TIMEOUT, PosixFilePermissions.fromString(DEFAULT_PERMISSIONS), DEFAULT_SLOT_CLASSES,
                DEFAULT_MAX_LANES, DEFAULT_LANE_CAPACITY, DEFAULT_MAX_DIRECTORY_ENTRIES, DEFAULT_MAX_COUNTERS,
                DEFAULT_MAX_LEASES, StalePolicy.REUSE, true);
    }

    /**
     * Returns the segment file's path.
     *
     * @return {@code <directory>/<name>.shm}
     */
    public Path path() {
        return directory.resolve(name + FILE_SUFFIX);
    }

    /** @param value the directory @return these options with another directory */
    public SegmentOptions withDirectory(Path value) {
        return new SegmentOptions(name, value, size, maxPeers, heartbeatInterval, livenessTimeout, permissions,
                slotClasses, maxLanes, laneCapacity, maxDirectoryEntries, maxCounters, maxLeases, stalePolicy,
                unlinkOnLastDetach);
    }

    /** @param value the most bytes @return these options with another size */
    public SegmentOptions withSize(long value) {
        return new SegmentOptions(name, directory, value, maxPeers, heartbeatInterval, livenessTimeout, permissions,
                slotClasses, maxLanes, laneCapacity, maxDirectoryEntries, maxCounters, maxLeases, stalePolicy,
                unlinkOnLastDetach);
    }

    /** @param value the peer table size @return these options with another peer table size */
    public SegmentOptions withMaxPeers(int value) {
        return new SegmentOptions(name, directory, size, value, heartbeatInterval, livenessTimeout, permissions,
                slotClasses, maxLanes, laneCapacity, maxDirectoryEntries, maxCounters, maxLeases, stalePolicy,
                unlinkOnLastDetach);
    }

    /**
     * Returns these options with other liveness timing.
     *
     * @param heartbeat how often each peer writes its heartbeat
     * @param timeout how old a heartbeat may get before its peer counts as stalled
     * @return the new options
     */
    public SegmentOptions withLiveness(Duration heartbeat, Duration timeout) {
        return new SegmentOptions(name, directory, size, maxPeers, heartbeat, timeout, permissions, slotClasses,
                maxLanes, laneCapacity, maxDirectoryEntries, maxCounters, maxLeases, stalePolicy, unlinkOnLastDetach);
    }

    /** @param value e.g. {@code "rw-rw----"} @return these options with another file mode */
    public SegmentOptions withPermissions(String value) {
        return new SegmentOptions(name, directory, size, maxPeers, heartbeatInterval, livenessTimeout,
                PosixFilePermissions.fromString(value), slotClasses, maxLanes, laneCapacity, maxDirectoryEntries,
                maxCounters, maxLeases, stalePolicy, unlinkOnLastDetach);
    }

    /** @param value the size classes @return these options with other slot classes */
    public SegmentOptions withSlotClasses(List<SlotClass> value) {
        return new SegmentOptions(name, directory, size, maxPeers, heartbeatInterval, livenessTimeout, permissions,
                value, maxLanes, laneCapacity, maxDirectoryEntries, maxCounters, maxLeases, stalePolicy,
                unlinkOnLastDetach);
    }

    /**
     * Returns these options with another lane table.
     *
     * @param lanes the entries of the lane table
     * @param capacity the bytes of one lane direction, a power of two
     * @return the new options
     */
    public SegmentOptions withLanes(int lanes, int capacity) {
        return new SegmentOptions(name, directory, size, maxPeers, heartbeatInterval, livenessTimeout, permissions,
                slotClasses, lanes, capacity, maxDirectoryEntries, maxCounters, maxLeases, stalePolicy,
                unlinkOnLastDetach);
    }

    /** @param value the policy @return these options with another stale policy */
    public SegmentOptions withStalePolicy(StalePolicy value) {
        return new SegmentOptions(name, directory, size, maxPeers, heartbeatInterval, livenessTimeout, permissions,
                slotClasses, maxLanes, laneCapacity, maxDirectoryEntries, maxCounters, maxLeases, value,
                unlinkOnLastDetach);
    }

    /** @param value whether to unlink @return these options with another last-detach behaviour */
    public SegmentOptions withUnlinkOnLastDetach(boolean value) {
        return new SegmentOptions(name, directory, size, maxPeers, heartbeatInterval, livenessTimeout, permissions,
                slotClasses, maxLanes, laneCapacity, maxDirectoryEntries, maxCounters, maxLeases, stalePolicy, value);
    }

    private static void requirePositive(String name, Duration value) {
        if (value.isNegative() || value.isZero()) {
            throw new IllegalArgumentException(name + "=" + value + " must be positive");
        }
    }

    private static void requireRange(String name, int value, int min, int max) {
        if (value < min || value > max) {
            throw new IllegalArgumentException(name + "=" + value + " must be between " + min + " and " + max);
        }
    }
}
