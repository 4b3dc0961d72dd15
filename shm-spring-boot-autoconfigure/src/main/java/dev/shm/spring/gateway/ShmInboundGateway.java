package dev.shm.spring.gateway;

import dev.shm.core.MemfdUnavailableException;
import dev.shm.core.lane.Doorbell;
import dev.shm.core.lane.Lane;
import dev.shm.core.lane.LaneMemfds;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.segment.Segment;
import dev.shm.spring.support.LaneIo;
import dev.shm.spring.support.ShmHeaders;
import dev.shm.spring.support.ShmMessageCodec;
import dev.shm.spring.support.ShmRings;
import dev.shm.spring.support.UnreadableLog;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
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
 * releases the role). By default requests are handled one at a time on the serving thread, in
 * arrival order per client; with {@link #setConcurrency concurrency} {@code n > 1} up to {@code n}
 * at once on as many worker threads, each reply going back as its request completes (the client
 * correlates them). Requests beyond {@code n} wait in their lanes.
 *
 * <p>A request whose flow throws is answered with an error reply ({@link ShmHeaders#ERROR}), unless
 * an error channel is set, whose flow's result is the reply.
 */
public class ShmInboundGateway extends MessagingGatewaySupport {

    /** The longest a stopping provider waits for its clients to read the replies it wrote. */
    private static final long READ_GRACE_NANOS = TimeUnit.SECONDS.toNanos(1);
    private static final long FAILURE_LOG_EVERY_NANOS = TimeUnit.SECONDS.toNanos(10);

    private final Segment segment;
    private final String service;
    private ShmMessageCodec codec;
    private Duration drainTimeout = Duration.ofSeconds(10);
    /** Whether the application set {@link #drainTimeout}; if not, {@code shm.shutdown.drain-timeout} applies. */
    private boolean drainTimeoutSet;
    private Duration replyTimeout = Duration.ofSeconds(30);
    private int index = -1;
    private int concurrency = 1;
    private volatile boolean provider;
    /** The service's doorbell, once this process serves it. */
    private volatile Doorbell doorbell;
    /** The run started last; null before the first start. */
    private volatile Run run;
    /** When the serving thread last logged a failure ({@link System#nanoTime}), or 0. */
    private volatile long lastFailureLog;
    private Thread thread;
    private final UnreadableLog unreadable = new UnreadableLog(logger.getLog());

    /**
     * One start-to-stop: what its serving thread and workers share. A later start makes a new one,
     * so a worker of an earlier run that outlived its stop touches only its own run's permits and
     * memfds.
     */
    private final class Run {
        volatile boolean running = true;
        /** When doStop asked this run to stop ({@link System#nanoTime}); the drain's deadlines count from it. */
        volatile long stopAt;
        /** The memfds of replies above the largest slot class, until their clients read them. */
        final LaneMemfds memfds = new LaneMemfds(segment.leases(), "reply-" + service);
        /** With concurrency above one: a permit per request in a worker's hands, and the workers. */
        final Semaphore permits = concurrency > 1 ? new Semaphore(concurrency) : null;
        final ExecutorService workers = concurrency > 1 ? Executors.newFixedThreadPool(concurrency,
                Thread.ofPlatform().daemon().name("shm-service-" + service + "-", 1).factory()) : null;
        /** The pairs served, by lane table entry (the serving thread's). */
        Map<Integer, LaneTable.LanePair> pairs = new HashMap<>();
        /** Set after a sleep on the doorbell: read the lane table again (the serving thread's). */
        boolean rescan;
        /** When the lane table was last read ({@link System#nanoTime}; the serving thread's). */
        long lastScan;
        /** The request the last poll decoded, or null, and the peer whose lane it came from (the serving thread's). */
        Message<?> decoded;
        int decodingFrom;
        final Lane.FrameHandler decoder = this::decode;
        final LongConsumer sleeper = this::sleep;

        /**
         * Pairs whose next request this process cannot read now (its memfd, for want of a
         * descriptor): left in its lane until this {@link System#nanoTime} (the serving thread's).
         */
        final Map<Integer, Long> unreadableUntil = new HashMap<>();

        /**
         * Pairs whose reply lane stayed full and unread ({@link #reply}): the lane's unread bytes then,
         * by lane table entry. Written by the repliers under the lane's lock; the serving thread
         * removes a pair's entry when it reads a request from it, and those of pairs gone.
         */
        final Map<Integer, Long> stalled = new java.util.concurrent.ConcurrentHashMap<>();

        /** Whether pair {@code p}'s next request could not be read a moment ago, and waits before it is tried again. */
        boolean waitsToRead(LaneTable.LanePair p, long now) {
            Long until = unreadableUntil.get(p.index());
            if (until == null) {
                return false;
            }
            if (now - until < 0) {
                return true;
            }
            unreadableUntil.remove(p.index());
            return false;
        }

        private void decode(short type, java.lang.foreign.MemorySegment payload) {
            try {
                decoded = LaneIo.decode(segment, codec, type, payload, decodingFrom);
            } catch (MemfdUnavailableException e) {
                throw e; // out of the lane's poll, which then leaves the request in the lane
            } catch (RuntimeException e) {
                logger.warn(e, "dropped a request to service '" + service + "' that does not decode");
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
            long now = System.nanoTime();
            for (long until : unreadableUntil.values()) {
                nanos = Math.min(nanos, Math.max(0, until - now)); // up to the next try of a kept request
            }
            bell.await(segment.peerId() + 1, this::anyRequest, nanos);
            rescan = true; // a new client's pair, the usual reason for a request in no known pair
        }

        /** Whether a request waits in a pair of the service, other than one this process cannot read now. */
        private boolean anyRequest() {
            long now = System.nanoTime();
            for (LaneTable.LanePair p : segment.lanes().lanesOf(index)) {
                if (p.provider() == segment.peerId() && p.toService().hasFrames() && !waitsToRead(p, now)) {
                    return true;
                }
            }
            return !running;
        }
    }

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

    /**
     * Sets how many requests the provider handles at once (default 1: one at a time, on the serving
     * thread, in arrival order per client). Above one, requests are handed to as many worker threads
     * (platform threads, which keep their encoding buffers), and replies go back in completion order.
     *
     * @param concurrency at least 1
     * @throws IllegalArgumentException below 1
     */
    public void setConcurrency(int concurrency) {
        if (concurrency < 1) {
            throw new IllegalArgumentException("concurrency of the inbound gateway of service '" + service + "' is "
                    + concurrency + "; it must be at least 1");
        }
        this.concurrency = concurrency;
    }

    /** @param drainTimeout the longest wait on stop for the requests in hand */
    public void setDrainTimeout(Duration drainTimeout) {
        this.drainTimeout = drainTimeout;
        this.drainTimeoutSet = true;
    }

    /**
     * Returns the longest wait on stop: as set, else (once initialized in a context) the
     * application's {@code shm.shutdown.drain-timeout}, else 10 s.
     *
     * @return the drain timeout
     */
    public Duration getDrainTimeout() {
        return drainTimeout;
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
        if (!drainTimeoutSet) {
            drainTimeout = ShmRings.drainTimeout(getBeanFactory(), drainTimeout);
        }
        codec = ShmRings.codec(codec, getBeanFactory());
        index = ShmServices.declare(segment, service);
    }

    @Override
    protected void doStart() {
        super.doStart();
        Thread previous = thread;
        if (previous != null && previous.isAlive()) {
            try {
                previous.join(drainTimeout); // a stop whose drain timed out: its thread ends when it may
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (previous.isAlive()) {
                throw new IllegalStateException("the inbound gateway of service '" + service + "' cannot start: the "
                        + "serving thread of its last run has not ended (a request's flow that ignores interrupts?)");
            }
        }
        Run last = run;
        if (last != null && last.workers != null && !last.workers.isTerminated()) {
            // A worker of the last run still in a flow would reply through its own lane objects beside this
            // run's: two writers on one lane.
            try {
                last.workers.awaitTermination(drainTimeout.toNanos(), TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (!last.workers.isTerminated()) {
                throw new IllegalStateException("the inbound gateway of service '" + service + "' cannot start: a "
                        + "worker of its last run is still in a request's flow (one that ignores interrupts?)");
            }
        }
        provider = segment.directory().provide(index);
        Run r = new Run();
        run = r;
        thread = Thread.ofPlatform().daemon().name("shm-service-" + service).start(() -> serve(r));
    }

    @Override
    protected void doStop() {
        Run r = run;
        Thread t = thread;
        if (r != null) {
            r.stopAt = System.nanoTime();
            r.running = false;
        }
        if (t != null) {
            Doorbell bell = doorbell;
            if (bell != null) {
                bell.ring(); // a serving thread asleep on it stops now, not after its sleep
            }
            try {
                // The serving thread drains within the drain timeout, then gives the clients a second
                // to read the replies; one more second is the margin for its last steps.
                if (!t.join(drainTimeout.plusNanos(READ_GRACE_NANOS).plusSeconds(1))) {
                    t.interrupt();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        super.doStop();
    }

    private void serve(Run r) {
        try {
            serveRequests(r);
        } finally {
            drain(r);
        }
    }

    /**
     * Stops a run: the workers finish the requests in hand, within the drain timeout from the stop;
     * then the clients read the replies, within a second more (a large reply's memfd must stay
     * leased until its client read it; a waiting caller reads within milliseconds, and a reply whose
     * caller stopped waiting stays unread); then the memfds still out are given back. Both deadlines
     * count from doStop, whose join waits for both; its interrupt cuts every wait short.
     */
    private void drain(Run r) {
        long stopAt = r.running ? System.nanoTime() : r.stopAt; // the loop also ends on an interrupt
        long deadline = stopAt + drainTimeout.toNanos();
        if (r.workers != null) {
            r.workers.shutdown();
            try {
                if (!r.workers.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                    r.workers.shutdownNow();
                }
            } catch (InterruptedException e) {
                r.workers.shutdownNow();
                Thread.currentThread().interrupt();
            }
        }
        long read = Math.min(System.nanoTime() + READ_GRACE_NANOS, deadline + READ_GRACE_NANOS);
        while (!Thread.currentThread().isInterrupted() && System.nanoTime() - read < 0 && unread(r)) {
            LockSupport.parkNanos(1_000_000);
        }
        r.memfds.close(); // replies not read by now: their callers stopped waiting
    }

    /** Whether a client has not read all its replies yet, or a reply's memfd is still leased. */
    private boolean unread(Run r) {
        if (r.memfds.reclaim() > 0) {
            return true;
        }
        for (LaneTable.LanePair p : r.pairs.values()) {
            Lane lane = p.toClient();
            if (lane.hasFrames() && !lane.isReset()) {
                return true;
            }
        }
        return false;
    }

    private void serveRequests(Run r) {
        int idle = 0;
        while (r.running) {
            try {
                idle = serveOnce(r, idle);
            } catch (RuntimeException e) {
                // Whatever went wrong (damage met in the lane table, for one), this process still
                // provides the service: serve on, with a pause, rather than end the serving thread
                // and leave every client waiting for a provider that no longer reads.
                failure("in a round of serving", e);
                idle = 0;
                LockSupport.parkNanos(1_000_000); // not the idle strategy: its sleep reads the lanes too
            }
        }
    }

    /** One round of {@link #serveRequests}: returns the idle count for the next. */
    private int serveOnce(Run r, int idle) {
        r.memfds.reclaim();
        if (!provider) {
            provider = segment.directory().provide(index);
            if (!provider) {
                LockSupport.parkNanos(20_000_000);
                return idle;
            }
        }
        long now = System.nanoTime();
        // New clients are found by a rescan of the lane table: often while idle, still regularly under load.
        if (r.rescan || now - r.lastScan > (r.pairs.isEmpty() || idle > 0 ? 1_000_000 : 5_000_000)) {
            r.rescan = false;
            r.lastScan = now;
            List<LaneTable.LanePair> active = segment.lanes().lanesOf(index);
            Map<Integer, LaneTable.LanePair> next = new HashMap<>();
            for (LaneTable.LanePair p : active) {
                if (p.provider() != segment.peerId()) {
                    continue;
                }
                LaneTable.LanePair known = r.pairs.get(p.index());
                next.put(p.index(), known != null && !known.toService().isReset() && known.client() == p.client()
                        ? known : p);
            }
            r.pairs = next;
            r.unreadableUntil.keySet().retainAll(next.keySet());
            r.stalled.keySet().retainAll(next.keySet());
        }
        int handled = 0;
        for (LaneTable.LanePair p : r.pairs.values()) {
            if (!r.unreadableUntil.isEmpty() && r.waitsToRead(p, now)) {
                continue;
            }
            // One request at a time, decoded (copied out) inside the poll and handled after it: the
            // poll holds the lane's in-flight word, which a release of the pair (the client closing
            // it, or its recovery) waits for, only while it reads the request, not for the flow.
            for (int i = 0; i < 16; i++) {
                if (r.permits != null && !permit(r.permits)) {
                    break; // every worker busy: the requests wait in their lanes
                }
                r.decoded = null;
                r.decodingFrom = p.client();
                int n;
                try {
                    n = p.toService().poll(r.decoder, 1);
                } catch (MemfdUnavailableException e) {
                    // The request stays in its lane: this pair waits, the others go on.
                    if (r.permits != null) {
                        r.permits.release();
                    }
                    unreadable.unreadable("the inbound gateway of service '" + service + "'",
                            "a request of peer " + p.client(), e);
                    r.unreadableUntil.put(p.index(), System.nanoTime() + UnreadableLog.RETRY.toNanos());
                    break;
                } catch (RuntimeException e) {
                    // A damaged frame (counted, and the lane's unread data dropped: the client's
                    // next request is read) or another failure of this pair's lane: the others
                    // go on, and this pair is tried again after a pause.
                    if (r.permits != null) {
                        r.permits.release();
                    }
                    failure("reading a request of peer " + p.client(), e);
                    r.unreadableUntil.put(p.index(), System.nanoTime() + UnreadableLog.RETRY.toNanos());
                    break;
                }
                if (n > 0) {
                    handled++;
                    if (!r.stalled.isEmpty()) {
                        r.stalled.remove(p.index()); // a request: a caller of that client waits, and reads, again
                    }
                }
                if (n <= 0 || r.decoded == null) {
                    if (r.permits != null) {
                        r.permits.release();
                    }
                    if (n <= 0) {
                        break;
                    }
                    continue;
                }
                dispatch(r, p, r.decoded);
            }
        }
        return handled > 0 ? 0 : LaneIo.idle(idle, r.sleeper);
    }

    /** Logs a failure of the serving thread, at most every 10 s (it goes on serving). */
    private void failure(String what, RuntimeException e) {
        long now = System.nanoTime();
        long before = lastFailureLog;
        if (before == 0 || now - before >= FAILURE_LOG_EVERY_NANOS) {
            lastFailureLog = now == 0 ? 1 : now;
            logger.error(e, "the inbound gateway of service '" + service + "' failed " + what
                    + ", and serves on (logged at most every 10 s)");
        }
    }

    /** Waits a little for a worker to be free; false when none is (then the serving thread polls again later). */
    private static boolean permit(Semaphore permits) {
        try {
            return permits.tryAcquire(1, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Handles a request here, or hands it to a worker with the permit taken for it. */
    private void dispatch(Run r, LaneTable.LanePair p, Message<?> request) {
        if (r.workers == null) {
            handle(r, p, request);
            return;
        }
        try {
            r.workers.execute(() -> {
                try {
                    handle(r, p, request);
                } finally {
                    r.permits.release();
                }
            });
        } catch (RejectedExecutionException e) { // not expected while the run serves: answer it here
            r.permits.release();
            handle(r, p, request);
        }
    }

    private void handle(Run r, LaneTable.LanePair p, Message<?> request) {
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
        int rc;
        try {
            rc = reply(r, p, record, deadline);
            if (rc == LaneIo.NO_BUFFER) {
                record = codec.encode(error(correlation, "no room for a reply of " + record.length() + " bytes: "
                        + LaneIo.noBuffer(segment, record.length())));
                rc = reply(r, p, record, deadline);
            }
        } catch (RuntimeException e) { // the reply lane's positions damaged, for one: the next requests go on
            failure("writing a reply to peer " + p.client(), e);
            return;
        }
        if (rc != LaneIo.OK && rc != Lane.RESET && rc != LaneIo.STALLED) {
            logger.warn("reply of service '" + service + "' not delivered (" + rc + ")");
        }
    }

    /**
     * Writes a reply; a lane has one writer at a time, and workers reply concurrently (to other pairs
     * too). A client reads its reply lane while a caller of it waits for a reply, and a waiting reader
     * looks at least every {@link LaneIo#SLEEP_NANOS}: a reply lane that stays full and unread for
     * {@link #stallNanos()} has no caller waiting (they timed out), so the reply is dropped rather than
     * waited on up to the reply timeout, and the next replies to that pair are dropped at once while its
     * lane stays so. Otherwise one client that stopped reading would hold up every other client.
     */
    private int reply(Run r, LaneTable.LanePair p, ShmMessageCodec.Encoded record, long deadline) {
        Lane lane = p.toClient();
        synchronized (lane) {
            Long stalledAt = r.stalled.isEmpty() ? null : r.stalled.get(p.index());
            if (stalledAt != null) {
                if (lane.pending() >= stalledAt) { // still unread since: one try, no wait
                    int rc = LaneIo.write(segment, lane, record, r.memfds, System.nanoTime());
                    return rc == LaneIo.TIMEOUT ? LaneIo.STALLED : rc;
                }
                r.stalled.remove(p.index()); // its client reads again
            }
            int rc = LaneIo.write(segment, lane, record, r.memfds, deadline, stallNanos());
            if (rc == LaneIo.STALLED) {
                r.stalled.put(p.index(), lane.pending());
                logger.warn("the reply lane of service '" + service + "' to peer " + p.client() + " stayed full and "
                        + "unread for " + TimeUnit.NANOSECONDS.toMillis(stallNanos()) + " ms: its replies are "
                        + "dropped while it stays so (no caller of that client waits for them)");
            }
            return rc;
        }
    }

    /** How long a full reply lane may go unread before its replies are dropped: 1 s, or the liveness timeout if longer. */
    private long stallNanos() {
        return Math.max(TimeUnit.SECONDS.toNanos(1), segment.options().livenessTimeout().toNanos());
    }

    private static Message<?> error(Object correlation, String text) {
        return MessageBuilder.withPayload(text).setHeader(ShmHeaders.CORRELATION, correlation)
                .setHeader(ShmHeaders.ERROR, text).build();
    }
}
