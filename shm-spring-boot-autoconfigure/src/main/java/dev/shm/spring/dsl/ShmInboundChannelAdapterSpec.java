package dev.shm.spring.dsl;

import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.segment.Segment;
import dev.shm.spring.inbound.ShmInboundChannelAdapter;
import dev.shm.spring.support.ShmMessageCodec;
import java.time.Duration;
import org.springframework.integration.dsl.MessageProducerSpec;

/** Configures a {@link ShmInboundChannelAdapter}. */
public class ShmInboundChannelAdapterSpec
        extends MessageProducerSpec<ShmInboundChannelAdapterSpec, ShmInboundChannelAdapter> {

    /**
     * Creates the spec.
     *
     * @param segment the segment that holds the channel
     * @param channel the channel's name
     */
    protected ShmInboundChannelAdapterSpec(Segment segment, String channel) {
        super(new ShmInboundChannelAdapter(segment, channel));
    }

    /**
     * @param group the consumer group this process joins
     * @return this spec
     */
    public ShmInboundChannelAdapterSpec group(String group) {
        this.target.setGroup(group);
        return this;
    }

    /**
     * @param exclusive whether this process's member holds its group alone: the cheapest receive path;
     *     no other member of this or another process may join the group while it lives (default
     *     {@code false}: members compete)
     * @return this spec
     */
    public ShmInboundChannelAdapterSpec exclusive(boolean exclusive) {
        this.target.setExclusive(exclusive);
        return this;
    }

    /**
     * @param concurrency how many members of the group this adapter runs, each with a thread of its
     *     own (default 1); they compete for messages, so per-producer order no longer holds; 1 when exclusive
     * @return this spec
     */
    public ShmInboundChannelAdapterSpec concurrency(int concurrency) {
        this.target.setConcurrency(concurrency);
        return this;
    }

    /**
     * @param required whether the group gates producers (default {@code true})
     * @return this spec
     */
    public ShmInboundChannelAdapterSpec required(boolean required) {
        this.target.setRequired(required);
        return this;
    }

    /**
     * @param options the channel's declaration: every process must declare it alike
     * @return this spec
     */
    public ShmInboundChannelAdapterSpec channelOptions(ChannelOptions options) {
        this.target.setChannelOptions(options);
        return this;
    }

    /**
     * @param codec the codec (default: the application's)
     * @return this spec
     */
    public ShmInboundChannelAdapterSpec codec(ShmMessageCodec codec) {
        this.target.setCodec(codec);
        return this;
    }

    /**
     * @param drainTimeout the longest wait on stop for the message in hand
     * @return this spec
     */
    public ShmInboundChannelAdapterSpec drainTimeout(Duration drainTimeout) {
        this.target.setDrainTimeout(drainTimeout);
        return this;
    }
}
