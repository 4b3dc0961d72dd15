package dev.shm.spring.autoconfigure;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * Properties of the shm meters ({@code shm.metrics}).
 */
@ConfigurationProperties("shm.metrics")
public class ShmMetricsProperties {

    /**
     * How often to look for channels, consumer groups and peers that appeared or left, in this or
     * another process, to register or remove their meters. Values are read at each scrape anyway.
     */
    private Duration refreshInterval = Duration.ofSeconds(10);

    /** Creates the properties with their defaults. */
    public ShmMetricsProperties() {
    }

    /**
     * Returns the refresh interval.
     *
     * @return the interval
     */
    public Duration getRefreshInterval() {
        return refreshInterval;
    }

    /**
     * Sets the refresh interval.
     *
     * @param refreshInterval the interval, positive
     */
    public void setRefreshInterval(Duration refreshInterval) {
        this.refreshInterval = refreshInterval;
    }
}
