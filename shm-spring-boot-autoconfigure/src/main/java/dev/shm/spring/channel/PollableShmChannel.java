package dev.shm.spring.channel;

import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.ring.Subscription;
import dev.shm.core.segment.Segment;
import dev.shm.spring.support.RawRecords;
import dev.shm.spring.support.ShmDecodingException;
import dev.shm.spring.support.ShmMessageCodec;
import dev.shm.spring.support.ShmRings;
import java.time.Duration;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import org.springframework.context.SmartLifecycle;
import org.springframework.messaging.Message;
import org.springframework.messaging.PollableChannel;

/**
 * A {@link PollableChannel} over a channel of a segment: {@code receive} takes the next message of
 * this application's consumer group, competing with the group's other members in any process.
 *
 * <p>The group is joined when the channel starts (or at the first {@code receive} before that), so
 * messages sent from then on are kept for it, and left when it stops; a stopped channel's
 * {@code receive} takes nothing and returns {@code null} after its timeout, until it starts again
 * (shutdown stops the channels before the pollers that call it). A record that does not decode goes to
 * the error channel and {@code receive} goes on to the next one. A message whose memfd this process
 * cannot open now (no free descriptor, for one) stays in the ring, and {@code receive} throws the
 * {@link dev.shm.core.MemfdUnavailableException} to its caller (a poller logs it and polls again).
 */
public class PollableShmChannel extends AbstractShmChannel implements PollableChannel, SmartLifecycle {

    private final ReentrantLock lock = new ReentrantLock();
    private Subscription subscription;
    private volatile boolean running;
    /** Set by {@link #stop()} and cleared by {@link #start()}: a stopped channel neither takes nor joins. */
    private volatile boolean stopped;

    /**
     * Creates the channel.
     *
     * @param segment the segment that holds the ring
     * @param channelName the ring's name in the segment
     * @param options the ring's declaration
     * @param codec the codec
     */
    public PollableShmChannel(Segment segment, String channelName, ChannelOptions options, ShmMessageCodec codec) {
        super(segment, channelName, options, codec);
    }

    @Override
    public Message<?> receive() {
        return receive(-1);
    }

    /**
     * Takes the group's next message, waiting up to {@code timeout} ms; a negative timeout waits
     * until a message comes, zero does not wait.
     *
     * @param timeout milliseconds
     * @return the message, or {@code null}
     * @throws dev.shm.core.MemfdUnavailableException when the next message's memfd cannot be opened
     *     now; the message stays in the ring for a later {@code receive}
     */
    @Override
    public Message<?> receive(long timeout) {
        if (timeout < 0) {
            Message<?> message;
            do {
                message = receive(1000);
            } while (message == null && !Thread.currentThread().isInterrupted());
            return message;
        }
        if (stopped) {
            // Stopped (by shutdown, whose pollers stop after the channels, or by the application):
            // it takes nothing, and does not join the group again, until it is started again.
            if (timeout > 0) {
                LockSupport.parkNanos(timeout * 1_000_000);
            }
            return null;
        }
        long deadline = System.nanoTime() + Math.max(0, timeout) * 1_000_000;
        Object[] holder = new Object[1];
        lock.lock();
        try {
            if (stopped) {
                return null; // stopped while this waited for the lock
            }
            Subscription sub = subscription();
            while (true) {
                long left = deadline - System.nanoTime();
                int n = timeout <= 0 ? sub.poll(m -> holder[0] = decode(m), 1)
                        : sub.take(m -> holder[0] = decode(m), 1, Duration.ofNanos(Math.max(0, left)));
                if (n > 0 && holder[0] instanceof Message<?> message) {
                    return message;
                }
                if (n == 0 || System.nanoTime() - deadline >= 0) {
                    return null; // nothing came, or only records that failed
                }
            }
        } finally {
            lock.unlock();
        }
    }

    private Object decode(dev.shm.core.ring.Message m) {
        try {
            return codec().decode(m.buffer(), m.offset(), m.length(), getChannelName(), m.isRedelivered());
        } catch (RuntimeException e) {
            Message<byte[]> raw = RawRecords.of(m.toByteArray(), getChannelName(), m.isRedelivered());
            publishError(raw, new ShmDecodingException(raw, e));
            return null;
        }
    }

    /**
     * Declares the ring, then creates the consumer group unless it exists: a pollable channel joins
     * its group at the first {@code receive} or when it starts, and what this application's
     * producers send before that is kept for the group.
     */
    @Override
    protected void onInit() {
        super.onInit();
        ShmRings.declareGroup(getRing(), getGroup(), isRequired());
    }

    private Subscription subscription() {
        if (subscription == null) {
            subscription = ShmRings.subscribe(getRing(), getGroup(), isRequired(), isExclusive());
        }
        return subscription;
    }

    @Override
    public void start() {
        lock.lock();
        try {
            stopped = false;
            subscription();
            running = true;
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void stop() {
        running = false;
        stopped = true;
        lock.lock();
        try {
            if (subscription != null) {
                subscription.close();
                subscription = null;
            }
        } finally {
            lock.unlock();
        }
    }

    @Override
    public boolean isRunning() {
        return running;
    }

    @Override
    public int getPhase() {
        return SubscribableShmChannel.DEFAULT_PHASE;
    }

    @Override
    public void destroy() {
        stop();
        super.destroy();
    }
}
