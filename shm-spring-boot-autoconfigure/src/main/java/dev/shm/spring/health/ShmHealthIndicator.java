package dev.shm.spring.health;

import dev.shm.core.ring.Channel;
import dev.shm.core.segment.PeerInfo;
import dev.shm.core.segment.Segment;
import dev.shm.spring.support.ShmSegmentState;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.springframework.boot.health.contributor.AbstractHealthIndicator;
import org.springframework.boot.health.contributor.Health;

/**
 * Health of one segment. {@code DOWN} when this application cannot use the segment: its
 * attachment is closed, its monitor thread failed (no heartbeats, no recovery), or the segment's
 * creator announced its shutdown (host goodbye). Otherwise {@code UP}, with details that name what
 * needs a look without making the application unhealthy: stalled peers (alive, heartbeat older
 * than the liveness timeout), dead peers not yet recovered, and channels whose occupancy is at or
 * above {@link #NEARLY_FULL} of their capacity.
 */
public class ShmHealthIndicator extends AbstractHealthIndicator {

    /** The occupancy, as a fraction of capacity, at which a channel is listed as nearly full. */
    public static final double NEARLY_FULL = 0.9;

    private final Segment segment;

    /**
     * Creates the indicator.
     *
     * @param segment the segment
     */
    public ShmHealthIndicator(Segment segment) {
        super("shm segment health check failed");
        this.segment = segment;
    }

    @Override
    protected void doHealthCheck(Health.Builder builder) {
        ShmSegmentState s = ShmSegmentState.read(segment);
        builder.withDetail("segment", s.name()).withDetail("file", s.file().toString());
        if (!s.open()) {
            builder.down().withDetail("reason", "the segment is closed");
            return;
        }
        RuntimeException failure = s.monitorFailure();
        if (failure != null) {
            builder.down().withDetail("reason", "the segment's monitor failed: " + failure);
        } else if (s.hostGoodbye()) {
            builder.down().withDetail("reason", "the segment's creator said goodbye");
        } else {
            builder.up();
        }
        builder.withDetail("peers", s.peersByState());
        List<Map<String, Object>> stalled = new ArrayList<>();
        List<Map<String, Object>> dead = new ArrayList<>();
        for (PeerInfo peer : s.peers()) {
            String state = ShmSegmentState.peerState(peer);
            if (state.equals("stalled") || state.equals("dead")) {
                Map<String, Object> p = new LinkedHashMap<>();
                p.put("id", peer.id());
                p.put("name", peer.name());
                p.put("pid", peer.pid());
                if (peer.heartbeatAge() != null) {
                    p.put("heartbeatAgeMillis", peer.heartbeatAge().toMillis());
                }
                (state.equals("stalled") ? stalled : dead).add(p);
            }
        }
        if (!stalled.isEmpty()) {
            builder.withDetail("stalledPeers", stalled);
        }
        if (!dead.isEmpty()) {
            builder.withDetail("deadPeers", dead);
        }
        List<Map<String, Object>> nearlyFull = new ArrayList<>();
        for (Channel.Stats channel : s.channels()) {
            if (channel.occupancy() >= NEARLY_FULL * channel.capacity()) {
                Map<String, Object> c = new LinkedHashMap<>();
                c.put("name", channel.name());
                c.put("occupancy", channel.occupancy());
                c.put("capacity", channel.capacity());
                nearlyFull.add(c);
            }
        }
        if (!nearlyFull.isEmpty()) {
            builder.withDetail("nearlyFullChannels", nearlyFull);
        }
    }
}
