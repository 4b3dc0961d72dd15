package dev.shm.spring.support;

import dev.shm.core.counters.SegmentCounters;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.ring.Channel;
import dev.shm.core.segment.Directory;
import dev.shm.core.segment.DirectoryDescriptor;
import dev.shm.core.segment.PeerInfo;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentDescriptor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What one segment holds at a moment, read from shared memory for the meters, the {@code shm}
 * endpoint and the health contributor: so it covers every process attached to the segment, not only
 * this one. Reading takes no lock and allocates; it is meant for a scrape or a request, not for a
 * message path. A segment that is closed (or closes while it is read) gives a state with
 * {@link #open()} {@code false} and empty lists.
 *
 * @param name the segment's name
 * @param file the segment file
 * @param open whether this process's attachment is open
 * @param hostGoodbye whether the creator announced its shutdown
 * @param monitorFailure the last failure of this process's monitor thread, or {@code null}
 * @param self this process's peer id
 * @param header the header as validated at attach ({@code null} when closed)
 * @param currentSize the file bytes in use now
 * @param peers the peer table entries that are not {@code EMPTY}
 * @param maxPeers the size of the peer table
 * @param channels every channel of the directory, declared by any process, in directory order
 * @param services every service of the directory: name and providing peer (-1 for none)
 * @param unreadable channels whose ring could not be read, with the reason
 * @param slotClasses the slot pool per class
 * @param lanes the lane table entries in use or ever used
 * @param counters the segment-wide counters, by label ({@code "peers recovered"} etc.)
 */
public record ShmSegmentState(String name, Path file, boolean open, boolean hostGoodbye, RuntimeException monitorFailure,
                              int self, SegmentDescriptor.Header header, long currentSize, List<PeerInfo> peers,
                              int maxPeers, List<Channel.Stats> channels, Map<String, Integer> services,
                              Map<String, String> unreadable, List<SlotPool.ClassStats> slotClasses,
                              List<LaneTable.LaneInfo> lanes, Map<String, Long> counters) {

    /** The peer states that {@link #peerState} reports, in a fixed order. */
    public static final List<String> PEER_STATES =
            List.of("alive", "stalled", "dead", "reserved", "goodbye", "recovering", "empty");

    /**
     * Reads a segment.
     *
     * @param segment the segment
     * @return its state now
     */
    public static ShmSegmentState read(Segment segment) {
        if (!segment.isOpen()) {
            return closed(segment);
        }
        try {
            List<PeerInfo> all = segment.peers();
            List<PeerInfo> peers = all.stream().filter(p -> !"empty".equals(peerState(p))).toList();
            List<Channel.Stats> channels = new ArrayList<>();
            Map<String, Integer> services = new LinkedHashMap<>();
            Map<String, String> unreadable = new LinkedHashMap<>();
            for (Directory.Entry entry : segment.directory().entries()) {
                if (entry.type() == DirectoryDescriptor.SERVICE) {
                    services.put(entry.name(), entry.provider());
                } else if (entry.type() == DirectoryDescriptor.CHANNEL) {
                    try {
                        channels.add(Channel.inspect(segment, entry));
                    } catch (RuntimeException e) {
                        if (!segment.isOpen()) {
                            throw e;
                        }
                        unreadable.put(entry.name(), String.valueOf(e.getMessage()));
                    }
                }
            }
            Map<String, Long> counters = new LinkedHashMap<>();
            for (int id = 0; id < SegmentCounters.COUNT; id++) {
                counters.put(SegmentCounters.label(id), segment.counters().get(id));
            }
            return new ShmSegmentState(segment.name(), segment.path(), true, segment.isHostGoodbye(),
                    segment.monitorFailure(), segment.peerId(), segment.header(), segment.currentSize(), peers,
                    all.size(), List.copyOf(channels), Collections.unmodifiableMap(services),
                    Collections.unmodifiableMap(unreadable),
                    List.copyOf(segment.slotPool().stats()), List.copyOf(segment.lanes().lanes()),
                    Collections.unmodifiableMap(counters));
        } catch (IllegalStateException e) {
            // The segment closed under the read (its memory is gone: a closed arena throws, never crashes).
            if (!segment.isOpen()) {
                return closed(segment);
            }
            throw e;
        }
    }

    private static ShmSegmentState closed(Segment segment) {
        return new ShmSegmentState(segment.name(), segment.path(), false, false, segment.monitorFailure(),
                segment.peerId(), null, 0, List.of(), 0, List.of(), Map.of(), Map.of(), List.of(), List.of(), Map.of());
    }

    /**
     * Returns what a peer table entry is now, as the meters ({@code state} tag), the endpoint and
     * health name it: an attached peer is {@code alive}, {@code stalled} (its process lives, its
     * heartbeat is older than the liveness timeout) or {@code dead} (its process is gone, not yet
     * recovered); other entries are {@code reserved}, {@code goodbye}, {@code recovering} or
     * {@code empty}.
     *
     * @param peer the entry
     * @return one of {@link #PEER_STATES}
     */
    public static String peerState(PeerInfo peer) {
        if (peer.state() == null) {
            return "empty";
        }
        return switch (peer.state()) {
            case EMPTY -> "empty";
            case RESERVED -> "reserved";
            case GOODBYE -> "goodbye";
            case RECOVERING -> "recovering";
            case ATTACHED -> peer.liveness() == null ? "alive" : switch (peer.liveness()) {
                case STALLED -> "stalled";
                case DEAD -> "dead";
                case ALIVE, NONE -> "alive";
            };
        };
    }

    /**
     * Counts the peers per state.
     *
     * @return every state of {@link #PEER_STATES}, in that order, with its count
     */
    public Map<String, Integer> peersByState() {
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (String state : PEER_STATES) {
            counts.put(state, 0);
        }
        for (PeerInfo peer : peers) {
            counts.merge(peerState(peer), 1, Integer::sum);
        }
        if (open) {
            counts.put("empty", maxPeers - peers.size());
        }
        return counts;
    }

    /**
     * Returns a channel's state.
     *
     * @param channel the channel's name
     * @return its state, or {@code null} when the segment has no such channel (or it is unreadable)
     */
    public Channel.Stats channel(String channel) {
        for (Channel.Stats stats : channels) {
            if (stats.name().equals(channel)) {
                return stats;
            }
        }
        return null;
    }

    /**
     * Returns a consumer group's state.
     *
     * @param channel the channel's name
     * @param group the group's name
     * @return its state, or {@code null} when there is no such group now
     */
    public Channel.GroupStats group(String channel, String group) {
        Channel.Stats stats = channel(channel);
        if (stats == null) {
            return null;
        }
        for (Channel.GroupStats g : stats.groups()) {
            if (g.name().equals(group)) {
                return g;
            }
        }
        return null;
    }

    /**
     * Returns a peer table entry that is not {@code EMPTY}.
     *
     * @param id the peer id
     * @return the entry, or {@code null} when it is empty now
     */
    public PeerInfo peer(int id) {
        for (PeerInfo peer : peers) {
            if (peer.id() == id) {
                return peer;
            }
        }
        return null;
    }

    /**
     * Returns a slot class.
     *
     * @param classIndex the class
     * @return its state, or {@code null} when there is no such class (or the segment is closed)
     */
    public SlotPool.ClassStats slotClass(int classIndex) {
        for (SlotPool.ClassStats stats : slotClasses) {
            if (stats.classIndex() == classIndex) {
                return stats;
            }
        }
        return null;
    }
}
