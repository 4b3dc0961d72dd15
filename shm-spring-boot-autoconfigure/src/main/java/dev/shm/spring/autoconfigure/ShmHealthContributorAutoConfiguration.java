package dev.shm.spring.autoconfigure;

import dev.shm.core.segment.Segment;
import dev.shm.spring.health.ShmHealthIndicator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBooleanProperty;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.health.autoconfigure.contributor.ConditionalOnEnabledHealthIndicator;
import org.springframework.boot.health.contributor.CompositeHealthContributor;
import org.springframework.boot.health.contributor.HealthContributor;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * Auto-configuration of the {@code shm} health contributor: a {@link ShmHealthIndicator} for the
 * segment, or a composite of one per segment, named after the segments, when there are several.
 * {@code management.health.shm.enabled=false} turns it off.
 */
@AutoConfiguration(after = ShmAutoConfiguration.class)
@ConditionalOnClass(name = "org.springframework.boot.health.contributor.HealthContributor")
@ConditionalOnBooleanProperty(name = "shm.enabled", matchIfMissing = true)
@ConditionalOnBean(Segment.class)
public final class ShmHealthContributorAutoConfiguration {

    /** Creates the auto-configuration. */
    public ShmHealthContributorAutoConfiguration() {
    }

    /** The contributor; nested so that its condition is read only when health is there. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnEnabledHealthIndicator("shm")
    static class HealthContributorConfiguration {

        @Bean
        @ConditionalOnMissingBean(name = {"shmHealthIndicator", "shmHealthContributor"})
        HealthContributor shmHealthContributor(List<Segment> segments) {
            Map<String, ShmHealthIndicator> indicators = new TreeMap<>();
            segments.forEach(segment -> indicators.put(segment.name(),
                    new ShmHealthIndicator(segment)));
            if (indicators.size() == 1) {
                return indicators.values().iterator().next();
            }
            return CompositeHealthContributor.fromMap(indicators);
        }
    }
}
