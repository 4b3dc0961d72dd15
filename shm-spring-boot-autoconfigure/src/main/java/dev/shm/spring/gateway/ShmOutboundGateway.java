package dev.shm.spring.gateway;

import dev.shm.core.CorruptionException;
import dev.shm.core.MemfdUnavailableException;
import dev.shm.core.lane.Doorbell;
import dev.shm.core.lane.Lane;
import dev.shm.core.lane.LaneMemfds;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.segment.Directory;
import dev.shm.core.segment.Segment;
import dev.shm.spring.support.LaneIo;
import dev.shm.spring.support.ShmHeaders;
import dev.shm.spring.support.ShmMessageCodec;
import dev.shm.spring.support.ShmRings;
import dev.shm.spring.support.UnreadableLog;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongConsumer;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.integration.MessageTimeoutException;
import org.springframework.integration.handler.AbstractReplyProducingMessageHandler;
import org.springframework.integration.support.MessageBuilder;
import org.springframework.messaging.Message;
import org.springframework.messaging.MessageHandlingException;

/**
 * An outbound gateway: sends each request to the process that provides a service on the host and
 * produces its reply.
 *
 * <p>Requests and replies travel on a lane pair of the segment — a pair of single-producer,
 * single-consumer buffers between this process and the provider — opened at the first request.
 * Each request carries a correlation ({@link ShmHeaders#CORRELATION}) that the reply returns;
 * requests from several threads share the pair. A request without a reply within the reply
 * timeout fails with {@link MessageTimeoutException}; a request that failed in the provider fails
 * here with a {@link MessageHandlingException} naming the remote error; a provider that dies fails
 * the requests it had, and the next request goes to its successor.
 *
 * <p>No thread of the gateway's own reads the replies: a requesting thread reads the reply lane
 * itself while it waits, when no other thread does (one reader at a time), and hands each reply it
 * reads to the request it answers. A thread whose reply came leaves the lane to the next waiting
 * thread. So a lone caller's round trip has no thread hand-off on this side: it spins on the lane,
 * then yields, then sleeps on the lane's doorbell, which the provider's reply rings.
 */
public class ShmOutboundGateway extends AbstractReplyProducingMessageHandler implements DisposableBean {

    private final Segment segment;
    private final String service;
    private ShmMessageCodec codec;
    private Duration replyTimeout = Duration.ofSeconds(30);
    private final Map<Long, Pending> pending = new ConcurrentHashMap<>();
    private final AtomicLong correlations = new AtomicLong();
    /** One writer of the request lane at a time; a caller waits for it no longer than its deadline. */
    private final ReentrantLock writeLock = new ReentrantLock();
    /** The memfds of requests above the largest slot class, until their provider read them (safe across threads). */
    private final LaneMemfds memfds;
    /** Held by the one requesting thread that reads the reply lane. */
    private final ReentrantLock readLock = new ReentrantLock();
    private final Lane.FrameHandler replies = this::onReply;
    private final LongConsumer replySleep = this::sleepForReplies;
    private final UnreadableLog unreadable = new UnreadableLog(logger.getLog());
    /** The deadline of the thread that reads the reply lane (written and read under the read lock). */
    private long readDeadline;
    /** The provider whose reply lane the reading thread polls (written and read under the read lock). */
    private int replyFrom;
    private volatile LaneTable.LanePair pair;
    /** The doorbell of the service the last request went to, and that service's entry. */
    private Doorbell requestBell;
    private int requestBellService = -1;
    private volatile boolean running = true;

    /** The longest a waiting thread that does not read the lane parks before it looks again by itself. */
    private static final long FOLLOWER_PARK_NANOS = 10_000_000L;

    /**
     * A request waiting for its reply: its thread, the pair it went out on (set once written), and
     * its outcome, the reply or the failure, set once by whoever finds it.
     */
    private static final class Pending {
        final Thread waiter = Thread.currentThread();
        final AtomicReference<Object> outcome = new AtomicReference<>();
        volatile LaneTable.LanePair pair;
        /** Set while the thread parks in {@code await} for a reader to hand it the reply or the lane. */
        volatile boolean following;

        void complete(Object result) {
            if (outcome.compareAndSet(null, result)) {
                LockSupport.unpark(waiter);
            }
        }
    }

    /**
     * Creates the gateway.
     *
     * @param segment the segment that holds the service
     * @param service the service's name
     */
    public ShmOutboundGateway(Segment segment, String service) {
        this.segment = segment;
        this.service = service;
        this.memfds = new LaneMemfds(segment.leases(), "request-" + service);
    }

    /** @param codec the codec (default: the application's {@code ShmMessageCodec} bean) */
    public void setCodec(ShmMessageCodec codec) {
        this.codec = codec;
    }

