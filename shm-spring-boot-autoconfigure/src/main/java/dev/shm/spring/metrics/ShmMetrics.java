package dev.shm.spring.metrics;

import dev.shm.core.pool.SlotPool;
import dev.shm.core.ring.Channel;
import dev.shm.core.segment.PeerInfo;
import dev.shm.core.segment.Segment;
import dev.shm.spring.support.ShmSegmentState;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.binder.MeterBinder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.ToDoubleFunction;
import org.apache.commons.logging.Log;
import org.apache.commons.logging.LogFactory;

/**
 * Micrometer meters of shm segments (DESIGN §3.3). Every value is read from shared memory when the
 * registry asks for it (a scrape), so it covers every process attached to the segment, not only
 * this one; nothing is counted on the message path.
 *
 * <table>
 * <caption>Meters</caption>
 * <tr><th>meter</th><th>type</th><th>base unit</th><th>tags</th></tr>
 * <tr><td>{@code shm.ring.occupancy}</td><td>gauge</td><td>messages</td><td>segment, channel</td></tr>
 * <tr><td>{@code shm.ring.capacity}</td><td>gauge</td><td>messages</td><td>segment, channel</td></tr>
 * <tr><td>{@code shm.ring.lag}</td><td>gauge</td><td>messages</td><td>segment, channel, group</td></tr>
 * <tr><td>{@code shm.messages.sent}</td><td>function counter</td><td></td><td>segment, channel</td></tr>
 * <tr><td>{@code shm.messages.dropped}</td><td>function counter</td><td></td><td>segment, channel</td></tr>
 * <tr><td>{@code shm.messages.received}</td><td>function counter</td><td></td><td>segment, channel, group</td></tr>
 * <tr><td>{@code shm.peer.heartbeat.age}</td><td>gauge</td><td>seconds</td><td>segment, peer, name</td></tr>
 * <tr><td>{@code shm.peers}</td><td>gauge</td><td></td><td>segment, state</td></tr>
 * <tr><td>{@code shm.peers.recovered}</td><td>function counter</td><td></td><td>segment</td></tr>
 * <tr><td>{@code shm.slots.used}</td><td>gauge</td><td></td><td>segment, class</td></tr>
 * <tr><td>{@code shm.slots.capacity}</td><td>gauge</td><td></td><td>segment, class</td></tr>
 * <tr><td>{@code shm.slots.reclaimed}</td><td>function counter</td><td></td><td>segment, class</td></tr>
 * </table>
 *
 * <p>Channels, consumer groups and peers come and go, also in other processes: a refresh on a
 * schedule (and at binding) reads the segment's directory and peer table, registers meters for
 * what is new and removes those of what is gone. Meters of a closed segment are removed, and all
 * meters when this binder closes. Tag values stay bounded: channels and groups by the directory's
 * capacity, peers by the peer table's ({@code peer} is the peer id, {@code name} its
 * {@code spring.application.name}), classes by the pool's.
 *
 * <p>A scrape reads each segment once: the values of one segment come from one reading, kept for
 * {@link #SNAPSHOT_AGE} so that the meters of one scrape agree and a scrape costs a directory walk
 * and a slot pool scan per segment, not one per meter.
 */
public final class ShmMetrics implements MeterBinder, AutoCloseable {

    /** How long one reading of a segment serves the meters. */
    public static final Duration SNAPSHOT_AGE = Duration.ofMillis(500);
    private static final Duration FAILURE_LOG_EVERY = Duration.ofSeconds(10);
    private static final Log LOG = LogFactory.getLog(ShmMetrics.class);

    private final List<Segment> segments;
    private final Duration refreshInterval;
    private final List<MeterRegistry> registries = new CopyOnWriteArrayList<>();
    private final Map<Segment, SegmentMeters> bySegment = new LinkedHashMap<>();
    private ScheduledExecutorService refresher;
    private boolean closed;

    /**
     * Creates the meters of some segments.
     *
     * @param segments the segments
     * @param refreshInterval how often to look for new or gone channels, groups and peers
     */
    public ShmMetrics(List<Segment> segments, Duration refreshInterval) {
        if (refreshInterval == null || refreshInterval.isNegative() || refreshInterval.isZero()) {
            throw new IllegalArgumentException("refreshInterval=" + refreshInterval + " must be positive");
        }
        this.segments = List.copyOf(segments);
        this.refreshInterval = refreshInterval;
        for (Segment segment : this.segments) {
            bySegment.put(segment, new SegmentMeters(segment));
        }
    }

