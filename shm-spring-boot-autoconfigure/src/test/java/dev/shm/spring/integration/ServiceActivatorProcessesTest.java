package dev.shm.spring.integration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.shm.core.testing.ChildJvm;
import dev.shm.core.testing.ShmDirectory;
import dev.shm.spring.apps.receiver.ReceiverApplication;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.messaging.MessageChannel;
import org.springframework.messaging.support.MessageBuilder;

/**
 * The promise of the starter: an application whose only shm code is its configuration and a
 * {@code @ServiceActivator} receives what another JVM sends to the channel.
 */
class ServiceActivatorProcessesTest {

    private static final Duration LINE = Duration.ofSeconds(60);

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    @Test
    void serviceActivatorInAnotherJvmReceivesWhatThisJvmSends() {
        Path directory = shm.directory("orders");
        try (ChildJvm receiver = ChildJvm.start(ReceiverApplication.class, "--spring.config.name=receiver-app",
                "--shm.directory=" + directory)) {
            receiver.awaitLine("READY", LINE);
            try (ConfigurableApplicationContext sender = new SpringApplicationBuilder(SenderConfiguration.class)
                    .web(WebApplicationType.NONE)
                    .run("--spring.config.name=receiver-app", "--spring.application.name=orders-service",
                            "--shm.directory=" + directory)) {
                MessageChannel orders = sender.getBean("orders", MessageChannel.class);
                for (int i = 0; i < 100; i++) {
                    assertThat(orders.send(MessageBuilder.withPayload("order-" + i).setHeader("customer", "c" + i)
                            .build())).isTrue();
                }
                Set<String> got = new HashSet<>();
                for (int i = 0; i < 100; i++) {
                    got.add(receiver.awaitLine("GOT ", LINE));
                }
                for (int i = 0; i < 100; i++) {
                    assertThat(got).contains("order-" + i + " c" + i);
                }
            }
            receiver.send("EXIT");
            receiver.awaitLine("CLOSED", LINE);
            assertThat(receiver.awaitExit(LINE)).isZero();
        }
    }

    @Test
    void withoutNativeAccessTheApplicationFailsNamingTheFlag() {
        Path directory = shm.directory("no-native");
        try (ChildJvm child = ChildJvm.builder(ReceiverApplication.class).withoutNativeAccess()
                .args("--spring.config.name=receiver-app", "--shm.directory=" + directory).start()) {
            assertThat(child.awaitExit(LINE)).isNotZero();
            assertThat(child.output()).contains("APPLICATION FAILED TO START", "shm needs native access",
                    "--enable-native-access=ALL-UNNAMED");
        }
    }
}
