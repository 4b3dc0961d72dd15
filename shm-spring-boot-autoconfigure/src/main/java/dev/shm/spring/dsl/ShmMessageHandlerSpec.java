package dev.shm.spring.dsl;

import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.segment.Segment;
import dev.shm.spring.outbound.ShmMessageHandler;
import dev.shm.spring.support.ShmMessageCodec;
import java.time.Duration;
import org.springframework.integration.dsl.MessageHandlerSpec;

/** Configures a {@link ShmMessageHandler}, the outbound channel adapter. */
public class ShmMessageHandlerSpec extends MessageHandlerSpec<ShmMessageHandlerSpec, ShmMessageHandler> {

    /**
     * Creates the spec.
     *
     * @param segment the segment that holds the channel
     * @param channel the channel's name
     */
    protected ShmMessageHandlerSpec(Segment segment, String channel) {
        this.target = new ShmMessageHandler(segment, channel);
    }

    /**
     * @param options the channel's declaration: every process must declare it alike
     * @return this spec
     */
    public ShmMessageHandlerSpec channelOptions(ChannelOptions options) {
        this.target.setChannelOptions(options);
        return this;
    }

    /**
     * @param codec the codec (default: the application's)
     * @return this spec
     */
    public ShmMessageHandlerSpec codec(ShmMessageCodec codec) {
        this.target.setCodec(codec);
        return this;
    }

    /**
     * @param drainTimeout the longest wait on destroy for sends in progress
     * @return this spec
     */
    public ShmMessageHandlerSpec drainTimeout(Duration drainTimeout) {
        this.target.setDrainTimeout(drainTimeout);
        return this;
    }
}
