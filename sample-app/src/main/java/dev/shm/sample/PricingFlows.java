package dev.shm.sample;

import dev.shm.core.segment.Segment;
import dev.shm.spring.dsl.Shm;
import java.time.Duration;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Profile;
import org.springframework.integration.dsl.IntegrationFlow;

/** Request-reply across processes: the pricing service and the orders service's side of it. */
@Configuration(proxyBeanMethods = false)
public class PricingFlows {

    /**
     * The pricing service: answers each request with a price.
     *
     * @param demo the segment
     * @return the flow
     */
    @Bean
    @Profile("pricing")
    IntegrationFlow pricingService(Segment demo) {
        return IntegrationFlow.from(Shm.inboundGateway(demo, "pricing"))
                .<String, Long>transform(item -> 100L + Math.abs(item.hashCode() % 400))
                .get();
    }

    /**
     * The orders service's calls: {@link PricingClient} requests go to the pricing service.
     *
     * @param demo the segment
     * @return the flow
     */
    @Bean
    @Profile("orders")
    IntegrationFlow pricingCalls(Segment demo) {
        return IntegrationFlow.from("pricingRequests")
                .handle(Shm.outboundGateway(demo, "pricing").replyTimeout(Duration.ofSeconds(5)))
                .get();
    }
}