    @Override
    public synchronized void bindTo(MeterRegistry registry) {
        if (closed) {
            return;
        }
        registries.add(registry);
        // Every meter lives in every registry bound so far: register them anew.
        for (SegmentMeters meters : bySegment.values()) {
            meters.removeAll();
        }
        refresh();
        if (refresher == null) {
            refresher = Executors.newSingleThreadScheduledExecutor(task -> Thread.ofPlatform().daemon()
                    .name("shm-metrics").unstarted(task));
            long period = refreshInterval.toNanos();
            refresher.scheduleWithFixedDelay(this::refreshQuietly, period, period, TimeUnit.NANOSECONDS);
        }
    }

    private void refreshQuietly() {
        try {
            refresh();
        } catch (RuntimeException e) {
            // Try again next time: a segment that cannot be read now must not end the schedule.
        }
    }

    /** Registers the meters of new channels, groups and peers and removes those of gone ones, now. */
    public synchronized void refresh() {
        if (closed) {
            return;
        }
        for (SegmentMeters meters : bySegment.values()) {
            meters.refresh();
        }
    }

    /** Stops refreshing and removes every meter this binder registered. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (refresher != null) {
            refresher.shutdownNow();
        }
        for (SegmentMeters meters : bySegment.values()) {
            meters.removeAll();
        }
    }

    /** The meters of one segment, and the reading they share. */
    private final class SegmentMeters {

        private final Segment segment;
        private final String name;
        /** Registered meters by key (name and tag values), one per registry. */
        private final Map<String, List<Meter>> meters = new LinkedHashMap<>();
        private ShmSegmentState state;
        /** When {@link #state} was last read ({@link System#nanoTime}), or 0 for never or stale. */
        private long stateTime;
        private long lastFailureLog;

        SegmentMeters(Segment segment) {
            this.segment = segment;
            this.name = segment.name();
        }

        /**
         * Returns the segment's state, read at most {@link #SNAPSHOT_AGE} ago; when a read fails
         * (damage met in one of the segment's tables, for one), the last good one, or {@code null}
         * before the first: a meter then reports NaN. A function counter's failure would fail the
         * whole scrape, every application meter with it (Micrometer catches a gauge's, not a function
         * counter's).
         */
        synchronized ShmSegmentState state() {
            long now = System.nanoTime();
            if (stateTime == 0 || now - stateTime > SNAPSHOT_AGE.toNanos()) {
                stateTime = now == 0 ? 1 : now;
                try {
                    state = ShmSegmentState.read(segment);
                } catch (RuntimeException e) {
                    if (now - lastFailureLog > FAILURE_LOG_EVERY.toNanos() || lastFailureLog == 0) {
                        lastFailureLog = now == 0 ? 1 : now;
                        LOG.warn("cannot read the state of segment '" + name + "' for its meters; they keep the last "
                                + "reading (logged at most every " + FAILURE_LOG_EVERY.toSeconds() + " s): " + e);
                    }
                }
            }
            return state;
        }

        /** A meter's value: NaN while no reading of the segment succeeded. */
        double value(ToDoubleFunction<ShmSegmentState> value) {
            ShmSegmentState s = state();
            return s == null ? Double.NaN : value.applyAsDouble(s);
        }

        synchronized void fresh() {
            stateTime = 0;
        }