    /** @param replyTimeout the longest wait for a reply, including the wait for a provider (default 30 s) */
    public void setReplyTimeout(Duration replyTimeout) {
        this.replyTimeout = replyTimeout;
    }

    @Override
    public String getComponentType() {
        return "shm:outbound-gateway";
    }

    @Override
    protected void doInit() {
        codec = ShmRings.codec(codec, getBeanFactory());
        ShmServices.declare(segment, service);
    }

    @Override
    protected Object handleRequestMessage(Message<?> request) {
        long deadline = System.nanoTime() + replyTimeout.toNanos();
        long correlation = correlations.incrementAndGet();
        Pending waiting = new Pending();
        pending.put(correlation, waiting);
        try {
            Message<?> out = MessageBuilder.fromMessage(request).setHeader(ShmHeaders.CORRELATION, correlation).build();
            send(request, out, deadline, waiting);
            Object outcome = await(waiting, deadline);
            if (outcome == null) {
                if (Thread.currentThread().isInterrupted()) {
                    throw new MessageHandlingException(request, "interrupted waiting for service '" + service + "'");
                }
                throw new MessageTimeoutException(request, "no reply from service '" + service + "' within "
                        + replyTimeout);
            }
            if (outcome instanceof RuntimeException failure) {
                throw new MessageHandlingException(request, "request to service '" + service + "' failed: "
                        + failure.getMessage(), failure);
            }
            Message<?> message = (Message<?>) outcome;
            Object error = message.getHeaders().get(ShmHeaders.ERROR);
            if (error != null) {
                throw new MessageHandlingException(request, "service '" + service + "' failed in the providing "
                        + "process: " + error);
            }
            return MessageBuilder.fromMessage(message).removeHeader(ShmHeaders.CORRELATION);
        } finally {
            pending.remove(correlation);
        }
    }

