package dev.shm.spring.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.CorruptionException;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.pool.SlotPoolDescriptor;
import dev.shm.core.segment.Segment;
import dev.shm.core.testing.ShmDirectory;
import dev.shm.spring.endpoint.ShmEndpoint;
import dev.shm.spring.health.ShmHealthIndicator;
import dev.shm.spring.metrics.ShmMetrics;
import dev.shm.spring.support.ShmSegmentState;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.health.contributor.CompositeHealthContributor;
import org.springframework.boot.health.contributor.HealthContributor;
import org.springframework.boot.health.contributor.Status;
import org.springframework.boot.micrometer.metrics.autoconfigure.CompositeMeterRegistryAutoConfiguration;
import org.springframework.boot.micrometer.metrics.autoconfigure.MetricsAutoConfiguration;
import org.springframework.boot.micrometer.metrics.autoconfigure.export.simple.SimpleMetricsExportAutoConfiguration;
import org.springframework.boot.test.context.FilteredClassLoader;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;

/** The conditions of the meters, the {@code shm} endpoint and the {@code shm} health contributor. */
class ShmObservabilityAutoConfigurationTests {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(ShmAutoConfiguration.class, ShmMetricsAutoConfiguration.class,
                    ShmEndpointAutoConfiguration.class, ShmHealthContributorAutoConfiguration.class,
                    MetricsAutoConfiguration.class, SimpleMetricsExportAutoConfiguration.class,
                    CompositeMeterRegistryAutoConfiguration.class))
            .withPropertyValues("spring.application.name=billing", "management.endpoints.web.exposure.include=shm");

    /** A small segment: creating the default 20 MB of slots in every test would only cost time. */
    private String[] segment(Path directory, String segment) {
        return new String[] {"shm.directory=" + directory, "shm.segments." + segment + ".size=8MB",
                "shm.segments." + segment + ".slot-classes[0].size=1KB",
                "shm.segments." + segment + ".slot-classes[0].count=16"};
    }

    @Test
    void withASegmentThereAreMetersTheEndpointAndHealth() {
        runner.withPropertyValues(segment(shm.directory("all"), "main")).run(context -> {
            assertThat(context).hasNotFailed();
            assertThat(context).hasSingleBean(ShmMetrics.class);
            assertThat(context).hasSingleBean(ShmEndpoint.class);
            assertThat(context.getBean("shmHealthContributor")).isInstanceOf(ShmHealthIndicator.class);
            MeterRegistry registry = context.getBean(MeterRegistry.class);
            assertThat(registry.get("shm.peers").tags("segment", "main", "state", "alive").gauge().value())
                    .isEqualTo(1);
            assertThat(registry.get("shm.slots.capacity").tags("segment", "main", "class", "0").gauge().value())
                    .isEqualTo(16);
            assertThat(registry.get("shm.peers.recovered").tags("segment", "main").functionCounter().count())
                    .isZero();
            assertThat(registry.get("shm.peer.heartbeat.age").tags("segment", "main", "peer", "0", "name", "billing")
                    .gauge().getId().getBaseUnit()).isEqualTo("seconds");
            ShmHealthIndicator health = context.getBean(ShmHealthIndicator.class);
            assertThat(health.health().getStatus()).isEqualTo(Status.UP);
            ShmEndpoint endpoint = context.getBean(ShmEndpoint.class);
            assertThat(endpoint.segments().segments()).containsOnlyKeys("main");
            assertThat(endpoint.segment("main").peers()).singleElement()
                    .satisfies(peer -> assertThat(peer.name()).isEqualTo("billing"));
            assertThat(endpoint.segment("other")).isNull();
        });
    }

    @Test
    void severalSegmentsGiveACompositeHealthContributorNamedAfterThem() {
        Path directory = shm.directory("two");
        runner.withPropertyValues(segment(directory, "main")).withPropertyValues(segment(directory, "side"))
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    HealthContributor contributor = context.getBean("shmHealthContributor", HealthContributor.class);
                    assertThat(contributor).isInstanceOf(CompositeHealthContributor.class);
                    CompositeHealthContributor composite = (CompositeHealthContributor) contributor;
                    assertThat(composite.getContributor("main")).isInstanceOf(ShmHealthIndicator.class);
                    assertThat(composite.getContributor("side")).isInstanceOf(ShmHealthIndicator.class);
                    assertThat(context.getBean(ShmEndpoint.class).segments().segments())
                            .containsOnlyKeys("main", "side");
                });
    }

    @Test
    void aClosedSegmentIsDownAndItsMetersAreRemoved() {
        runner.withPropertyValues(segment(shm.directory("closed"), "main")).run(context -> {
            MeterRegistry registry = context.getBean(MeterRegistry.class);
            assertThat(registry.find("shm.peers").gauges()).isNotEmpty();
            context.getBean("main", Segment.class).close();
            ShmHealthIndicator health = context.getBean(ShmHealthIndicator.class);
            assertThat(health.health().getStatus()).isEqualTo(Status.DOWN);
            assertThat(health.health().getDetails()).containsEntry("reason", "the segment is closed");
            context.getBean(ShmMetrics.class).refresh();
            assertThat(registry.find("shm.peers").gauges()).isEmpty();
            assertThat(registry.getMeters()).noneMatch(meter -> meter.getId().getName().startsWith("shm."));
        });
    }

    /**
     * A segment whose state cannot be read (here a slot class states an impossible slot count) keeps
     * its meters at their last reading, and no meter fails a scrape. Before, the read's exception
     * came out of the function counters (Micrometer does not catch it there), and out of a refresh.
     */
    @Test
    void aSegmentThatCannotBeReadFailsNoMeterAndKeepsTheLastReading() {
        runner.withPropertyValues(segment(shm.directory("damaged"), "main")).run(context -> {
            MeterRegistry registry = context.getBean(MeterRegistry.class);
            Segment main = context.getBean("main", Segment.class);
            java.lang.reflect.Field field = SlotPool.class.getDeclaredField("table");
            field.setAccessible(true);
            MemorySegment table = (MemorySegment) field.get(main.slotPool());
            long total = table.get(ValueLayout.JAVA_LONG, SlotPoolDescriptor.TOTAL_SLOTS_OFFSET);
            table.set(ValueLayout.JAVA_LONG, SlotPoolDescriptor.TOTAL_SLOTS_OFFSET, -1L); // class 0
            try {
                assertThatThrownBy(() -> ShmSegmentState.read(main)).isInstanceOf(CorruptionException.class);
                context.getBean(ShmMetrics.class).refresh(); // reads again now
                assertThat(registry.get("shm.peers.recovered").tags("segment", "main").functionCounter().count())
                        .isZero();
                assertThat(registry.get("shm.slots.capacity").tags("segment", "main", "class", "0").gauge().value())
                        .as("the last reading").isEqualTo(16);
                for (Meter meter : registry.getMeters()) {
                    assertThat(meter.measure()).as(meter.getId().toString()).isNotEmpty(); // a scrape: nothing throws
                }
            } finally {
                table.set(ValueLayout.JAVA_LONG, SlotPoolDescriptor.TOTAL_SLOTS_OFFSET, total);
            }
        });
    }

    @Test
    void closingTheMetersRemovesThem() {
        runner.withPropertyValues(segment(shm.directory("close"), "main")).run(context -> {
            MeterRegistry registry = context.getBean(MeterRegistry.class);
            context.getBean(ShmMetrics.class).close();
            assertThat(registry.getMeters()).noneMatch(meter -> meter.getId().getName().startsWith("shm."));
        });
    }

    @Test
    void backsOffWithoutMicrometer() {
        runner.withClassLoader(new FilteredClassLoader("io.micrometer.core."))
                .withPropertyValues(segment(shm.directory("nomicrometer"), "main")).run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context).hasBean("main");
                    assertThat(context).doesNotHaveBean(ShmMetrics.class);
                    assertThat(context).hasSingleBean(ShmEndpoint.class);
                });
    }

    @Test
    void backsOffWithoutTheActuator() {
        runner.withClassLoader(new FilteredClassLoader("org.springframework.boot.actuate."))
                .withPropertyValues(segment(shm.directory("noactuator"), "main")).run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context).doesNotHaveBean(ShmEndpoint.class);
                    assertThat(context).hasSingleBean(ShmMetrics.class);
                });
    }

    @Test
    void backsOffWithoutHealth() {
        runner.withClassLoader(new FilteredClassLoader("org.springframework.boot.health."))
                .withPropertyValues(segment(shm.directory("nohealth"), "main")).run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context).doesNotHaveBean("shmHealthContributor");
                    assertThat(context).hasSingleBean(ShmEndpoint.class);
                });
    }

    @Test
    void backsOffWhenShmIsDisabled() {
        runner.withPropertyValues(segment(shm.directory("disabled"), "main"))
                .withPropertyValues("shm.enabled=false").run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context).doesNotHaveBean(ShmMetrics.class);
                    assertThat(context).doesNotHaveBean(ShmEndpoint.class);
                    assertThat(context).doesNotHaveBean("shmHealthContributor");
                });
    }

    @Test
    void withoutSegmentsThereAreNoMetersAndNoHealthContributor() {
        runner.withPropertyValues("shm.directory=" + shm.directory("none")).run(context -> {
            assertThat(context).hasNotFailed();
            assertThat(context).doesNotHaveBean(ShmMetrics.class);
            assertThat(context).doesNotHaveBean("shmHealthContributor");
            assertThat(context.getBean(ShmEndpoint.class).segments().segments()).isEmpty();
        });
    }

    @Test
    void theHealthContributorCanBeDisabled() {
        runner.withPropertyValues(segment(shm.directory("nocontributor"), "main"))
                .withPropertyValues("management.health.shm.enabled=false").run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context).doesNotHaveBean("shmHealthContributor");
                    assertThat(context).doesNotHaveBean(HealthContributor.class);
                    assertThat(context).hasSingleBean(ShmMetrics.class);
                });
    }

    @Test
    void theEndpointIsOnlyThereWhenExposed() {
        runner.withPropertyValues(segment(shm.directory("noendpoint"), "main"))
                .withPropertyValues("management.endpoints.web.exposure.include=health").run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context).doesNotHaveBean(ShmEndpoint.class);
                });
    }

    @Test
    void theEndpointCanBeTurnedOff() {
        runner.withPropertyValues(segment(shm.directory("offendpoint"), "main"))
                .withPropertyValues("management.endpoint.shm.access=NONE").run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context).doesNotHaveBean(ShmEndpoint.class);
                });
    }

    @Test
    void aRefreshIntervalThatIsNotPositiveNamesTheProperty() {
        runner.withPropertyValues(segment(shm.directory("badrefresh"), "main"))
                .withPropertyValues("shm.metrics.refresh-interval=0s").run(context -> {
                    assertThat(context).hasFailed();
                    assertThat(context.getStartupFailure()).rootCause()
                            .isInstanceOf(InvalidShmPropertyException.class)
                            .hasMessageContaining("shm.metrics.refresh-interval");
                });
    }

    @Test
    void anApplicationBeanWins() {
        runner.withPropertyValues(segment(shm.directory("own"), "main"))
                .withBean("myMetrics", ShmMetrics.class, () -> new ShmMetrics(List.of(), java.time.Duration.ofSeconds(1)))
                .withBean("myEndpoint", ShmEndpoint.class, () -> new ShmEndpoint(List.of()))
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context).hasSingleBean(ShmMetrics.class).hasBean("myMetrics");
                    assertThat(context).hasSingleBean(ShmEndpoint.class).hasBean("myEndpoint");
                });
    }
}
