package dev.shm.spring.channel;

import dev.shm.core.ring.Channel;
import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.ring.RingDescriptor;
import dev.shm.core.ring.SendOutcome;
import dev.shm.core.segment.Segment;
import dev.shm.spring.support.ShmRings;
import dev.shm.spring.support.ShmMessageCodec;
import dev.shm.spring.support.ShmSender;
import io.micrometer.observation.ObservationRegistry;
import java.time.Duration;
import org.springframework.integration.channel.AbstractMessageChannel;
import org.springframework.integration.channel.MessagePublishingErrorHandler;
import org.springframework.messaging.Message;
import org.springframework.messaging.MessagingException;

/**
 * The common part of the shm message channels: a ring of a segment, declared when the channel is
 * initialised, that {@code send} writes encoded messages to; and the consumer group this
 * application reads it as.
 */
public abstract class AbstractShmChannel extends AbstractMessageChannel {

    /** Group name used when neither a group nor {@code spring.application.name} is set. */
    public static final String DEFAULT_GROUP = "default";
    /** The group that every process shares on a point-to-point channel. */
    public static final String POINT_TO_POINT_GROUP = dev.shm.spring.autoconfigure.ShmOptions.POINT_TO_POINT_GROUP;

    private final Segment segment;
    private final String channelName;
    private final ChannelOptions options;
    private ShmMessageCodec codec;
    private String group = DEFAULT_GROUP;
    private boolean required = true;
    private boolean exclusive;
    private Duration drainTimeout = Duration.ofSeconds(10);
    /** Whether the application set {@link #drainTimeout}; if not, {@code shm.shutdown.drain-timeout} applies. */
    private boolean drainTimeoutSet;
    private String errorChannelName = "errorChannel";
    private volatile ObservationRegistry receiveRegistry;
    private MessagePublishingErrorHandler errorHandler;
    private Channel ring;
    private ShmSender sender;

    /**
     * Creates the channel.
     *
     * @param segment the segment that holds the ring
     * @param channelName the ring's name in the segment
     * @param options the ring's declaration
     * @param codec the codec; {@code null} for the application's {@code ShmMessageCodec} bean
     */
    protected AbstractShmChannel(Segment segment, String channelName, ChannelOptions options, ShmMessageCodec codec) {
        this.segment = segment;
        this.channelName = channelName;
        this.options = options;
        this.codec = codec;
    }

    /**
     * Sets the consumer group this application reads the channel as.
     *
     * @param group at most 48 UTF-8 bytes
     */
    public void setGroup(String group) {
        if (!RingDescriptor.isGroupName(group)) {
            throw new IllegalArgumentException("group=" + group + " must have 1 to "
                    + RingDescriptor.GROUP_NAME_CAPACITY + " UTF-8 bytes and no control character");
        }
        this.group = group;
    }

    /**
     * Returns the consumer group.
     *
     * @return the group
     */
    public String getGroup() {
        return group;
    }

    /**
     * Sets whether the group gates producers (loses nothing) or may be overrun.
     *
     * @param required whether the group is required
     */
    public void setRequired(boolean required) {
        this.required = required;
    }

    /**
     * Returns whether the group is required.
     *
     * @return whether the group gates producers
     */
    public boolean isRequired() {
        return required;
    }

    /**
     * Sets whether this application's member holds its consumer group alone
     * ({@link dev.shm.core.ring.SubscriptionMode#EXCLUSIVE}): the cheapest receive path, and no other
     * member — of this or another process — may join the group while it lives. Default {@code false}:
     * members compete.
     *
     * @param exclusive whether the member holds the group alone
     */
    public void setExclusive(boolean exclusive) {
        this.exclusive = exclusive;
    }

    /**
     * Returns whether this application's member holds its consumer group alone.
     *
     * @return whether the member is exclusive
     */
    public boolean isExclusive() {
        return exclusive;
    }

    /**
     * Sets the longest wait, on stop, for the message in hand and for sends in progress.
     *
     * @param drainTimeout the bound
     */
    public void setDrainTimeout(Duration drainTimeout) {
        this.drainTimeout = drainTimeout;
        this.drainTimeoutSet = true;
    }

    /**
     * Returns the drain bound: as set, else (once initialized in a context) the application's
     * {@code shm.shutdown.drain-timeout}, else 10 s.
     *
     * @return the longest wait on stop
     */
    public Duration getDrainTimeout() {
        return drainTimeout;
    }

    /**
     * Sets the channel that receives failures of received messages: records that do not decode,
     * handlers that throw. Default {@code errorChannel}.
     *
     * @param errorChannelName the error channel's bean name
     */
    public void setErrorChannelName(String errorChannelName) {
        this.errorChannelName = errorChannelName;
    }

    /**
     * Returns the ring's name in its segment.
     *
     * @return the name
     */
    public String getChannelName() {
        return channelName;
    }

    /**
     * Returns the segment that holds the ring.
     *
     * @return the segment
     */
    public Segment getSegment() {
        return segment;
    }

    /**
     * Returns the ring, once the channel is initialised.
     *
     * @return the ring
     */
    public Channel getRing() {
        return ring;
    }

    @Override
    public void registerObservationRegistry(ObservationRegistry observationRegistry) {
        super.registerObservationRegistry(observationRegistry);
        this.receiveRegistry = observationRegistry;
    }

    /** @return the registry for received messages, or {@code null} */
    protected ObservationRegistry receiveRegistry() {
        return receiveRegistry;
    }

    /** @return the codec */
    protected ShmMessageCodec codec() {
        return codec;
    }

    @Override
    protected void onInit() {
        super.onInit();
        if (!drainTimeoutSet) {
            drainTimeout = ShmRings.drainTimeout(getBeanFactory(), drainTimeout);
        }
        errorHandler = new MessagePublishingErrorHandler();
        errorHandler.setBeanFactory(getBeanFactory());
        errorHandler.setDefaultErrorChannelName(errorChannelName);
        codec = ShmRings.codec(codec, getBeanFactory());
        if (ring == null) {
            ring = ShmRings.declare(segment, channelName, options);
            sender = new ShmSender(ring, codec);
        }
    }

    @Override
    protected boolean doSend(Message<?> message, long timeout) {
        // send(message) passes -1: the channel's send timeout; send(message, timeout) waits no longer than
        // either (ShmSender).
        SendOutcome outcome = sender.send(message, timeout);
        if (outcome == SendOutcome.DROPPED && logger.isDebugEnabled()) {
            logger.debug("shm channel '" + channelName + "' is full; dropped message " + message.getHeaders().getId());
        }
        return outcome == SendOutcome.SENT || outcome == SendOutcome.DROPPED;
    }

    /**
     * Publishes a failure of a received message to the error channel.
     *
     * @param message the message, or (when it did not decode) one that carries the raw record
     * @param failure what went wrong
     */
    protected void publishError(Message<?> message, Throwable failure) {
        MessagingException exception = failure instanceof MessagingException me && me.getFailedMessage() != null
                ? me
                : new MessagingException(message, "failure handling a message from shm channel '" + channelName + "'",
                        failure);
        try {
            errorHandler.handleError(exception);
        } catch (RuntimeException e) {
            logger.error(e, "cannot publish a failure of shm channel '" + channelName + "' to the error channel");
        }
    }

    /** Lets sends in progress finish (bounded) and closes the ring. */
    @Override
    public void destroy() {
        super.destroy();
        if (sender != null) {
            sender.close(drainTimeout);
        }
    }
}
