package dev.shm.spring.dsl;

import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.segment.Segment;
import dev.shm.spring.channel.SubscribableShmChannel;
import java.time.Duration;
import org.springframework.integration.dsl.MessageChannelSpec;

/** Configures a {@link SubscribableShmChannel}. */
public class ShmSubscribableChannelSpec extends MessageChannelSpec<ShmSubscribableChannelSpec, SubscribableShmChannel> {

    /**
     * Creates the spec.
     *
     * @param segment the segment that holds the channel
     * @param channel the channel's name
     * @param options the channel's declaration
     */
    protected ShmSubscribableChannelSpec(Segment segment, String channel, ChannelOptions options) {
        this.channel = new SubscribableShmChannel(segment, channel, options, null, true);
    }

    /**
     * @param group the consumer group of this process
     * @return this spec
     */
    public ShmSubscribableChannelSpec group(String group) {
        this.channel.setGroup(group);
        return this;
    }

    /**
     * @param exclusive whether this process's member holds its group alone: the cheapest receive path;
     *     no other member of this or another process may join the group while it lives (default
     *     {@code false}: members compete)
     * @return this spec
     */
    public ShmSubscribableChannelSpec exclusive(boolean exclusive) {
        this.channel.setExclusive(exclusive);
        return this;
    }

    /**
     * @param concurrency how many members of the group this process runs, each with a thread of its
     *     own (default 1); they compete for messages, so per-producer order no longer holds; 1 when exclusive
     * @return this spec
     */
    public ShmSubscribableChannelSpec concurrency(int concurrency) {
        this.channel.setConcurrency(concurrency);
        return this;
    }

    /**
     * @param required whether the group gates producers (default {@code true})
     * @return this spec
     */
    public ShmSubscribableChannelSpec required(boolean required) {
        this.channel.setRequired(required);
        return this;
    }

    /**
     * Makes the channel point-to-point: every process joins the one group {@code point-to-point},
     * and a message reaches one handler of one process.
     *
     * @return this spec
     */
    public ShmSubscribableChannelSpec pointToPoint() {
        this.channel.setBroadcast(false);
        this.channel.setGroup(dev.shm.spring.channel.AbstractShmChannel.POINT_TO_POINT_GROUP);
        return this;
    }

    /**
     * @param drainTimeout the longest wait on stop for the message in hand and sends in progress
     * @return this spec
     */
    public ShmSubscribableChannelSpec drainTimeout(Duration drainTimeout) {
        this.channel.setDrainTimeout(drainTimeout);
        return this;
    }
}
