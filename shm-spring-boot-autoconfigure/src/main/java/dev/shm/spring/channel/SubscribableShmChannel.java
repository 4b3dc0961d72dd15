package dev.shm.spring.channel;

import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.segment.Segment;
import dev.shm.spring.support.ShmConsumer;
import dev.shm.spring.support.ShmMessageCodec;
import dev.shm.spring.support.ShmObservations;
import dev.shm.spring.support.ShmRings;
import org.springframework.context.SmartLifecycle;
import org.springframework.integration.dispatcher.AbstractDispatcher;
import org.springframework.integration.dispatcher.BroadcastingDispatcher;
import org.springframework.integration.dispatcher.UnicastingDispatcher;
import org.springframework.messaging.Message;
import org.springframework.messaging.MessageHandler;
import org.springframework.messaging.SubscribableChannel;

/**
 * A {@link SubscribableChannel} over a channel of a segment: {@code send} in any process of the
 * host reaches the handlers subscribed here, as in another process.
 *
 * <p>While at least one handler is subscribed and the channel runs, this process is a member of the
 * channel's consumer group ({@link #setGroup}): every group receives every message, the members of
 * a group — in this and other processes — compete for them. Within the process, a received message
 * goes to every subscribed handler when the channel is publish-subscribe, and to one of them
 * (round-robin) when it is point-to-point.
 *
 * <p>Lifecycle: started late and stopped early ({@link #DEFAULT_PHASE}): on stop the consumer takes
 * no more messages, finishes the one in hand (bounded by the drain timeout) and leaves the group;
 * {@code send} keeps working until the bean is destroyed, when sends in progress finish and the ring
 * is let go.
 */
public class SubscribableShmChannel extends AbstractShmChannel implements SubscribableChannel, SmartLifecycle {

    /** Stops before the endpoints that use the channel, and starts after they subscribed. */
    public static final int DEFAULT_PHASE = Integer.MAX_VALUE - 1000;

    private boolean broadcast;
    private volatile AbstractDispatcher dispatcher;
    private volatile ShmConsumer consumer;
    private int concurrency = 1;
    /** The consumer stopped last, whose thread may still finish a message. */
    private ShmConsumer previous;
    private volatile boolean running;
    private boolean groupDeclared;
    private boolean autoStartup = true;
    private int phase = DEFAULT_PHASE;

    /**
     * Creates the channel.
     *
     * @param segment the segment that holds the ring
     * @param channelName the ring's name in the segment
     * @param options the ring's declaration
     * @param codec the codec
     * @param broadcast whether a received message goes to every handler of this process (publish-subscribe)
     *     or to one (point-to-point)
     */
    public SubscribableShmChannel(Segment segment, String channelName, ChannelOptions options, ShmMessageCodec codec,
                                  boolean broadcast) {
        super(segment, channelName, options, codec);
        this.broadcast = broadcast;
        this.dispatcher = broadcast ? new BroadcastingDispatcher(true) : new UnicastingDispatcher();
    }

    /**
     * Chooses how a received message reaches the handlers of this process: every one
     * (publish-subscribe) or one of them, round-robin (point-to-point). Only before the first
     * handler subscribes.
     *
     * @param broadcast whether every local handler receives each message
     */
    public synchronized void setBroadcast(boolean broadcast) {
        if (dispatcher.getHandlerCount() > 0) {
            throw new IllegalStateException("channel '" + getChannelName() + "' has subscribers already");
        }
        this.broadcast = broadcast;
        this.dispatcher = broadcast ? new BroadcastingDispatcher(true) : new UnicastingDispatcher();
    }

    /**
     * Tells whether every local handler receives each message.
     *
     * @return {@code true} for publish-subscribe
     */
    public boolean isBroadcast() {
        return broadcast;
    }

    @Override
    protected void onInit() {
        super.onInit();
        if (dispatcher instanceof BroadcastingDispatcher broadcasting) {
            broadcasting.setBeanFactory(getBeanFactory());
        }
        if (dispatcher.getHandlerCount() > 0 && !running) {
            declareGroup(); // handlers subscribed before the ring was declared
        }
    }

