package dev.shm.spring.autoconfigure;

import dev.shm.core.segment.Segment;
import dev.shm.spring.endpoint.ShmEndpoint;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.actuate.autoconfigure.endpoint.condition.ConditionalOnAvailableEndpoint;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBooleanProperty;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * Auto-configuration of the {@code shm} actuator endpoint, when the actuator is on the class path
 * and the endpoint is available ({@code management.endpoints.web.exposure.include=shm} exposes it
 * over HTTP).
 */
@AutoConfiguration(after = ShmAutoConfiguration.class)
@ConditionalOnClass(name = "org.springframework.boot.actuate.autoconfigure.endpoint.condition.ConditionalOnAvailableEndpoint")
@ConditionalOnBooleanProperty(name = "shm.enabled", matchIfMissing = true)
public final class ShmEndpointAutoConfiguration {

    /** Creates the auto-configuration. */
    public ShmEndpointAutoConfiguration() {
    }

    /** The endpoint; nested so that its condition is read only when the actuator is there. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnAvailableEndpoint(ShmEndpoint.class)
    static class EndpointConfiguration {

        @Bean
        @ConditionalOnMissingBean
        ShmEndpoint shmEndpoint(ObjectProvider<Segment> segments) {
            return new ShmEndpoint(segments.orderedStream().toList());
        }
    }
}
