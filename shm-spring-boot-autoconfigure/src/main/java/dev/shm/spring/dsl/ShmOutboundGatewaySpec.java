package dev.shm.spring.dsl;

import dev.shm.core.segment.Segment;
import dev.shm.spring.gateway.ShmOutboundGateway;
import dev.shm.spring.support.ShmMessageCodec;
import java.time.Duration;
import org.springframework.integration.dsl.MessageHandlerSpec;

/** Configures a {@link ShmOutboundGateway}. */
public class ShmOutboundGatewaySpec extends MessageHandlerSpec<ShmOutboundGatewaySpec, ShmOutboundGateway> {

    /**
     * Creates the spec.
     *
     * @param segment the segment that holds the service
     * @param service the service's name
     */
    protected ShmOutboundGatewaySpec(Segment segment, String service) {
        this.target = new ShmOutboundGateway(segment, service);
    }

    /**
     * @param replyTimeout the longest wait for a reply (default 30 s)
     * @return this spec
     */
    public ShmOutboundGatewaySpec replyTimeout(Duration replyTimeout) {
        this.target.setReplyTimeout(replyTimeout);
        return this;
    }

    /**
     * @param codec the codec (default: the application's)
     * @return this spec
     */
    public ShmOutboundGatewaySpec codec(ShmMessageCodec codec) {
        this.target.setCodec(codec);
        return this;
    }
}