    @Override
    public boolean subscribe(MessageHandler handler) {
        boolean added = dispatcher.addHandler(handler);
        if (added && !running) {
            try {
                declareGroup();
            } catch (RuntimeException e) {
                dispatcher.removeHandler(handler);
                throw e;
            }
        }
        if (added && running) {
            try {
                startConsumer();
            } catch (RuntimeException e) {
                dispatcher.removeHandler(handler); // not subscribed: a later subscribe tries again
                throw e;
            }
        }
        return added;
    }

    @Override
    public boolean unsubscribe(MessageHandler handler) {
        boolean removed = dispatcher.removeHandler(handler);
        if (removed && dispatcher.getHandlerCount() == 0) {
            stopConsumer();
        }
        return removed;
    }

    /**
     * Returns the handlers subscribed in this process.
     *
     * @return their number
     */
    public int getSubscriberCount() {
        return dispatcher.getHandlerCount();
    }

    /**
     * Sets how many members of the consumer group this application runs, each with a thread of its
     * own (default 1). They compete for the group's messages as members in other processes do, so
     * messages are handled in parallel and per-producer order no longer holds; each message is done
     * for the group only once its handler returned. An exclusive member runs alone.
     *
     * @param concurrency at least 1; exactly 1 when exclusive
     * @throws IllegalArgumentException below 1
     */
    public void setConcurrency(int concurrency) {
        if (concurrency < 1) {
            throw new IllegalArgumentException("concurrency=" + concurrency + " of channel '" + getChannelName()
                    + "' must be at least 1");
        }
        this.concurrency = concurrency;
    }

    /**
     * Returns how many members of the consumer group this application runs.
     *
     * @return the concurrency
     */
    public int getConcurrency() {
        return concurrency;
    }

    /** Pauses the consumer of this process; the group membership stays. */
    public void pause() {
        ShmConsumer c = consumer;
        if (c != null) {
            c.pause();
        }
    }

    /** Resumes the consumer after {@link #pause()}. */
    public void resume() {
        ShmConsumer c = consumer;
        if (c != null) {
            c.resume();
        }
    }

    /**
     * The first handler's subscription, before the channel starts (event-driven endpoints subscribe
     * in the first phase, message producers start in {@code Integer.MAX_VALUE / 2}, this channel in
     * {@link #DEFAULT_PHASE}): creates the group, unless it exists, so that what this application's
     * producers send before the consumer starts is kept for it. Not when the channel does not start
     * with the context: its group then starts when it does.
     */
    private synchronized void declareGroup() {
        if (!groupDeclared && isAutoStartup() && getRing() != null) {
            ShmRings.declareGroup(getRing(), getGroup(), isRequired());
            groupDeclared = true;
        }
    }

    private synchronized void startConsumer() {
        if (consumer != null || dispatcher.getHandlerCount() == 0) {
            return;
        }
        ShmConsumer c = new ShmConsumer(getRing(), getGroup(), isRequired(), isExclusive(), getConcurrency(), codec(),
                this::dispatch, this::publishError);
        c.startAfter(previous, getDrainTimeout());
        previous = null;
        consumer = c;
    }

    private synchronized void stopConsumer() {
        if (consumer != null) {
            consumer.stop(getDrainTimeout());
            previous = consumer;
            consumer = null;
        }
    }

    private void dispatch(Message<?> message) {
        ShmObservations.receive(receiveRegistry(), message, getComponentName(), "message-channel",
                () -> dispatcher.dispatch(message));
    }

    @Override
    public void start() {
        running = true;
        try {
            startConsumer();
        } catch (RuntimeException e) {
            running = false; // not started: a later start() tries again
            throw e;
        }
    }

    @Override
    public void stop() {
        running = false;
        stopConsumer();
    }

    @Override
    public boolean isRunning() {
        return running;
    }

    @Override
    public int getPhase() {
        return phase;
    }

    /**
     * Sets the lifecycle phase.
     *
     * @param phase the phase
     */
    public void setPhase(int phase) {
        this.phase = phase;
    }

    @Override
    public boolean isAutoStartup() {
        return autoStartup;
    }

    /**
     * Sets whether the channel starts consuming with the context.
     *
     * @param autoStartup whether to start with the context
     */
    public void setAutoStartup(boolean autoStartup) {
        this.autoStartup = autoStartup;
    }

    /** Stops the consumer and closes the ring; a handler that subscribes after this creates no group. */
    @Override
    public void destroy() {
        synchronized (this) {
            groupDeclared = true;
        }
        stop();
        super.destroy();
    }
}
