package dev.shm.spring.endpoint;

import dev.shm.core.lane.LaneTable;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.ring.Channel;
import dev.shm.core.segment.PeerInfo;
import dev.shm.core.segment.Segment;
import dev.shm.spring.support.ShmSegmentState;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.springframework.boot.actuate.endpoint.annotation.Endpoint;
import org.springframework.boot.actuate.endpoint.annotation.ReadOperation;
import org.springframework.boot.actuate.endpoint.annotation.Selector;

/**
 * The {@code shm} actuator endpoint: {@code GET /actuator/shm} summarises every segment of the
 * application, {@code GET /actuator/shm/{segment}} shows one in full (an unknown segment answers
 * 404). Everything is read from shared memory at the request, so it covers every process attached
 * to the segment. The answers are records with fixed field names; durations are in milliseconds,
 * sizes in bytes, times in ISO-8601.
 */
@Endpoint(id = "shm")
public class ShmEndpoint {

    private final List<Segment> segments;

    /**
     * Creates the endpoint.
     *
     * @param segments the application's segments
     */
    public ShmEndpoint(List<Segment> segments) {
        this.segments = List.copyOf(segments);
    }

    /**
     * Summarises every segment.
     *
     * @return the segments by name
     */
    @ReadOperation
    public SegmentsDescriptor segments() {
        Map<String, SegmentSummary> summaries = new TreeMap<>();
        for (Segment segment : segments) {
            ShmSegmentState s = ShmSegmentState.read(segment);
            summaries.put(s.name(), new SegmentSummary(s.name(), s.file().toString(), s.open(), s.hostGoodbye(),
                    s.currentSize(), s.header() == null ? 0 : s.header().maxSize(), s.peersByState(),
                    s.channels().stream().map(c -> new ChannelSummary(c.name(), c.capacity(), c.occupancy())).toList()));
        }
        return new SegmentsDescriptor(summaries);
    }

    /**
     * Shows one segment in full.
     *
     * @param segment the segment's name
     * @return the segment, or {@code null} (404) when the application has no segment of that name
     */
    @ReadOperation
    public SegmentDescriptor segment(@Selector String segment) {
        for (Segment candidate : segments) {
            if (candidate.name().equals(segment)) {
                return describe(ShmSegmentState.read(candidate));
            }
        }
        return null;
    }

    private static SegmentDescriptor describe(ShmSegmentState s) {
        dev.shm.core.segment.SegmentDescriptor.Header h = s.header();
        HeaderDescriptor header = h == null ? null : new HeaderDescriptor(h.version(),
                Instant.ofEpochMilli(h.creationTimeMillis()).toString(), h.creatorPid(), s.currentSize(), h.maxSize(),
                h.layout().maxPeers(), h.heartbeatIntervalNanos() / 1_000_000, h.livenessTimeoutNanos() / 1_000_000);
        List<PeerDescriptor> peers = s.peers().stream().map(p -> peer(p, s.self())).toList();
        List<ChannelDescriptor> channels = s.channels().stream().map(ShmEndpoint::channel).toList();
        List<ServiceDescriptor> services = s.services().entrySet().stream()
                .map(e -> new ServiceDescriptor(e.getKey(), e.getValue())).toList();
        List<LaneDescriptor> lanes = s.lanes().stream().map(ShmEndpoint::lane).toList();
        List<SlotClassDescriptor> slotPool = s.slotClasses().stream().map(ShmEndpoint::slotClass).toList();
        RuntimeException failure = s.monitorFailure();
        return new SegmentDescriptor(s.name(), s.file().toString(), s.open(), s.hostGoodbye(),
                failure == null ? null : failure.toString(), s.self(), header, s.peersByState(), peers, channels,
                s.unreadable(), services, lanes, slotPool, s.counters());
    }

    private static PeerDescriptor peer(PeerInfo p, int self) {
        return new PeerDescriptor(p.id(), p.name(), p.pid(), ShmSegmentState.peerState(p), String.valueOf(p.state()),
                String.valueOf(p.liveness()), p.epoch(), p.heartbeatAge() == null ? null : p.heartbeatAge().toMillis(),
                p.id() == self);
    }

    private static ChannelDescriptor channel(Channel.Stats c) {
        return new ChannelDescriptor(c.name(), c.capacity(), c.slotSize(), c.cursor(), c.published(), c.occupancy(),
                c.fullWaits(), c.drops(), c.skips(), c.corrupt(), c.groups().stream()
                .map(g -> new GroupDescriptor(g.name(), g.required(), g.members(), g.exclusive(), g.consumed(), g.lag(),
                        g.redeliveries(), g.lost())).toList());
    }

    private static LaneDescriptor lane(LaneTable.LaneInfo l) {
        return new LaneDescriptor(l.index(), l.state(), l.client(), l.provider(), l.service(), l.capacity(),
                l.pendingToService(), l.pendingToClient());
    }

    private static SlotClassDescriptor slotClass(SlotPool.ClassStats c) {
        return new SlotClassDescriptor(c.classIndex(), c.slotSize(), c.total(), c.total() - c.free(), c.free(),
                c.allocated(), c.freeing(), c.extents(), c.reclaimed());
    }

    /**
     * The answer of {@code GET /actuator/shm}.
     *
     * @param segments every segment of the application, by name
     */
    public record SegmentsDescriptor(Map<String, SegmentSummary> segments) {
    }

    /**
     * One segment in summary.
     *
     * @param name the segment's name
     * @param file the segment file
     * @param open whether this application's attachment is open
     * @param hostGoodbye whether the segment's creator announced its shutdown
     * @param size the file bytes in use now
     * @param maxSize the size the file may grow to
     * @param peers peer table entries by state ({@code alive}, {@code stalled}, {@code dead},
     *     {@code reserved}, {@code goodbye}, {@code recovering}, {@code empty})
     * @param channels every channel, declared by any process
     */
    public record SegmentSummary(String name, String file, boolean open, boolean hostGoodbye, long size, long maxSize,
                                 Map<String, Integer> peers, List<ChannelSummary> channels) {
    }

