package dev.shm.core.segment;

import java.time.Duration;

/**
 * A snapshot of one peer table entry and what is known of its process.
 *
 * @param id the peer id (the entry's index)
 * @param state the entry's state
 * @param epoch bumped on every attach to this entry
 * @param pid the process id ({@code 0} when none)
 * @param startTime the process's start time, in clock ticks after boot (guards against pid reuse)
 * @param name the peer's name, e.g. {@code spring.application.name}
 * @param heartbeatAge how long ago the peer last wrote its heartbeat; {@code null} when it has none
 * @param liveness what is known of its process
 * @param actor the peer that reserved the entry (RESERVED) or recovers it (RECOVERING); -1 otherwise
 */
public record PeerInfo(int id, PeerState state, int epoch, long pid, long startTime, String name,
                       Duration heartbeatAge, Liveness liveness, int actor) {
}
