package dev.shm.core.segment;

/**
 * What to do with a segment file whose peers are all dead when a process opens it: every process
 * that used it crashed, or was killed.
 */
public enum StalePolicy {

    /**
     * Recover every dead peer (free its slots, reset its lanes, drop its leases), then use the
     * segment: what the dead processes declared and published survives.
     */
    REUSE,

    /** Remove the file and create a new, empty segment. */
    RECREATE
}
