package dev.shm.spring.observability;

import static org.assertj.core.api.Assertions.assertThat;

import dev.shm.core.testing.ChildJvm;
import dev.shm.spring.apps.observed.ObservedPeerApplication;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.context.SpringBootTest.WebEnvironment;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.context.annotation.Configuration;
import org.springframework.messaging.MessageChannel;
import org.springframework.messaging.support.GenericMessage;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.test.context.TestPropertySource;
import org.springframework.web.client.RestClient;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The observability of a started web application with a peer application in a second JVM, checked
 * over HTTP: the {@code shm} endpoint, the meters through {@code /actuator/metrics} and
 * {@code /actuator/prometheus}, and the {@code shm} health contributor, while messages flow, while
 * the peer is stopped (SIGSTOP) and after it is killed (SIGKILL).
 */
@SpringBootTest(classes = ObservabilityProcessesTest.App.class, webEnvironment = WebEnvironment.RANDOM_PORT,
        properties = {
            "spring.application.name=orders-service",
            "shm.metrics.refresh-interval=200ms",
            "management.endpoints.web.exposure.include=health,metrics,prometheus,shm",
            "management.endpoint.health.show-details=always",
        })
@TestPropertySource(locations = "classpath:observed-app.properties")
class ObservabilityProcessesTest {

    private static final Duration LINE = Duration.ofSeconds(60);
    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final Path DIRECTORY = directory();

    /** This JVM's application: the auto-configuration alone. */
    @Configuration(proxyBeanMethods = false)
    @EnableAutoConfiguration
    static class App {
    }

    @LocalServerPort
    int port;

    @Autowired
    MessageChannel events;

    @DynamicPropertySource
    static void shmDirectory(DynamicPropertyRegistry registry) {
        registry.add("shm.directory", DIRECTORY::toString);
    }

