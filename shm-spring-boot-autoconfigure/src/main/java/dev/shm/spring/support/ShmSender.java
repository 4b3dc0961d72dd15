package dev.shm.spring.support;

import dev.shm.core.ring.Backpressure;
import dev.shm.core.ring.Channel;
import dev.shm.core.ring.SendOutcome;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.springframework.messaging.Message;
import org.springframework.messaging.MessageDeliveryException;

/**
 * Encodes Spring messages and sends them to a channel's ring, keeping count of the sends in
 * progress so that {@link #close(Duration)} lets them finish before the ring is let go.
 *
 * <p>Thread-safety: {@link #send} from any thread.
 */
public final class ShmSender {

    private final Channel channel;
    private final ShmMessageCodec codec;
    private final AtomicInteger inFlight = new AtomicInteger();
    private volatile boolean closed;
    /** The channel's send timeout: the longest any send waits for room. */
    private final long maxWaitMillis;
    /** The first pause before a send tries a full pool again; it doubles up to 32 times this. */
    private static final long RETRY_PARK_NANOS = 50_000L;

    /**
     * Creates a sender.
     *
     * @param channel the channel's ring
     * @param codec the codec
     */
    public ShmSender(Channel channel, ShmMessageCodec codec) {
        this.channel = channel;
        this.codec = codec;
        this.maxWaitMillis = channel.options().sendTimeout().toMillis();
    }

    /**
     * Returns the channel.
     *
     * @return the ring this sender sends to
     */
    public Channel channel() {
        return channel;
    }

    /**
     * Encodes and sends a message.
     *
     * @param message the message
     * @return {@link SendOutcome#SENT} or {@link SendOutcome#DROPPED} (the channel drops when full):
     *     the message was accepted; {@link SendOutcome#FULL} or {@link SendOutcome#TIMEOUT}: it was not
     * @throws MessageDeliveryException when the sender is closed, the payload cannot be encoded, or
     *     no buffer is left for it (on a {@code block} channel: none came free within the wait)
     */
    public SendOutcome send(Message<?> message) {
        return send(message, -1);
    }

    /**
     * Encodes and sends a message, waiting for room on a full {@code block} channel up to
     * {@code timeoutMillis} when that is shorter than the channel's send timeout: Spring's
     * {@code MessageChannel.send(message, timeout)}. The channel's send timeout stays the longest
     * wait, since Spring Integration's endpoints pass their default timeout (30 s) to every send.
     *
     * @param message the message
     * @param timeoutMillis the longest wait for room; negative: the channel's send timeout; 0: no wait
     * @return as {@link #send(Message)}
     * @throws MessageDeliveryException as {@link #send(Message)}
     */
    public SendOutcome send(Message<?> message, long timeoutMillis) {
        inFlight.incrementAndGet();
        try {
            if (closed) {
                throw new MessageDeliveryException(message, "shm channel '" + channel.name() + "' is closed");
            }
            ShmMessageCodec.Encoded record;
            try {
                record = codec.encode(message);
            } catch (ShmCodecException e) {
                throw new MessageDeliveryException(message, e.getMessage(), e);
            }
            boolean full = timeoutMillis < 0 || timeoutMillis >= maxWaitMillis;
            long waitMillis = full ? maxWaitMillis : timeoutMillis;
            SendOutcome outcome = send(record, TimeUnit.MILLISECONDS.toNanos(waitMillis));
            if (outcome == SendOutcome.NO_BUFFER && channel.options().backpressure() == Backpressure.BLOCK
                    && waitMillis > 0) {
                // A block channel waits for a buffer as it waits for a slot of the ring: its consumers
                // free pool slots and end memfd leases as they go. The ring's own wait comes out of
                // the same time.
                long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(waitMillis);
                int retries = 0;
                while (outcome == SendOutcome.NO_BUFFER && !closed && !Thread.currentThread().isInterrupted()) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        break;
                    }
                    // No spinning: each try of a full pool counts an exhausted allocation and tries to
                    // grow the pool under the segment's lock.
                    LockSupport.parkNanos(Math.min(left, RETRY_PARK_NANOS << Math.min(retries++, 5)));
                    outcome = send(record, Math.max(0, deadline - System.nanoTime()));
                }
                if (outcome == SendOutcome.NO_BUFFER && (closed || Thread.currentThread().isInterrupted())) {
                    throw new MessageDeliveryException(message, "shm channel '" + channel.name() + "' "
                            + (closed ? "closed" : "send interrupted") + " while the send waited for a pool slot");
                }
            }
            if (outcome == SendOutcome.NO_BUFFER) {
                throw new MessageDeliveryException(message, "no room for a record of " + record.length()
                        + " bytes on shm channel '" + channel.name() + "': the segment's slot pool is exhausted or "
                        + "its memfd lease table is full" + (channel.options().backpressure() == Backpressure.BLOCK
                        ? " for the send timeout (" + waitMillis + " ms)" : "")
                        + "; raise the slot classes' count or the segment's size");
            }
            return outcome;
        } finally {
            inFlight.decrementAndGet();
        }
    }

    /** Sends a record, its tail (a large {@code byte[]} payload) copied straight into the ring's buffer. */
    private SendOutcome send(ShmMessageCodec.Encoded record, long timeoutNanos) {
        byte[] tail = record.tail();
        if (tail == null) {
            return channel.send(record.head(), 0, record.headLength(), timeoutNanos, TimeUnit.NANOSECONDS);
        }
        return channel.send(record.head(), record.headLength(), MemorySegment.ofArray(tail), tail.length, timeoutNanos,
                TimeUnit.NANOSECONDS);
    }

    /**
     * Refuses new sends, waits (bounded) for those in progress, and closes the channel — which
     * itself waits, up to its send timeout, until the receivers have read what travelled in memfd
     * buffers of this process.
     *
     * @param timeout the longest wait for sends in progress
     */
    public void close(Duration timeout) {
        closed = true;
        long deadline = System.nanoTime() + timeout.toNanos();
        while (inFlight.get() > 0 && System.nanoTime() - deadline < 0) {
            LockSupport.parkNanos(1_000_000);
        }
        channel.close();
    }
}
