package dev.shm.spring.gateway;

import dev.shm.core.lane.Doorbell;
import dev.shm.core.lane.Lane;
import dev.shm.core.lane.LaneMemfds;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.segment.Segment;
import dev.shm.spring.support.LaneIo;
import dev.shm.spring.support.ShmHeaders;
import dev.shm.spring.support.ShmMessageCodec;
import dev.shm.spring.support.ShmRings;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongConsumer;
import org.springframework.integration.gateway.MessagingGatewaySupport;
import org.springframework.integration.support.MessageBuilder;
import org.springframework.messaging.Message;

/**
 * An inbound gateway: provides a service to the processes of the host. Each request that arrives on
 * a lane goes to the request channel; the reply (or the error) goes back on the same lane with the
 * request's correlation.
 *
 * <p>One process provides a service at a time: a second inbound gateway for the same service, in
 * another process, stands by and takes over when the provider dies (the segment's recovery
 * releases the role). Requests are handled one at a time, in arrival order per client.
 *
 * <p>A request whose flow throws is answered with an error reply ({@link ShmHeaders#ERROR}), unless
 * an error channel is set, whose flow's result is the reply.
 */
public class ShmInboundGateway extends MessagingGatewaySupport {

    private final Segment segment;
    private final String service;
    private ShmMessageCodec codec;
    private Duration drainTimeout = Duration.ofSeconds(10);
    private Duration replyTimeout = Duration.ofSeconds(30);
    private int index = -1;
    private volatile boolean running;
    private volatile boolean provider;
    /** The request the last poll decoded, or null; the serving thread's alone. */
    private Message<?> decoded;
    private final Lane.FrameHandler decoder = this::decode;
    /** The service's doorbell, once this process serves it. */
    private volatile Doorbell doorbell;
    /** Set after a sleep on the doorbell: read the lane table again. The serving thread's alone. */
    private boolean rescan;
    private final LongConsumer sleeper = this::sleep;
    /** The memfds of replies above the largest slot class, until their clients read them; the serving thread's alone. */
    private LaneMemfds memfds;
    private Thread thread;

    /**
     * Creates the gateway.
     *
     * @param segment the segment that holds the service
     * @param service the service's name
     */
    public ShmInboundGateway(Segment segment, String service) {
        this.segment = segment;
        this.service = service;
    }

    /** @param codec the codec (default: the application's {@code ShmMessageCodec} bean) */
    public void setCodec(ShmMessageCodec codec) {
        this.codec = codec;
    }

    /** @param drainTimeout the longest wait on stop for the request in hand */
    public void setDrainTimeout(Duration drainTimeout) {
        this.drainTimeout = drainTimeout;
    }

    @Override
    public void setReplyTimeout(long replyTimeout) {
        super.setReplyTimeout(replyTimeout);
        this.replyTimeout = Duration.ofMillis(replyTimeout);
    }

    /**
     * Tells whether this process provides the service now.
     *
     * @return {@code false} while standing by
     */
    public boolean isProvider() {
        return provider;
    }

    @Override
    public String getComponentType() {
        return "shm:inbound-gateway";
    }

    @Override
    protected void onInit() {
        super.onInit();
        codec = ShmRings.codec(codec, getBeanFactory());
        index = ShmServices.declare(segment, service);
    }

    @Override
    protected void doStart() {
        super.doStart();
        provider = segment.directory().provide(index);
        running = true;
        thread = Thread.ofPlatform().daemon().name("shm-service-" + service).start(this::serve);
    }

