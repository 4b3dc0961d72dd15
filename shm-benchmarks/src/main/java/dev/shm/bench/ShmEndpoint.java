package dev.shm.bench;

import dev.shm.core.ring.Backpressure;
import dev.shm.core.ring.Channel;
import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.ring.Message;
import dev.shm.core.ring.MessageHandler;
import dev.shm.core.ring.RingDescriptor;
import dev.shm.core.ring.SendOutcome;
import dev.shm.core.ring.Subscription;
import dev.shm.core.ring.SubscriptionMode;
import dev.shm.core.ring.WaitStrategy;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentOptions;
import dev.shm.core.segment.SlotClass;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Our channel: one segment in the run's directory, a single-producer channel {@code ping} (parent to
 * child) and, for round trips, {@code pong} (child to parent), each with one required group whose one
 * member subscribes {@link SubscriptionMode#EXCLUSIVE} ({@code SHM_SHARED=1} in the environment makes
 * both members {@link SubscriptionMode#SHARED}, for comparison). Busy-spin
 * for {@link Kind#SHM}; {@link WaitStrategy#BLOCKING} for {@link Kind#BLOCKING}, whose receive calls
 * wait in {@code take} (a futex sleep) instead of polling.
 *
 * <p>Payloads up to 4 KiB travel inline in slots sized to fit them (rounded to 32 bytes);
 * larger ones in a pool slot of a class sized to fit them (never through a memfd), with a ring of 16
 * slots so that the pool is never the limit.
 */
final class ShmEndpoint extends Endpoint {

    private static final int INLINE_MAX = 4096;
    /** Each group has one member, which says so: the cheapest receiving path (SHM_SHARED=1 measures the other). */
    private static final SubscriptionMode MODE = "1".equals(System.getenv("SHM_SHARED")) ? SubscriptionMode.SHARED
            : SubscriptionMode.EXCLUSIVE;
    private static final Duration TAKE_TIMEOUT = Duration.ofSeconds(1);

    private final Segment segment;
    private final Channel ping;
    private final Channel pong;
    private final Subscription subscription;
    private final Channel echoTo;
    private final MemorySegment source;
    private final int payload;
    private final boolean blocking;
    private final MessageHandler receiver = this::onMessage;
    private final MessageHandler echoer = this::onEcho;

    ShmEndpoint(Spec spec, boolean parent) {
        this.payload = spec.payload();
        this.blocking = spec.kind() == Kind.BLOCKING;
        this.segment = Segment.open(segmentOptions(spec), parent ? "sender" : "receiver");
        ChannelOptions options = channelOptions(spec);
        this.ping = Channel.declare(segment, "ping", options);
        boolean twoWay = spec.mode() == Spec.Mode.RTT;
        this.pong = twoWay ? Channel.declare(segment, "pong", options) : null;
        if (parent) {
            ping.subscribe("receiver", true).close(); // the group exists before the first message
            this.subscription = twoWay ? pong.subscribe("sender", true, MODE) : null;
            this.echoTo = null;
        } else {
            this.subscription = ping.subscribe("receiver", true, MODE);
            this.echoTo = pong;
        }
        this.source = Arena.ofAuto().allocate(payload, 64);
    }

    /**
     * The segment both JVMs open: a pool class that fits the payload when it does not travel inline.
     *
     * @param spec the run
     * @return the options
     */
    static SegmentOptions segmentOptions(Spec spec) {
        List<SlotClass> classes = new ArrayList<>();
        classes.add(new SlotClass(4096, 64));
        if (spec.payload() > INLINE_MAX) {
            classes.add(new SlotClass(roundUp(spec.payload(), 64), 40));
        }
        return SegmentOptions.named("bench").withDirectory(spec.dir()).withSize(1L << 30).withMaxPeers(4)
                .withSlotClasses(classes);
    }

    /**
     * The channels' options: single producer, one group, BLOCK on a full ring (waiting with the
     * channel's strategy), slots that hold the payload inline up to 4 KiB ({@link #inlineSlotSize}).
     *
     * @param spec the run
     * @return the options
     */
    static ChannelOptions channelOptions(Spec spec) {
        boolean inline = spec.payload() <= INLINE_MAX;
        return ChannelOptions.defaults()
                .withMaxGroups(1)
                .withCapacity(inline ? 4096 : 16)
                .withSlotSize(inline ? inlineSlotSize(RingDescriptor.SLOT_BODY_OFFSET, spec.payload()) : 128)
                .withSingleProducer(true)
                .withBackpressure(Backpressure.BLOCK)
                .withSendTimeout(Duration.ofSeconds(30))
                .withWaitStrategy(spec.kind() == Kind.BLOCKING ? WaitStrategy.BLOCKING : WaitStrategy.BUSY_SPIN);
    }

    private static int roundUp(int value, int alignment) {
        return (value + alignment - 1) / alignment * alignment;
    }

    @Override
    public void send(long stamp) {
        source.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, stamp);
        sendFrom(ping, source, 0, payload);
    }

    private static void sendFrom(Channel channel, MemorySegment from, long offset, long length) {
        while (true) {
            SendOutcome outcome = channel.send(from, offset, length);
            if (outcome == SendOutcome.SENT) {
                return;
            }
            if (outcome != SendOutcome.NO_BUFFER) {
                throw new IllegalStateException("send to channel '" + channel.name() + "' returned " + outcome);
            }
            Thread.onSpinWait(); // the pool is momentarily empty: the receiver frees slots as it goes
            checkAborted();
        }
    }

    @Override
    public int poll(int limit) {
        return blocking ? subscription.take(receiver, limit, TAKE_TIMEOUT) : subscription.poll(receiver, limit);
    }

    @Override
    public int echo(int limit) {
        return blocking ? subscription.take(echoer, limit, TAKE_TIMEOUT) : subscription.poll(echoer, limit);
    }

    private void onMessage(Message message) {
        received(message.buffer().get(ValueLayout.JAVA_LONG_UNALIGNED, message.offset()));
    }

    private void onEcho(Message message) {
        received(message.buffer().get(ValueLayout.JAVA_LONG_UNALIGNED, message.offset()));
        sendFrom(echoTo, message.buffer(), message.offset(), message.length());
    }

    @Override
    public void close() {
        if (subscription != null) {
            subscription.close();
        }
        if (pong != null) {
            pong.close();
        }
        ping.close();
        segment.close();
    }
}