    private void send(Message<?> request, Message<?> out, long deadline, Pending waiting) {
        try {
            if (!writeLock.tryLock(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                throw late(request); // the callers before it held the lane (full, or no provider) until its deadline
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new MessageHandlingException(request, "interrupted waiting to write a request to service '"
                    + service + "'");
        }
        try {
            memfds.reclaim(); // the memfds of earlier requests that their provider read
            ShmMessageCodec.Encoded record = codec.encode(out);
            for (int attempt = 0; ; attempt++) {
                if (!running) {
                    throw new MessageHandlingException(request, "the gateway to service '" + service + "' was stopped");
                }
                LaneTable.LanePair p = openPair(request, deadline);
                if (System.nanoTime() - deadline >= 0) {
                    throw late(request); // not written: a request its caller no longer waits for is not sent
                }
                waiting.pair = p; // before the write: a reset seen by the reader must fail this request too
                int rc;
                try {
                    rc = LaneIo.write(segment, p.toService(), record, memfds, deadline);
                } catch (CorruptionException e) {
                    // The request lane's positions were damaged (counted): not written. The pair is closed,
                    // which formats it, and the request goes out once more, on a new pair.
                    waiting.pair = null;
                    closeDamaged(p, e);
                    if (attempt > 0) {
                        throw new MessageHandlingException(request, "the lanes to service '" + service
                                + "' were damaged: " + e.getMessage(), e);
                    }
                    continue;
                }
                switch (rc) {
                    case LaneIo.OK -> {
                        requestBell(p.service()).ring(); // the provider may sleep
                        return;
                    }
                    case LaneIo.TIMEOUT -> throw Thread.currentThread().isInterrupted()
                            ? new MessageHandlingException(request, "interrupted writing a request to service '" + service
                                    + "'")
                            : new MessageTimeoutException(request, "the lane to service '" + service + "' stayed full for "
                                    + replyTimeout);
                    case LaneIo.NO_BUFFER -> throw new MessageHandlingException(request, !running
                            ? "the gateway to service '" + service + "' was stopped" // its memfds closed meanwhile
                            : "no room for a request of " + record.length() + " bytes: "
                                    + LaneIo.noBuffer(segment, record.length()));
                    default -> {
                        waiting.pair = null; // not written: it may go out on the next pair
                        Object failed = waiting.outcome.get();
                        if (failed instanceof RuntimeException && running) {
                            // A reset of this pair, seen by the reading thread, failed the request before
                            // the line above; it was never written, so it goes out again instead.
                            waiting.outcome.compareAndSet(failed, null);
                        }
                        resetPair(p, "the provider of service '" + service + "' went away");
                        if (attempt > 0) {
                            throw new MessageHandlingException(request, "the provider of service '" + service
                                    + "' went away");
                        }
                    }
                }
            }
        } finally {
            writeLock.unlock();
        }
    }

    private MessageTimeoutException late(Message<?> request) {
        return new MessageTimeoutException(request, "no reply from service '" + service + "' within " + replyTimeout
                + ": the request was not sent (the requests before it held the lane to the service that long)");
    }

    /** Opens a pair to the current provider, waiting for one until the deadline. */
    private LaneTable.LanePair openPair(Message<?> request, long deadline) {
        LaneTable.LanePair p = pair;
        // A pair is good while it is not reset and its provider still provides the service: another
        // process takes the role over as soon as the provider is dead, before recovery resets its lanes.
        if (p != null && !p.toService().isReset() && segment.directory().entry(p.service()).provider() == p.provider()) {
            return p;
        }
        if (p != null) {
            resetPair(p, "the provider of service '" + service + "' went away");
        }
        Directory directory = segment.directory();
        while (true) {
            OptionalInt index = directory.lookup(service);
            if (index.isPresent()) {
                int provider = directory.entry(index.getAsInt()).provider();
                if (provider >= 0) {
                    LaneTable.LanePair opened = segment.lanes().open(index.getAsInt(), provider);
                    if (opened == null) {
                        throw new MessageHandlingException(request, "every lane of segment " + segment.name()
                                + " is in use; raise the segment's lane count");
                    }
                    synchronized (this) {
                        if (running) { // else destroy has run, or runs: it closes the pair it finds, not this one
                            pair = opened;
                            return opened;
                        }
                    }
                    segment.lanes().close(opened);
                    throw new MessageHandlingException(request, "the gateway to service '" + service + "' was stopped");
                }
            }
            if (!running) { // stopped while waiting for a provider: the write lock is not held for long
                throw new MessageHandlingException(request, "the gateway to service '" + service + "' was stopped");
            }
            if (System.nanoTime() - deadline >= 0) {
                throw new MessageTimeoutException(request, "no process provides service '" + service + "' in segment "
                        + segment.name() + " (waited " + replyTimeout + ")");
            }
            LockSupport.parkNanos(5_000_000);
        }
    }

    /** The service's doorbell (called under the write lock). */
    private Doorbell requestBell(int service) {
        if (service != requestBellService) {
            requestBell = segment.directory().doorbell(service);
            requestBellService = service;
        }
        return requestBell;
    }

    /**
     * Fails the requests that went out on a pair whose lanes were found damaged, and closes the pair:
     * its release formats both lanes, where a reset by recovery would never come (the provider
     * lives), and the next request opens a sound pair.
     */
    private void closeDamaged(LaneTable.LanePair p, CorruptionException e) {
        logger.warn("the lanes to service '" + service + "' were damaged; the pair is closed: " + e.getMessage());
        resetPair(p, "the lanes to service '" + service + "' were damaged: " + e.getMessage());
        try {
            segment.lanes().close(p);
        } catch (RuntimeException f) {
            logger.warn("cannot close the damaged lane pair to service '" + service + "': " + f);
        }
    }

    private void resetPair(LaneTable.LanePair p, String why) {
        synchronized (this) {
            if (pair == p) {
                pair = null;
                p.toClient().wakeReader(); // the reader, asleep on this pair, moves on now
                // Not closed here: its provider is dead, and the segment's recovery releases the entry.
                // Closing it too would race with that recovery, which may then format the lanes of the
                // entry's next pair (shm-core's LaneTable.release formats before its compare-and-set).
            }
        }
        // The memfds of requests its provider never read (one it kept because it could not open it,
        // for one): the lane is reset, so their leases end now, not at this gateway's next request.
        memfds.reclaim();
        RuntimeException failure = new MessageHandlingException(null, why);
        // Only requests that went out on this pair: a reply can no longer come on it.
        pending.values().forEach(w -> {
            if (w.pair == p) {
                w.complete(failure);
            }
        });
    }

    /**
     * Waits for the outcome of {@code waiting} until the deadline: reads the reply lane while no other
     * thread does, else parks until a reader hands the reply over or leaves the lane to this thread.
     *
     * @return the reply, a failure, or {@code null} at the deadline or on interruption
     */
    private Object await(Pending waiting, long deadline) {
        while (true) {
            Object outcome = waiting.outcome.get();
            if (outcome != null) {
                return outcome;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0 || Thread.currentThread().isInterrupted()) {
                return null;
            }
            if (!running) {
                return new IllegalStateException("the gateway was stopped");
            }
            if (readLock.tryLock()) {
                try {
                    readUntil(waiting, deadline);
                } finally {
                    readLock.unlock();
                    handOff();
                }
            } else {
                // Say so before parking, then look at the lock again: a reader that left meanwhile
                // either saw this flag (and unparks this thread) or left before it was set (and this
                // thread sees the lock free). Both are volatile: one of the two sees the other.
                waiting.following = true;
                if (readLock.isLocked()) {
                    LockSupport.parkNanos(this, Math.min(left, FOLLOWER_PARK_NANOS));
                }
                waiting.following = false;
            }
        }
    }

    /**
     * Reads the reply lane, handing each reply to its request, until {@code waiting} has its outcome,
     * the deadline passes, the thread is interrupted or the gateway stops. Called under the read lock.
     */
    private void readUntil(Pending waiting, long deadline) {
        readDeadline = deadline;
        int idle = 0;
        while (waiting.outcome.get() == null && running && !Thread.currentThread().isInterrupted()) {
            if (System.nanoTime() - deadline >= 0) {
                return;
            }
            LaneTable.LanePair p = pair;
            if (p == null) {
                // Reset: the request failed with its pair (resetPair), or went out on the next one.
                idle = LaneIo.idle(idle);
                continue;
            }
            replyFrom = p.provider();
            int n;
            try {
                n = p.toClient().poll(replies, 16);
            } catch (MemfdUnavailableException e) {
                // The reply stays in the lane (and the replies behind it): try again a little later.
                unreadable.unreadable("the outbound gateway of service '" + service + "'", "a reply", e);
                LockSupport.parkNanos(Math.min(UnreadableLog.RETRY.toNanos(), Math.max(0, deadline - System.nanoTime())));
                idle = 0;
                continue;
            } catch (CorruptionException e) {
                // A damaged reply frame or position (counted, and the lane's unread replies dropped): the
                // requests that went out on this pair get no reply now; they fail, and the pair is closed
                // (which formats it) so that the next request opens a sound one.
                closeDamaged(p, e);
                idle = 0;
                continue;
            }
            if (n == Lane.RESET) {
                resetPair(p, "the provider of service '" + service + "' went away");
                idle = 0;
            } else if (n > 0) {
                idle = 0;
            } else if (Thread.currentThread().isVirtual()) {
                idle = LaneIo.idle(idle); // a futex sleep would pin the carrier thread: park instead
            } else {
                idle = LaneIo.idle(idle, replySleep);
            }
        }
    }

    /** The reading thread's sleep on the reply lane's doorbell, which the provider's reply rings; ends by its deadline. */
    private void sleepForReplies(long nanos) {
        LaneTable.LanePair p = pair;
        if (p != null) {
            p.toClient().awaitFrames(Math.min(nanos, readDeadline - System.nanoTime()));
        }
    }

    /** Hands a reply read from the lane to the request it answers (none: it timed out; dropped). */
    private void onReply(short type, MemorySegment payload) {
        try {
            Message<?> reply = LaneIo.decode(segment, codec, type, payload, replyFrom);
            if (reply != null && reply.getHeaders().get(ShmHeaders.CORRELATION) instanceof Long correlation) {
                Pending waiting = pending.get(correlation);
                if (waiting != null) {
                    waiting.complete(reply);
                }
            }
        } catch (MemfdUnavailableException e) {
            throw e; // out of the lane's poll, which then leaves the reply in the lane
        } catch (RuntimeException e) {
            logger.warn(e, "dropped a reply of service '" + service + "' that does not decode");
        }
    }

    /**
     * After a thread left the lane: wakes another thread parked in {@link #await}, which reads it
     * next. (A thread still sending takes the lock itself when it comes to wait.)
     */
    private void handOff() {
        if (pending.size() <= 1) {
            return; // only the thread that left (or nobody) waits
        }
        for (Pending w : pending.values()) {
            if (w.following && w.outcome.get() == null) {
                LockSupport.unpark(w.waiter);
                return;
            }
        }
    }

    @Override
    public void destroy() {
        running = false;
        RuntimeException stopped = new IllegalStateException("the gateway was stopped");
        pending.values().forEach(w -> w.complete(stopped));
        LaneTable.LanePair current = pair;
        if (current != null) {
            current.toClient().wakeReader(); // a requesting thread asleep on it stops reading now
        }
        boolean locked = false;
        try {
            locked = readLock.tryLock(2, TimeUnit.SECONDS); // no thread reads the lane while it closes
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            LaneTable.LanePair p;
            synchronized (this) { // against openPair: a pair opened from now on is closed by its opener
                p = pair;
                pair = null;
            }
            if (p != null && segment.isOpen()) {
                segment.lanes().close(p);
            }
            memfds.close(); // a request being written now discards its memfd (LaneMemfds.written after close)
        } finally {
            if (locked) {
                readLock.unlock();
            }
        }
    }
}