        void refresh() {
            fresh();
            ShmSegmentState s = state();
            if (s == null) {
                return; // unreadable so far: the meters stay as they are until a read succeeds
            }
            if (!s.open()) {
                removeAll();
                return;
            }
            Set<String> wanted = new HashSet<>();
            Tags segmentTags = Tags.of("segment", name);
            functionCounter(wanted, "shm.peers.recovered", segmentTags, "Dead peers recovered (the whole segment).",
                    st -> st.counters().getOrDefault("peers recovered", 0L));
            for (String peerState : ShmSegmentState.PEER_STATES) {
                gauge(wanted, "shm.peers", segmentTags.and("state", peerState), null,
                        "Peer table entries by state (the whole segment).",
                        st -> st.open() ? st.peersByState().get(peerState) : Double.NaN);
            }
            for (PeerInfo peer : s.peers()) {
                if (peer.heartbeatAge() == null) {
                    continue;
                }
                int id = peer.id();
                String peerName = peer.name() == null || peer.name().isEmpty() ? "unknown" : peer.name();
                gauge(wanted, "shm.peer.heartbeat.age", segmentTags.and("peer", String.valueOf(id), "name", peerName),
                        "seconds", "How long ago the peer last wrote its heartbeat.", st -> {
                            PeerInfo p = st.peer(id);
                            return p == null || p.heartbeatAge() == null ? Double.NaN
                                    : p.heartbeatAge().toNanos() / 1e9;
                        });
            }
            for (SlotPool.ClassStats c : s.slotClasses()) {
                int index = c.classIndex();
                Tags tags = segmentTags.and("class", String.valueOf(index));
                gauge(wanted, "shm.slots.used", tags, null, "Slots of the class not in its free list.",
                        st -> slotValue(st, index, cs -> cs.total() - cs.free()));
                gauge(wanted, "shm.slots.capacity", tags, null, "Slots of the class in all its extents.",
                        st -> slotValue(st, index, cs -> cs.total()));
                functionCounter(wanted, "shm.slots.reclaimed", tags, "Slots of the class freed by crash recovery.",
                        st -> slotValue(st, index, cs -> cs.reclaimed()));
            }
            for (Channel.Stats channel : s.channels()) {
                String ch = channel.name();
                Tags tags = segmentTags.and("channel", ch);
                gauge(wanted, "shm.ring.occupancy", tags, "messages",
                        "Messages published, not yet done by the slowest required group.",
                        st -> channelValue(st, ch, Channel.Stats::occupancy));
                gauge(wanted, "shm.ring.capacity", tags, "messages", "Slots of the ring.",
                        st -> channelValue(st, ch, Channel.Stats::capacity));
                functionCounter(wanted, "shm.messages.sent", tags, "Messages published to the channel, by any process.",
                        st -> channelValue(st, ch, Channel.Stats::published));
                functionCounter(wanted, "shm.messages.dropped", tags,
                        "Sends dropped because the ring was full, or the slot they needed still held (backpressure drop).",
                        st -> channelValue(st, ch, Channel.Stats::drops));
                for (Channel.GroupStats group : channel.groups()) {
                    String g = group.name();
                    Tags groupTags = tags.and("group", g);
                    gauge(wanted, "shm.ring.lag", groupTags, "messages",
                            "Messages published that the consumer group has not done.",
                            st -> groupValue(st, ch, g, Channel.GroupStats::lag));
                    functionCounter(wanted, "shm.messages.received", groupTags,
                            "Messages the consumer group has done, in any process.",
                            st -> groupValue(st, ch, g, Channel.GroupStats::consumed));
                }
            }
            List<String> gone = new ArrayList<>();
            synchronized (meters) {
                for (String key : meters.keySet()) {
                    if (!wanted.contains(key)) {
                        gone.add(key);
                    }
                }
            }
            gone.forEach(this::remove);
        }

        private void gauge(Set<String> wanted, String meter, Tags tags, String unit, String description,
                           ToDoubleFunction<ShmSegmentState> value) {
            register(wanted, meter, tags, registry -> Gauge.builder(meter, this, m -> m.value(value))
                    .tags(tags).baseUnit(unit).description(description).strongReference(true).register(registry));
        }

        private void functionCounter(Set<String> wanted, String meter, Tags tags, String description,
                                     ToDoubleFunction<ShmSegmentState> value) {
            register(wanted, meter, tags, registry -> FunctionCounter.builder(meter, this,
                            m -> m.value(value))
                    .tags(tags).description(description).register(registry));
        }

        private void register(Set<String> wanted, String meter, Tags tags,
                              java.util.function.Function<MeterRegistry, Meter> builder) {
            String key = meter + tags;
            wanted.add(key);
            synchronized (meters) {
                if (meters.containsKey(key)) {
                    return;
                }
                List<Meter> registered = new ArrayList<>();
                for (MeterRegistry registry : registries) {
                    registered.add(builder.apply(registry));
                }
                meters.put(key, registered);
            }
        }

        private void remove(String key) {
            List<Meter> removed;
            synchronized (meters) {
                removed = meters.remove(key);
            }
            if (removed != null) {
                for (Meter meter : removed) {
                    for (MeterRegistry registry : registries) {
                        registry.remove(meter);
                    }
                }
            }
        }

        void removeAll() {
            List<String> keys;
            synchronized (meters) {
                keys = new ArrayList<>(meters.keySet());
            }
            keys.forEach(this::remove);
        }
    }

    private static double slotValue(ShmSegmentState state, int classIndex,
                                     ToDoubleFunction<SlotPool.ClassStats> value) {
        SlotPool.ClassStats stats = state.slotClass(classIndex);
        return stats == null ? Double.NaN : value.applyAsDouble(stats);
    }

    private static double channelValue(ShmSegmentState state, String channel, ToDoubleFunction<Channel.Stats> value) {
        Channel.Stats stats = state.channel(channel);
        return stats == null ? Double.NaN : value.applyAsDouble(stats);
    }

    private static double groupValue(ShmSegmentState state, String channel, String group,
                                     ToDoubleFunction<Channel.GroupStats> value) {
        Channel.GroupStats stats = state.group(channel, group);
        return stats == null ? Double.NaN : value.applyAsDouble(stats);
    }
}
