package dev.shm.spring.autoconfigure;

import dev.shm.core.segment.Segment;
import dev.shm.spring.metrics.ShmMetrics;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.MeterBinder;
import java.util.List;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBooleanProperty;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;

/**
 * Auto-configuration of the shm meters: a {@link ShmMetrics} binder over every {@link Segment}
 * bean, when Micrometer is on the class path and a {@link MeterRegistry} is configured.
 */
@AutoConfiguration(after = ShmAutoConfiguration.class, afterName = {
        "org.springframework.boot.micrometer.metrics.autoconfigure.MetricsAutoConfiguration",
        "org.springframework.boot.micrometer.metrics.autoconfigure.CompositeMeterRegistryAutoConfiguration"})
@ConditionalOnClass(MeterBinder.class)
@ConditionalOnBooleanProperty(name = "shm.enabled", matchIfMissing = true)
@ConditionalOnBean({MeterRegistry.class, Segment.class})
@EnableConfigurationProperties(ShmMetricsProperties.class)
public final class ShmMetricsAutoConfiguration {

    /** Creates the auto-configuration. */
    public ShmMetricsAutoConfiguration() {
    }

    @Bean(destroyMethod = "close")
    @ConditionalOnMissingBean
    ShmMetrics shmMetrics(List<Segment> segments, ShmMetricsProperties properties) {
        if (properties.getRefreshInterval() == null || !properties.getRefreshInterval().isPositive()) {
            throw new InvalidShmPropertyException("shm.metrics.refresh-interval", properties.getRefreshInterval(),
                    "the refresh interval must be positive", "set it, e.g. to 10s");
        }
        // Injected as a list, so that the segments close after the meters that read them.
        return new ShmMetrics(segments, properties.getRefreshInterval());
    }
}