    @Override
    protected void doStop() {
        running = false;
        Thread t = thread;
        thread = null;
        if (t != null) {
            Doorbell bell = doorbell;
            if (bell != null) {
                bell.ring(); // a serving thread asleep on it stops now, not after its sleep
            }
            try {
                if (!t.join(drainTimeout)) {
                    t.interrupt();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        super.doStop();
    }

    private void serve() {
        memfds = new LaneMemfds(segment.leases(), "reply-" + service);
        try {
            serveRequests();
        } finally {
            memfds.close(); // replies not read by now: the clients stopped waiting, or stop themselves
        }
    }

    private void serveRequests() {
        Map<Integer, LaneTable.LanePair> pairs = new HashMap<>();
        int idle = 0;
        long lastScan = 0;
        while (running) {
            if (memfds.pending() > 0) {
                memfds.reclaim();
            }
            if (!provider) {
                provider = segment.directory().provide(index);
                if (!provider) {
                    LockSupport.parkNanos(20_000_000);
                    continue;
                }
            }
            long now = System.nanoTime();
            // New clients are found by a rescan of the lane table: often while idle, still regularly under load.
            if (rescan || now - lastScan > (pairs.isEmpty() || idle > 0 ? 1_000_000 : 5_000_000)) {
                rescan = false;
                lastScan = now;
                List<LaneTable.LanePair> active = segment.lanes().lanesOf(index);
                Map<Integer, LaneTable.LanePair> next = new HashMap<>();
                for (LaneTable.LanePair p : active) {
                    if (p.provider() != segment.peerId()) {
                        continue;
                    }
                    LaneTable.LanePair known = pairs.get(p.index());
                    next.put(p.index(), known != null && !known.toService().isReset() && known.client() == p.client()
                            ? known : p);
                }
                pairs = next;
            }
            int handled = 0;
            for (LaneTable.LanePair p : pairs.values()) {
                // One request at a time, decoded (copied out) inside the poll and handled after it: the
                // poll holds the lane's in-flight word, which a release of the pair (the client closing
                // it, or its recovery) waits for, only while it reads the request, not for the flow.
                for (int i = 0; i < 16; i++) {
                    decoded = null;
                    int n = p.toService().poll(decoder, 1);
                    if (n <= 0) {
                        break;
                    }
                    handled++;
                    if (decoded != null) {
                        handle(p, decoded);
                    }
                }
            }
            idle = handled > 0 ? 0 : LaneIo.idle(idle, sleeper);
        }
    }

    /**
     * Sleeps on the service's doorbell, which a client rings after each request, unless a request
     * is there already in a pair of the service (a new client's too: the lane table is read again).
     */
    private void sleep(long nanos) {
        Doorbell bell = doorbell;
        if (bell == null) {
            bell = segment.directory().doorbell(index);
            doorbell = bell;
        }
        bell.await(segment.peerId() + 1, this::anyRequest, nanos);
        rescan = true; // a new client's pair, the usual reason for a request in no known pair
    }

    private boolean anyRequest() {
        for (LaneTable.LanePair p : segment.lanes().lanesOf(index)) {
            if (p.provider() == segment.peerId() && p.toService().hasFrames()) {
                return true;
            }
        }
        return !running;
    }

    private void decode(short type, java.lang.foreign.MemorySegment payload) {
        try {
            decoded = LaneIo.decode(segment, codec, type, payload);
        } catch (RuntimeException e) {
            logger.warn(e, "dropped a request to service '" + service + "' that does not decode");
        }
    }

    private void handle(LaneTable.LanePair p, Message<?> request) {
        Object correlation = request.getHeaders().get(ShmHeaders.CORRELATION);
        Message<?> reply;
        try {
            reply = sendAndReceiveMessage(request);
            if (reply == null) {
                reply = error(correlation, "no reply within " + replyTimeout);
            } else {
                reply = MessageBuilder.fromMessage(reply).setHeader(ShmHeaders.CORRELATION, correlation).build();
            }
        } catch (RuntimeException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            reply = error(correlation, cause.getClass().getName() + ": " + cause.getMessage());
        }
        ShmMessageCodec.Encoded record;
        try {
            record = codec.encode(reply);
        } catch (RuntimeException e) {
            record = codec.encode(error(correlation, "the reply cannot be encoded: " + e.getMessage()));
        }
        long deadline = System.nanoTime() + replyTimeout.toNanos();
        int rc = LaneIo.write(segment, p.toClient(), record, memfds, deadline);
        if (rc == LaneIo.NO_BUFFER) {
            record = codec.encode(error(correlation, "no room for a reply of " + record.length() + " bytes: "
                    + LaneIo.noBuffer(segment, record.length())));
            rc = LaneIo.write(segment, p.toClient(), record, memfds, deadline);
        }
        if (rc != LaneIo.OK && rc != Lane.RESET) {
            logger.warn("reply of service '" + service + "' not delivered (" + rc + ")");
        }
    }

    private static Message<?> error(Object correlation, String text) {
        return MessageBuilder.withPayload(text).setHeader(ShmHeaders.CORRELATION, correlation)
                .setHeader(ShmHeaders.ERROR, text).build();
    }
}
