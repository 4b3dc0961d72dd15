package dev.shm.core.counters;

/**
 * The counters every segment has, at fixed ids, defined by its creator. They count events of the
 * whole segment, from every process.
 */
public final class SegmentCounters {

    /** Dead peers recovered. */
    public static final int PEERS_RECOVERED = 0;
    /** Pool slots freed by crash recovery. */
    public static final int SLOTS_RECLAIMED = 1;
    /** Times a live peer's heartbeat was seen older than the liveness timeout (once per stall). */
    public static final int STALLS_DETECTED = 2;
    /** Frees refused because the slot reference's generation or state did not match (double free). */
    public static final int STALE_FREES_REJECTED = 3;
    /** Frames or references refused as corrupt: bad header, reference out of range, stale generation. */
    public static final int CORRUPT_FRAMES_REJECTED = 4;
    /** Lanes reset by recovery. */
    public static final int LANES_RESET = 5;
    /** memfd leases dropped by recovery. */
    public static final int LEASES_DROPPED = 6;
    /** Extents appended to the file. */
    public static final int EXTENTS_ADDED = 7;
    /** Allocations that found every fitting slot class exhausted. */
    public static final int ALLOCATIONS_EXHAUSTED = 8;
    /** The number of fixed counters. */
    public static final int COUNT = 9;

    /** The type id of the fixed counters. */
    public static final int TYPE_SEGMENT = 1;

    private static final String[] LABELS = {
        "peers recovered", "slots reclaimed", "stalls detected", "stale frees rejected", "corrupt frames rejected",
        "lanes reset", "leases dropped", "extents added", "allocations exhausted",
    };

    private SegmentCounters() {
    }

    /**
     * Returns the label of a fixed counter.
     *
     * @param id the counter id, below {@link #COUNT}
     * @return its label
     */
    public static String label(int id) {
        return LABELS[id];
    }
}
