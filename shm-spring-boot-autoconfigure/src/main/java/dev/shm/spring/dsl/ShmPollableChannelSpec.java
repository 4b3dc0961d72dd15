package dev.shm.spring.dsl;

import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.segment.Segment;
import dev.shm.spring.channel.PollableShmChannel;
import org.springframework.integration.dsl.MessageChannelSpec;

/** Configures a {@link PollableShmChannel}. */
public class ShmPollableChannelSpec extends MessageChannelSpec<ShmPollableChannelSpec, PollableShmChannel> {

    /**
     * Creates the spec.
     *
     * @param segment the segment that holds the channel
     * @param channel the channel's name
     * @param options the channel's declaration
     */
    protected ShmPollableChannelSpec(Segment segment, String channel, ChannelOptions options) {
        this.channel = new PollableShmChannel(segment, channel, options, null);
    }

    /**
     * @param group the consumer group of this process
     * @return this spec
     */
    public ShmPollableChannelSpec group(String group) {
        this.channel.setGroup(group);
        return this;
    }

    /**
     * @param exclusive whether this process's member holds its group alone: the cheapest receive path;
     *     no other member of this or another process may join the group while it lives (default
     *     {@code false}: members compete)
     * @return this spec
     */
    public ShmPollableChannelSpec exclusive(boolean exclusive) {
        this.channel.setExclusive(exclusive);
        return this;
    }

    /**
     * @param required whether the group gates producers (default {@code true})
     * @return this spec
     */
    public ShmPollableChannelSpec required(boolean required) {
        this.channel.setRequired(required);
        return this;
    }
}
