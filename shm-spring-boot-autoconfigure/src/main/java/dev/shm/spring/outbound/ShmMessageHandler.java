package dev.shm.spring.outbound;

import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.ring.SendOutcome;
import dev.shm.core.segment.Segment;
import dev.shm.spring.support.ShmMessageCodec;
import dev.shm.spring.support.ShmRings;
import dev.shm.spring.support.ShmSender;
import java.time.Duration;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.integration.handler.AbstractMessageHandler;
import org.springframework.messaging.Message;
import org.springframework.messaging.MessageDeliveryException;

/**
 * An outbound channel adapter: encodes each message and sends it to a shm channel, where every
 * consumer group of any process on the host receives it.
 *
 * <p>A send that finds the ring full fails with a {@link MessageDeliveryException} ({@code block}
 * backpressure after the send timeout, {@code fail} at once); with {@code drop} the message is
 * counted and dropped. On destroy, sends in progress finish (bounded) before the ring is let go.
 */
public class ShmMessageHandler extends AbstractMessageHandler implements DisposableBean {

    private final Segment segment;
    private final String channelName;
    private ChannelOptions options = ChannelOptions.defaults();
    private ShmMessageCodec codec;
    private Duration drainTimeout = Duration.ofSeconds(10);
    /** Whether the application set {@link #drainTimeout}; if not, {@code shm.shutdown.drain-timeout} applies. */
    private boolean drainTimeoutSet;
    private ShmSender sender;

    /**
     * Creates the handler.
     *
     * @param segment the segment that holds the channel
     * @param channelName the channel's name in the segment
     */
    public ShmMessageHandler(Segment segment, String channelName) {
        this.segment = segment;
        this.channelName = channelName;
    }

    /** @param options the channel's declaration (default: shm-core's defaults) */
    public void setChannelOptions(ChannelOptions options) {
        this.options = options;
    }

    /** @param codec the codec (default: the application's {@code ShmMessageCodec} bean) */
    public void setCodec(ShmMessageCodec codec) {
        this.codec = codec;
    }

    /** @param drainTimeout the longest wait on destroy for sends in progress */
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
    public String getComponentType() {
        return "shm:outbound-channel-adapter";
    }

    @Override
    protected void onInit() {
        super.onInit();
        if (!drainTimeoutSet) {
            drainTimeout = ShmRings.drainTimeout(getBeanFactory(), drainTimeout);
        }
        codec = ShmRings.codec(codec, getBeanFactory());
        sender = new ShmSender(ShmRings.declare(segment, channelName, options), codec);
    }

    @Override
    protected void handleMessageInternal(Message<?> message) {
        SendOutcome outcome = sender.send(message);
        if (outcome == SendOutcome.FULL || outcome == SendOutcome.TIMEOUT) {
            throw new MessageDeliveryException(message, "shm channel '" + channelName + "' is full (" + outcome
                    + "): its slowest required consumer group is a whole ring behind, or the slot the message needs"
                    + " is still held by the ring's previous lap (a slow or stalled producer, or damage)");
        }
    }

    @Override
    public void destroy() {
        if (sender != null) {
            sender.close(drainTimeout);
        }
    }
}