    private static Path directory() {
        try {
            return Files.createDirectories(Path.of("/dev/shm", "shmtest-" + ProcessHandle.current().pid()
                    + "-observability"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @AfterAll
    static void removeDirectory() throws IOException {
        try (Stream<Path> files = Files.walk(DIRECTORY)) {
            for (Path path : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(path);
            }
        }
    }

    private static ChildJvm peer(String name, String... args) {
        // Every peer reads events as group billing: a required group outlives its members, and one
        // left behind by another test would hold messages (and occupancy) forever.
        List<String> all = new ArrayList<>(List.of("--spring.config.name=observed-app",
                "--shm.directory=" + DIRECTORY, "--spring.application.name=" + name,
                "--shm.channels.events.group=billing"));
        all.addAll(List.of(args));
        return ChildJvm.start(ObservedPeerApplication.class, all.toArray(String[]::new));
    }

    // ---------------------------------------------------------------- HTTP

    private RestClient http() {
        return RestClient.create("http://localhost:" + port);
    }

    private int status(String path) {
        return http().get().uri(path).exchange((request, response) -> response.getStatusCode().value());
    }

    private String text(String path) {
        return http().get().uri(path).retrieve().body(String.class);
    }

    private JsonNode json(String path) {
        return JSON.readTree(text(path));
    }

    private JsonNode segment() {
        return json("/actuator/shm/main");
    }

    private static JsonNode peerOf(JsonNode segment, long pid) {
        for (JsonNode peer : segment.get("peers")) {
            if (peer.get("pid").asLong() == pid) {
                return peer;
            }
        }
        return null;
    }

    private static JsonNode channel(JsonNode segment, String name) {
        for (JsonNode channel : segment.get("channels")) {
            if (channel.get("name").asString().equals(name)) {
                return channel;
            }
        }
        return null;
    }

    private static JsonNode group(JsonNode channel, String name) {
        for (JsonNode group : channel.get("groups")) {
            if (group.get("name").asString().equals(name)) {
                return group;
            }
        }
        return null;
    }

    /** The value of a meter, through {@code /actuator/metrics}; NaN while it does not exist. */
    private double meter(String name, String... tags) {
        StringBuilder uri = new StringBuilder("/actuator/metrics/").append(name).append("?tag=segment:main");
        for (String tag : tags) {
            uri.append("&tag=").append(tag);
        }
        String path = uri.toString();
        if (status(path) != 200) {
            return Double.NaN;
        }
        JsonNode meter = json(path);
        for (JsonNode m : meter.get("measurements")) {
            String statistic = m.get("statistic").asString();
            if (statistic.equals("VALUE") || statistic.equals("COUNT")) {
                return m.get("value").asDouble();
            }
        }
        return Double.NaN;
    }

    private static <T> T await(String what, Supplier<T> value, java.util.function.Predicate<T> condition) {
        long deadline = System.nanoTime() + WAIT.toNanos();
        T last = value.get();
        while (!condition.test(last)) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("not within " + WAIT + ": " + what + " (last: " + last + ")");
            }
            LockSupport.parkNanos(50_000_000);
            last = value.get();
        }
        return last;
    }

    // ---------------------------------------------------------------- tests

    @Test
    void endpointAndMetersShowBothPeersAndTheChannelAsMessagesFlow() throws IOException {
        try (ChildJvm billing = peer("billing")) {
            int billingId = Integer.parseInt(billing.awaitLine("READY", LINE));

            JsonNode summary = await("both peers alive in /actuator/shm", () -> json("/actuator/shm"),
                    s -> s.at("/segments/main/peers/alive").asInt() == 2);
            assertThat(summary.at("/segments/main/name").asString()).isEqualTo("main");
            assertThat(summary.at("/segments/main/file").asString()).isEqualTo(DIRECTORY.resolve("main.shm").toString());
            assertThat(summary.at("/segments/main/open").asBoolean()).isTrue();
            assertThat(summary.at("/segments/main/channels/0/name").asString()).isEqualTo("events");
            assertThat(summary.at("/segments/main/channels/0/capacity").asInt()).isEqualTo(64);

            JsonNode segment = await("the billing group in /actuator/shm/main", this::segment,
                    s -> channel(s, "events") != null && group(channel(s, "events"), "billing") != null);
            JsonNode child = peerOf(segment, billing.pid());
            assertThat(child).as("the peer JVM").isNotNull();
            assertThat(child.get("id").asInt()).isEqualTo(billingId);
            assertThat(child.get("name").asString()).isEqualTo("billing");
            assertThat(child.get("state").asString()).isEqualTo("alive");
            assertThat(child.get("self").asBoolean()).isFalse();
            JsonNode self = peerOf(segment, ProcessHandle.current().pid());
            assertThat(self.get("name").asString()).isEqualTo("orders-service");
            assertThat(self.get("self").asBoolean()).isTrue();
            assertThat(segment.at("/header/livenessTimeoutMillis").asLong()).isEqualTo(1000);
            assertThat(segment.at("/header/heartbeatIntervalMillis").asLong()).isEqualTo(50);
            assertThat(segment.at("/slotPool/0/slotSize").asLong()).isEqualTo(4096);
            assertThat(segment.get("counters").has("peers recovered")).isTrue();
            JsonNode billingGroup = group(channel(segment, "events"), "billing");
            assertThat(billingGroup.get("members").asInt()).isEqualTo(1);
            assertThat(billingGroup.get("required").asBoolean()).isTrue();
            assertThat(billingGroup.has("exclusive")).as("the endpoint says whether a member holds the group").isTrue();
            assertThat(billingGroup.get("exclusive").asBoolean()).isFalse();

            // Messages flow while the consumer runs...
            for (int i = 0; i < 5; i++) {
                assertThat(events.send(new GenericMessage<>("flow-" + i))).isTrue();
            }
            await("billing got the first 5", () -> gotCount(billing), n -> n == 5);
            await("lag back to 0", this::segment, s -> group(channel(s, "events"), "billing").get("lag").asLong() == 0
                    && channel(s, "events").get("occupancy").asLong() == 0);

            // ...and pile up while it is paused: the consumer stops after at most the batch in hand.
            billing.send("PAUSE");
            billing.awaitLine("PAUSED", LINE);
            int sent = 5;
            long lag = 0;
            while (lag < 5 && sent < 45) {
                assertThat(events.send(new GenericMessage<>("paused-" + sent))).isTrue();
                sent++;
                JsonNode s = segment();
                lag = group(channel(s, "events"), "billing").get("lag").asLong();
            }
            int total = sent;
            JsonNode paused = await("lag = sent - received", this::segment,
                    s -> group(channel(s, "events"), "billing").get("lag").asLong() == total - gotCount(billing));
            long pausedLag = group(channel(paused, "events"), "billing").get("lag").asLong();
            assertThat(pausedLag).isGreaterThanOrEqualTo(5);
            assertThat(channel(paused, "events").get("occupancy").asLong()).as("billing is the only required group")
                    .isEqualTo(pausedLag);
            assertThat(channel(paused, "events").get("published").asLong()).isGreaterThanOrEqualTo(total);

            // The meters say the same, with their tags.
            await("shm.ring.occupancy", () -> meter("shm.ring.occupancy", "channel:events"), v -> v == pausedLag);
            await("shm.ring.lag", () -> meter("shm.ring.lag", "channel:events", "group:billing"), v -> v == pausedLag);
            assertThat(meter("shm.ring.capacity", "channel:events")).isEqualTo(64);
            assertThat(meter("shm.messages.sent", "channel:events")).isGreaterThanOrEqualTo(total);
            assertThat(meter("shm.messages.received", "channel:events", "group:billing"))
                    .isEqualTo(total - pausedLag);
            assertThat(meter("shm.messages.dropped", "channel:events")).isZero();
            assertThat(meter("shm.peers", "state:alive")).isEqualTo(2);
            assertThat(meter("shm.peers", "state:stalled")).isZero();
            assertThat(meter("shm.peers.recovered")).isGreaterThanOrEqualTo(0);
            double age = await("shm.peer.heartbeat.age of the peer JVM",
                    () -> meter("shm.peer.heartbeat.age", "peer:" + billingId, "name:billing"), v -> !Double.isNaN(v));
            assertThat(age).isBetween(0.0, 1.0);
            assertThat(meter("shm.slots.capacity", "class:0")).isEqualTo(64);
            assertThat(meter("shm.slots.used", "class:0")).isBetween(0.0, 64.0);
            assertThat(meter("shm.slots.reclaimed", "class:0")).isGreaterThanOrEqualTo(0);
            JsonNode occupancy = json("/actuator/metrics/shm.ring.occupancy");
            assertThat(occupancy.get("baseUnit").asString()).isEqualTo("messages");
            assertThat(json("/actuator/metrics/shm.peer.heartbeat.age").get("baseUnit").asString()).isEqualTo("seconds");

            String prometheus = text("/actuator/prometheus");
            assertThat(prometheus)
                    .contains("shm_ring_occupancy_messages{channel=\"events\",segment=\"main\"} " + pausedLag + ".0")
                    .contains("shm_ring_lag_messages{channel=\"events\",group=\"billing\",segment=\"main\"} "
                            + pausedLag + ".0")
                    .contains("shm_ring_capacity_messages{channel=\"events\",segment=\"main\"} 64.0")
                    .contains("shm_peer_heartbeat_age_seconds{name=\"billing\",peer=\"" + billingId + "\",segment=\"main\"}")
                    .contains("shm_peers{segment=\"main\",state=\"alive\"} 2.0")
                    .contains("shm_messages_sent_total{channel=\"events\",segment=\"main\"}")
                    .contains("shm_messages_received_total{channel=\"events\",group=\"billing\",segment=\"main\"}")
                    .contains("shm_messages_dropped_total{channel=\"events\",segment=\"main\"} 0.0")
                    .contains("shm_peers_recovered_total{segment=\"main\"}")
                    .contains("shm_slots_reclaimed_total{class=\"0\",segment=\"main\"}")
                    .contains("shm_slots_used{class=\"0\",segment=\"main\"}")
                    .contains("shm_slots_capacity{class=\"0\",segment=\"main\"} 64.0");
            Files.createDirectories(Path.of("target"));
            Files.writeString(Path.of("target", "prometheus-sample.txt"), prometheus); // for docs/operations.md
            writeSample("shm-endpoint-sample.json", paused);
            writeSample("shm-summary-sample.json", json("/actuator/shm"));

            // Resumed, the consumer catches up.
            billing.send("RESUME");
            await("billing got all " + total, () -> gotCount(billing), n -> n == total);
            await("lag back to 0", () -> meter("shm.ring.lag", "channel:events", "group:billing"), v -> v == 0);
            await("occupancy back to 0", () -> meter("shm.ring.occupancy", "channel:events"), v -> v == 0);
            assertThat(meter("shm.messages.received", "channel:events", "group:billing")).isGreaterThanOrEqualTo(total);

            billing.send("EXIT");
            assertThat(billing.awaitExit(LINE)).isZero();
            await("the peer's entry empty again", this::segment, s -> peerOf(s, billing.pid()) == null);
        }
    }

    /** Keeps a real answer for docs/operations.md. */
    private static void writeSample(String file, JsonNode answer) {
        try {
            Files.createDirectories(Path.of("target"));
            Files.writeString(Path.of("target", file), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(answer));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static int gotCount(ChildJvm child) {
        return (int) child.output().lines().filter(line -> line.startsWith("GOT ")).count();
    }

    @Test
    void aKilledPeerIsRecoveredAndTheSlotsItHeldAreReclaimed() {
        double recovered = meter("shm.peers.recovered");
        double reclaimed = meter("shm.slots.reclaimed", "class:0");
        try (ChildJvm holder = peer("holder", "--peer.hold-slots=5")) {
            int id = Integer.parseInt(holder.awaitLine("READY", LINE));
            JsonNode segment = await("the holder in /actuator/shm/main", this::segment,
                    s -> peerOf(s, holder.pid()) != null);
            assertThat(peerOf(segment, holder.pid()).get("id").asInt()).isEqualTo(id);
            assertThat(segment.at("/slotPool/0/allocated").asLong()).isGreaterThanOrEqualTo(5);

            holder.kill();

            await("the holder's entry empty again", this::segment,
                    s -> peerOf(s, holder.pid()) == null && s.at("/peersByState/dead").asInt() == 0);
            await("shm.peers.recovered increased", () -> meter("shm.peers.recovered"), v -> v >= recovered + 1);
            await("shm.slots.reclaimed increased by the 5 held slots", () -> meter("shm.slots.reclaimed", "class:0"),
                    v -> v >= reclaimed + 5);
            JsonNode after = segment();
            assertThat(after.at("/slotPool/0/reclaimed").asLong()).isGreaterThanOrEqualTo((long) reclaimed + 5);
            assertThat(after.at("/counters/peers recovered").asLong()).isGreaterThanOrEqualTo((long) recovered + 1);
            await("its heartbeat meter removed", () -> meter("shm.peer.heartbeat.age", "peer:" + id, "name:holder"),
                    v -> Double.isNaN(v));
        }
    }

    @Test
    void aStoppedPeerIsStalledInHealthAndItsHeartbeatAgeGrowsUntilItContinues() {
        try (ChildJvm sleeper = peer("sleeper")) {
            int id = Integer.parseInt(sleeper.awaitLine("READY", LINE));
            String peerTag = "peer:" + id;
            await("its heartbeat meter", () -> meter("shm.peer.heartbeat.age", peerTag, "name:sleeper"),
                    v -> !Double.isNaN(v));
            JsonNode healthy = json("/actuator/health/shm");
            assertThat(healthy.get("status").asString()).isEqualTo("UP");
            assertThat(healthy.at("/details/stalledPeers").isMissingNode()).isTrue();

            sleeper.signal("STOP");
            try {
                double first = await("heartbeat age past the 1 s liveness timeout",
                        () -> meter("shm.peer.heartbeat.age", peerTag, "name:sleeper"), v -> v > 1.0);
                await("heartbeat age grows", () -> meter("shm.peer.heartbeat.age", peerTag, "name:sleeper"),
                        v -> v > first);
                JsonNode stalled = await("health lists the stalled peer", () -> json("/actuator/health/shm"),
                        h -> h.at("/details/stalledPeers/0/id").asInt(-1) == id);
                assertThat(stalled.get("status").asString()).as("a stall is reported, not fatal").isEqualTo("UP");
                writeSample("shm-health-stalled-sample.json", stalled);
                assertThat(stalled.at("/details/stalledPeers/0/name").asString()).isEqualTo("sleeper");
                assertThat(stalled.at("/details/stalledPeers/0/pid").asLong()).isEqualTo(sleeper.pid());
                assertThat(stalled.at("/details/peers/stalled").asInt()).isEqualTo(1);
                assertThat(meter("shm.peers", "state:stalled")).isEqualTo(1);
                assertThat(peerOf(segment(), sleeper.pid()).get("state").asString()).isEqualTo("stalled");
            } finally {
                sleeper.signal("CONT");
            }
            await("health without stalled peers", () -> json("/actuator/health/shm"),
                    h -> h.at("/details/stalledPeers").isMissingNode());
            await("heartbeat age fresh again", () -> meter("shm.peer.heartbeat.age", peerTag, "name:sleeper"),
                    v -> v < 1.0);
            assertThat(meter("shm.peers", "state:stalled")).isZero();
            sleeper.send("EXIT");
            assertThat(sleeper.awaitExit(LINE)).isZero();
        }
    }

    @Test
    void anUnknownSegmentIsNotFound() {
        assertThat(status("/actuator/shm/main")).isEqualTo(200);
        assertThat(status("/actuator/shm/nosuchsegment")).isEqualTo(404);
    }
}
