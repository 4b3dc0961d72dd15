package dev.shm.spring.inbound;

import dev.shm.core.ring.Channel;
import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.ring.RingDescriptor;
import dev.shm.core.segment.Segment;
import dev.shm.spring.support.ShmConsumer;
import dev.shm.spring.support.ShmMessageCodec;
import dev.shm.spring.support.ShmRings;
import java.time.Duration;
import org.springframework.integration.channel.MessagePublishingErrorHandler;
import org.springframework.integration.core.Pausable;
import org.springframework.integration.endpoint.MessageProducerSupport;
import org.springframework.messaging.Message;
import org.springframework.messaging.MessagingException;

/**
 * An inbound channel adapter: a member of a consumer group of a shm channel that sends what it
 * receives to its output channel.
 *
 * <p>Failures — a record that does not decode (a {@code ShmDecodingException} with the raw
 * record), a downstream exception — go to the adapter's error channel, else to
 * {@code errorChannel}; the adapter goes on with the next message. On stop it takes no new
 * message, finishes the one in hand (bounded by the drain timeout) and leaves the group.
 *
 * {@snippet :
 * IntegrationFlow.from(Shm.inboundAdapter(segment, "orders").group("billing"))
 *         .handle(billing::charge)
 *         .get();
 * }
 */
public class ShmInboundChannelAdapter extends MessageProducerSupport implements Pausable {

    private final Segment segment;
    private final String channelName;
    private ChannelOptions options = ChannelOptions.defaults();
    private ShmMessageCodec codec;
    private String group = "default";
    private boolean required = true;
    private boolean exclusive;
    private int concurrency = 1;
    private Duration drainTimeout = Duration.ofSeconds(10);
    /** Whether the application set {@link #drainTimeout}; if not, {@code shm.shutdown.drain-timeout} applies. */
    private boolean drainTimeoutSet;
    private MessagePublishingErrorHandler fallbackErrors;
    private Channel ring;
    private volatile ShmConsumer consumer;
    /** The consumer stopped last, whose thread may still finish a message. */
    private volatile ShmConsumer previous;

    /**
     * Creates the adapter.
     *
     * @param segment the segment that holds the channel
     * @param channelName the channel's name in the segment
     */
    public ShmInboundChannelAdapter(Segment segment, String channelName) {
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

    /** @param group the consumer group, 1 to 48 UTF-8 bytes (default {@code default}) */
    public void setGroup(String group) {
        if (!RingDescriptor.isGroupName(group)) {
            throw new IllegalArgumentException("group=" + group + " must have 1 to "
                    + RingDescriptor.GROUP_NAME_CAPACITY + " UTF-8 bytes and no control character");
        }
        this.group = group;
    }

    /** @param required whether the group gates producers (default {@code true}) */
    public void setRequired(boolean required) {
        this.required = required;
    }

    /**
     * @param exclusive whether this adapter's member holds its group alone, so that no other member of
     *     this or another process may join it while it lives (default {@code false}: members compete)
     */
    public void setExclusive(boolean exclusive) {
        this.exclusive = exclusive;
    }

    /**
     * @param concurrency how many members of the group this adapter runs, each with a thread of its
     *     own (default 1); they compete for messages, so per-producer order no longer holds; 1 when exclusive
     * @throws IllegalArgumentException below 1
     */
    public void setConcurrency(int concurrency) {
        if (concurrency < 1) {
            throw new IllegalArgumentException("concurrency=" + concurrency + " of the inbound adapter of channel '"
                    + channelName + "' must be at least 1");
        }
        this.concurrency = concurrency;
    }

    /** @param drainTimeout the longest wait on stop for the messages in hand */
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

    /** @return the consumer group */
    public String getGroup() {
        return group;
    }

    @Override
    public String getComponentType() {
        return "shm:inbound-channel-adapter";
    }

    @Override
    protected void onInit() {
        super.onInit();
        if (!drainTimeoutSet) {
            drainTimeout = ShmRings.drainTimeout(getBeanFactory(), drainTimeout);
        }
        codec = ShmRings.codec(codec, getBeanFactory());
        fallbackErrors = new MessagePublishingErrorHandler();
        fallbackErrors.setBeanFactory(getBeanFactory());
        fallbackErrors.setDefaultErrorChannelName("errorChannel");
        ring = ShmRings.declare(segment, channelName, options);
        if (isAutoStartup()) {
            // Joined when the adapter starts, with the other message producers: what those of this
            // application send into the channel first is kept for the group.
            ShmRings.declareGroup(ring, group, required);
        }
    }

    @Override
    protected void doStart() {
        ShmConsumer c = new ShmConsumer(ring, group, required, exclusive, concurrency, codec, this::sendMessage,
                this::onFailure);
        c.startAfter(previous, drainTimeout);
        previous = null;
        consumer = c;
    }

    private void onFailure(Message<?> message, Throwable failure) {
        Exception exception = failure instanceof Exception e ? e : new MessagingException(message, failure.toString(),
                failure);
        if (!sendErrorMessageIfNecessary(message, exception)) {
            fallbackErrors.handleError(exception instanceof MessagingException me && me.getFailedMessage() != null ? me
                    : new MessagingException(message, "failure handling a message from shm channel '" + channelName
                    + "'", exception));
        }
    }

    @Override
    protected void doStop() {
        ShmConsumer c = consumer;
        consumer = null;
        if (c != null) {
            c.stop(drainTimeout);
            previous = c;
        }
    }

    @Override
    public void pause() {
        ShmConsumer c = consumer;
        if (c != null) {
            c.pause();
        }
    }

    @Override
    public void resume() {
        ShmConsumer c = consumer;
        if (c != null) {
            c.resume();
        }
    }

    @Override
    public boolean isPaused() {
        ShmConsumer c = consumer;
        return c != null && c.isPaused();
    }

    @Override
    public void destroy() {
        super.destroy();
        if (ring != null) {
            ring.close();
        }
    }
}
