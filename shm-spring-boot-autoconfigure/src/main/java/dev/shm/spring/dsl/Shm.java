package dev.shm.spring.dsl;

import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.segment.Segment;

/**
 * Factory for the shm components in the Spring Integration Java DSL.
 *
 * {@snippet :
 * @Bean
 * IntegrationFlow billing(Segment main) {
 *     return IntegrationFlow.from(Shm.inboundAdapter(main, "orders").group("billing"))
 *             .handle(Shm.outboundGateway(main, "pricing").replyTimeout(Duration.ofSeconds(2)))
 *             .handle(Shm.outboundAdapter(main, "invoices"))
 *             .get();
 * }
 * }
 */
public final class Shm {

    private Shm() {
    }

    /**
     * An inbound channel adapter: this process joins a consumer group of a channel.
     *
     * @param segment the segment that holds the channel
     * @param channel the channel's name
     * @return the spec
     */
    public static ShmInboundChannelAdapterSpec inboundAdapter(Segment segment, String channel) {
        return new ShmInboundChannelAdapterSpec(segment, channel);
    }

    /**
     * An outbound channel adapter: messages are sent to a channel.
     *
     * @param segment the segment that holds the channel
     * @param channel the channel's name
     * @return the spec
     */
    public static ShmMessageHandlerSpec outboundAdapter(Segment segment, String channel) {
        return new ShmMessageHandlerSpec(segment, channel);
    }

    /**
     * An outbound gateway: requests go to the process that provides a service, replies come back.
     *
     * @param segment the segment that holds the service
     * @param service the service's name
     * @return the spec
     */
    public static ShmOutboundGatewaySpec outboundGateway(Segment segment, String service) {
        return new ShmOutboundGatewaySpec(segment, service);
    }

    /**
     * An inbound gateway: this process provides a service.
     *
     * @param segment the segment that holds the service
     * @param service the service's name
     * @return the spec
     */
    public static ShmInboundGatewaySpec inboundGateway(Segment segment, String service) {
        return new ShmInboundGatewaySpec(segment, service);
    }

    /**
     * A subscribable message channel over a shm channel, publish-subscribe by default.
     *
     * @param segment the segment that holds the channel
     * @param channel the channel's name
     * @return the spec
     */
    public static ShmSubscribableChannelSpec channel(Segment segment, String channel) {
        return new ShmSubscribableChannelSpec(segment, channel, ChannelOptions.defaults());
    }

    /**
     * A subscribable message channel over a shm channel declared with other options.
     *
     * @param segment the segment that holds the channel
     * @param channel the channel's name
     * @param options the channel's declaration: every process must declare it alike
     * @return the spec
     */
    public static ShmSubscribableChannelSpec channel(Segment segment, String channel, ChannelOptions options) {
        return new ShmSubscribableChannelSpec(segment, channel, options);
    }

    /**
     * A pollable message channel over a shm channel declared with other options.
     *
     * @param segment the segment that holds the channel
     * @param channel the channel's name
     * @param options the channel's declaration: every process must declare it alike
     * @return the spec
     */
    public static ShmPollableChannelSpec pollableChannel(Segment segment, String channel, ChannelOptions options) {
        return new ShmPollableChannelSpec(segment, channel, options);
    }

    /**
     * A pollable message channel over a shm channel.
     *
     * @param segment the segment that holds the channel
     * @param channel the channel's name
     * @return the spec
     */
    public static ShmPollableChannelSpec pollableChannel(Segment segment, String channel) {
        return new ShmPollableChannelSpec(segment, channel, ChannelOptions.defaults());
    }
}
