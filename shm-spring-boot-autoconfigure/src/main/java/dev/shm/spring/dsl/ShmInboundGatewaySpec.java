package dev.shm.spring.dsl;

import dev.shm.core.segment.Segment;
import dev.shm.spring.gateway.ShmInboundGateway;
import dev.shm.spring.support.ShmMessageCodec;
import java.time.Duration;
import org.springframework.integration.dsl.MessagingGatewaySpec;

/** Configures a {@link ShmInboundGateway}. */
public class ShmInboundGatewaySpec extends MessagingGatewaySpec<ShmInboundGatewaySpec, ShmInboundGateway> {

    /**
     * Creates the spec.
     *
     * @param segment the segment that holds the service
     * @param service the service's name
     */
    protected ShmInboundGatewaySpec(Segment segment, String service) {
        super(new ShmInboundGateway(segment, service));
    }

    /**
     * @param codec the codec (default: the application's)
     * @return this spec
     */
    public ShmInboundGatewaySpec codec(ShmMessageCodec codec) {
        this.target.setCodec(codec);
        return this;
    }

    /**
     * @param concurrency how many requests the provider handles at once (default 1: one at a time,
     *     in arrival order per client; above one, on as many worker threads, replied in completion order)
     * @return this spec
     */
    public ShmInboundGatewaySpec concurrency(int concurrency) {
        this.target.setConcurrency(concurrency);
        return this;
    }

    /**
     * @param drainTimeout the longest wait on stop for the requests in hand
     * @return this spec
     */
    public ShmInboundGatewaySpec drainTimeout(Duration drainTimeout) {
        this.target.setDrainTimeout(drainTimeout);
        return this;
    }
}
