package dev.shm.spring.integration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.shm.core.testing.ChildJvm;
import dev.shm.core.testing.ShmDirectory;
import dev.shm.spring.apps.receiver.ReceiverApplication;
import dev.shm.spring.autoconfigure.ShmGroupBusyFailureAnalyzer;
import dev.shm.spring.channel.SubscribableShmChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.diagnostics.FailureAnalysis;
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
        try (ChildJvm receiver = receiver(directory)) {
            try (ConfigurableApplicationContext sender = sender(directory)) {
                sendOrdersAndAwaitThem(sender.getBean("orders", MessageChannel.class), receiver);
            }
            exit(receiver);
        }
    }

    @Test
    void anExclusiveReceiverHoldsItsGroupAcrossProcessesAndASecondInstanceFailsNamingTheProperty() {
        Path directory = shm.directory("exclusive");
        try (ChildJvm receiver = receiver(directory, "--shm.channels.orders.exclusive=true")) {
            try (ConfigurableApplicationContext sender = sender(directory)) {
                SubscribableShmChannel orders = sender.getBean("orders", SubscribableShmChannel.class);
                assertThat(orders.getRing().stats().groups()).singleElement().satisfies(g -> {
                    assertThat(g.name()).isEqualTo("billing");
                    assertThat(g.exclusive()).as("held by the receiver's process").isTrue();
                    assertThat(g.members()).isEqualTo(1);
                });
                sendOrdersAndAwaitThem(orders, receiver);

                // A second instance of the receiving application, in this JVM, with the default
                // (shared) mode: it waits out the liveness timeout, then fails to start.
                Throwable failure = catchThrowable(() -> new SpringApplicationBuilder(ReceiverApplication.class)
                        .run("--spring.config.name=receiver-app", "--shm.directory=" + directory));
                assertThat(failure).isNotNull();
                FailureAnalysis analysis = new ShmGroupBusyFailureAnalyzer().analyze(failure);
                assertThat(analysis).as("analysed: %s", failure).isNotNull();
                assertThat(analysis.getDescription()).contains("'billing'", "'orders'",
                        "held by the exclusive member of peer");
                assertThat(analysis.getAction()).contains("shm.channels.orders.exclusive=false");
            }
            exit(receiver);
        }
    }

    /**
     * A receiver out of descriptors cannot open the memfd of a large order: its consumer says that it
     * will try again, and does, until it has descriptors again; then the order arrives, once.
     */
    @Test
    void aReceiverOutOfDescriptorsGetsALargeOrderOnceItHasThemAgain() {
        Path directory = shm.directory("starved");
        try (ChildJvm receiver = receiver(directory)) {
            try (ConfigurableApplicationContext sender = sender(directory)) {
                MessageChannel orders = sender.getBean("orders", MessageChannel.class);
                String filler = "x".repeat(300_000); // above the largest slot class (256 KiB): a memfd
                assertThat(orders.send(MessageBuilder.withPayload("large-order-0-" + filler)
                        .setHeader("customer", "c0").build())).isTrue();
                assertThat(receiver.awaitLine("GOT ", LINE)).isEqualTo("large-order-0-xx...(300014 chars) c0");

                receiver.send("STARVE");
                receiver.awaitLine("STARVED", LINE);
                assertThat(orders.send(MessageBuilder.withPayload("large-order-1-" + filler)
                        .setHeader("customer", "c1").build())).isTrue();
                long deadline = System.nanoTime() + LINE.toNanos();
                while (!receiver.output().contains("cannot read a message now") && System.nanoTime() - deadline < 0) {
                    LockSupport.parkNanos(10_000_000);
                }
                assertThat(receiver.output()).contains("group 'billing' cannot read a message now",
                        "message 1 of channel 'orders', group 'billing' stays in the ring, unread")
                        .containsAnyOf("failed: EMFILE", "cannot read /proc/");
                receiver.send("FEED");
                receiver.awaitLine("FED", LINE);
                assertThat(receiver.awaitLine("GOT ", LINE)).isEqualTo("large-order-1-xx...(300014 chars) c1");
            }
            exit(receiver);
            assertThat(receiver.output().split("GOT large-order-1", -1)).as("read once").hasSize(2);
            assertThat(receiver.output()).doesNotContain("failed and stopped");
        }
    }

    /** Starts the receiving application in a child JVM and waits until it runs. */
    private static ChildJvm receiver(Path directory, String... args) {
        List<String> all = new ArrayList<>(List.of("--spring.config.name=receiver-app", "--shm.directory=" + directory));
        all.addAll(List.of(args));
        ChildJvm receiver = ChildJvm.start(ReceiverApplication.class, all.toArray(String[]::new));
        try {
            receiver.awaitLine("READY", LINE);
        } catch (RuntimeException | Error e) {
            receiver.close();
            throw e;
        }
        return receiver;
    }

    /** Starts a sending application, of auto-configuration alone, in this JVM. */
    private static ConfigurableApplicationContext sender(Path directory) {
        return new SpringApplicationBuilder(SenderConfiguration.class).web(WebApplicationType.NONE)
                .run("--spring.config.name=receiver-app", "--spring.application.name=orders-service",
                        "--shm.directory=" + directory);
    }

    /** Lets the receiving application close its context and exit, and checks that it did. */
    private static void exit(ChildJvm receiver) {
        receiver.send("EXIT");
        receiver.awaitLine("CLOSED", LINE);
        assertThat(receiver.awaitExit(LINE)).isZero();
    }

    /** Sends 100 orders and checks that the receiver printed each one, with its header. */
    private static void sendOrdersAndAwaitThem(MessageChannel orders, ChildJvm receiver) {
        for (int i = 0; i < 100; i++) {
            assertThat(orders.send(MessageBuilder.withPayload("order-" + i).setHeader("customer", "c" + i).build()))
                    .isTrue();
        }
        Set<String> got = new HashSet<>();
        for (int i = 0; i < 100; i++) {
            got.add(receiver.awaitLine("GOT ", LINE));
        }
        for (int i = 0; i < 100; i++) {
            assertThat(got).contains("order-" + i + " c" + i);
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