    /**
     * One channel in summary.
     *
     * @param name the channel
     * @param capacity ring slots
     * @param occupancy messages published, not yet done by the slowest required group
     */
    public record ChannelSummary(String name, int capacity, long occupancy) {
    }

    /**
     * The answer of {@code GET /actuator/shm/{segment}}.
     *
     * @param name the segment's name
     * @param file the segment file
     * @param open whether this application's attachment is open
     * @param hostGoodbye whether the segment's creator announced its shutdown
     * @param monitorFailure the last failure of this application's monitor thread, or {@code null}
     * @param self this application's peer id
     * @param header the segment's header ({@code null} when closed)
     * @param peersByState peer table entries by state
     * @param peers the peer table entries in use
     * @param channels every channel, declared by any process
     * @param unreadableChannels channels whose ring could not be read, with the reason
     * @param services every request-reply service, with its provider
     * @param lanes the lane table entries in use or ever used
     * @param slotPool the slot pool, per class
     * @param counters the segment-wide counters, by label
     */
    public record SegmentDescriptor(String name, String file, boolean open, boolean hostGoodbye, String monitorFailure,
                                    int self, HeaderDescriptor header, Map<String, Integer> peersByState,
                                    List<PeerDescriptor> peers, List<ChannelDescriptor> channels,
                                    Map<String, String> unreadableChannels, List<ServiceDescriptor> services,
                                    List<LaneDescriptor> lanes, List<SlotClassDescriptor> slotPool,
                                    Map<String, Long> counters) {
    }

    /**
     * A segment's header.
     *
     * @param version the layout version
     * @param createdAt when the segment was created
     * @param creatorPid the process that created it
     * @param size the file bytes in use now
     * @param maxSize the size the file may grow to
     * @param maxPeers the size of the peer table
     * @param heartbeatIntervalMillis how often each peer writes its heartbeat
     * @param livenessTimeoutMillis how old a heartbeat may get before its peer is stalled
     */
    public record HeaderDescriptor(int version, String createdAt, long creatorPid, long size, long maxSize, int maxPeers,
                                   long heartbeatIntervalMillis, long livenessTimeoutMillis) {
    }

    /**
     * One peer table entry in use.
     *
     * @param id the peer id
     * @param name the peer's name ({@code spring.application.name})
     * @param pid its process id
     * @param state {@code alive}, {@code stalled}, {@code dead}, {@code reserved}, {@code goodbye} or
     *     {@code recovering}
     * @param entryState the entry's state in the table ({@code ATTACHED}, ...)
     * @param liveness what is known of its process ({@code ALIVE}, {@code STALLED}, {@code DEAD})
     * @param epoch bumped on every attach to the entry
     * @param heartbeatAgeMillis how long ago it last wrote its heartbeat, or {@code null}
     * @param self whether it is this application
     */
    public record PeerDescriptor(int id, String name, long pid, String state, String entryState, String liveness,
                                 int epoch, Long heartbeatAgeMillis, boolean self) {
    }

    /**
     * One channel.
     *
     * @param name the channel
     * @param capacity ring slots
     * @param slotSize bytes per slot
     * @param cursor the next sequence to claim
     * @param published sequences claimed since the ring was created
     * @param occupancy messages published, not yet done by the slowest required group
     * @param fullWaits sends that found the ring full and waited
     * @param drops sends dropped because the ring was full
     * @param skips holes a dead producer left, filled with skip records
     * @param corrupt damaged slots and references met and skipped
     * @param groups the consumer groups
     */
    public record ChannelDescriptor(String name, int capacity, int slotSize, long cursor, long published, long occupancy,
                                    long fullWaits, long drops, long skips, long corrupt,
                                    List<GroupDescriptor> groups) {
    }

    /**
     * One consumer group.
     *
     * @param name the group
     * @param required whether it gates producers
     * @param members peers subscribed now
     * @param exclusive whether an exclusive member holds the group
     * @param consumed messages the group has done
     * @param lag messages published that the group has not done
     * @param redeliveries messages handed back after a member died with them
     * @param lost messages the group lost
     */
    public record GroupDescriptor(String name, boolean required, int members, boolean exclusive, long consumed,
                                  long lag, long redeliveries, long lost) {
    }

    /**
     * One request-reply service.
     *
     * @param name the service
     * @param provider the peer that provides it, or -1
     */
    public record ServiceDescriptor(String name, int provider) {
    }

    /**
     * One lane table entry.
     *
     * @param index the entry
     * @param state {@code EMPTY}, {@code CLAIMED}, {@code ACTIVE} or {@code RELEASING}
     * @param client the client peer
     * @param provider the provider peer
     * @param service the service's directory entry
     * @param capacity the data bytes of each direction
     * @param pendingToService unread request bytes
     * @param pendingToClient unread reply bytes
     */
    public record LaneDescriptor(int index, String state, int client, int provider, int service, int capacity,
                                 long pendingToService, long pendingToClient) {
    }

    /**
     * One class of the slot pool.
     *
     * @param classIndex the class
     * @param slotSize bytes per slot
     * @param total slots in all its extents
     * @param used slots not in the free list
     * @param free slots in the free list
     * @param allocated slots owned by a peer
     * @param freeing slots being freed
     * @param extents the class's extents
     * @param reclaimed slots of the class freed by crash recovery
     */
    public record SlotClassDescriptor(int classIndex, long slotSize, long total, long used, long free, long allocated,
                                      long freeing, int extents, long reclaimed) {
    }
}
