package dev.shm.spring.integration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.shm.core.testing.ChildJvm;
import dev.shm.core.testing.ShmDirectory;
import dev.shm.spring.apps.peer.PeerApplication;
import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationRegistry;
import io.micrometer.tracing.Tracer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.messaging.MessageChannel;
import org.springframework.messaging.support.GenericMessage;

/** A trace started in this JVM continues in the handler of another JVM: {@code traceparent} crosses. */
class ObservationPropagationTest {

    private static final Duration LINE = Duration.ofSeconds(60);
    private static final String[] TRACING = {"--spring.integration.management.observation-patterns=*",
            "--management.tracing.sampling.probability=1.0"};

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    @Test
    void aTraceStartedHereContinuesInTheOtherProcesssHandler() {
        Path directory = shm.directory("trace");
        try (ChildJvm receiver = ChildJvm.start(PeerApplication.class, "--spring.config.name=peer-app",
                "--shm.directory=" + directory, "--spring.application.name=billing", "--peer.listen=true",
                TRACING[0], TRACING[1])) {
            receiver.awaitLine("READY", LINE);
            try (ConfigurableApplicationContext app = new SpringApplicationBuilder(SenderConfiguration.class)
                    .web(WebApplicationType.NONE).run("--spring.config.name=peer-app", "--shm.directory=" + directory,
                            "--spring.application.name=orders-service", TRACING[0], TRACING[1])) {
                Tracer tracer = app.getBean(Tracer.class);
                MessageChannel events = app.getBean("events", MessageChannel.class);
                AtomicReference<String> traceId = new AtomicReference<>();
                Observation.createNotStarted("checkout", app.getBean(ObservationRegistry.class)).observe(() -> {
                    traceId.set(tracer.currentSpan().context().traceId());
                    events.send(new GenericMessage<>("traced"));
                });
                assertThat(traceId.get()).isNotBlank();
                assertThat(receiver.awaitLine("TRACE ", LINE)).isEqualTo(traceId.get());
                assertThat(receiver.awaitLine("GOT ", LINE)).startsWith("traced");
            }
            receiver.send("EXIT");
            assertThat(receiver.awaitExit(LINE)).isZero();
        }
    }

    @Test
    void aTraceStartedHereContinuesInTheProviderOfAService() {
        Path directory = shm.directory("trace-rpc");
        try (ChildJvm provider = ChildJvm.start(PeerApplication.class, "--spring.config.name=peer-app",
                "--shm.directory=" + directory, "--spring.application.name=pricing-service", "--peer.pricing=true",
                TRACING[0], TRACING[1])) {
            provider.awaitLine("READY", LINE);
            try (ConfigurableApplicationContext app = new SpringApplicationBuilder(PeerProcessesTest.PricingClient.class)
                    .web(WebApplicationType.NONE).run("--spring.config.name=peer-app", "--shm.directory=" + directory,
                            "--spring.application.name=shop", TRACING[0], TRACING[1])) {
                Tracer tracer = app.getBean(Tracer.class);
                MessageChannel pricing = app.getBean("pricingClient.input", MessageChannel.class);
                AtomicReference<String> traceId = new AtomicReference<>();
                AtomicReference<Object> reply = new AtomicReference<>();
                Observation.createNotStarted("quote", app.getBean(ObservationRegistry.class)).observe(() -> {
                    traceId.set(tracer.currentSpan().context().traceId());
                    reply.set(new org.springframework.integration.core.MessagingTemplate()
                            .sendAndReceive(pricing, new GenericMessage<>("traced")).getPayload());
                });
                assertThat(reply.get()).isEqualTo("TRACED@" + provider.pid());
                assertThat(provider.awaitLine("TRACE ", LINE)).isEqualTo(traceId.get());
            }
            provider.send("EXIT");
            assertThat(provider.awaitExit(LINE)).isZero();
        }
    }
}
