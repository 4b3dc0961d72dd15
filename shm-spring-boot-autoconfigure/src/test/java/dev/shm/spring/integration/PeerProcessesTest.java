package dev.shm.spring.integration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.counters.SegmentCounters;
import dev.shm.core.lane.LaneMemfds;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.segment.Segment;
import dev.shm.core.testing.ChildJvm;
import dev.shm.core.testing.ShmDirectory;
import dev.shm.spring.apps.peer.Order;
import dev.shm.spring.apps.peer.PeerApplication;
import dev.shm.spring.dsl.Shm;
import dev.shm.spring.gateway.ShmOutboundGateway;
import dev.shm.spring.support.LaneIo;
import dev.shm.spring.support.ShmHeaders;
import dev.shm.spring.support.ShmMessageCodec;
import dev.shm.spring.untrusted.Gadget;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.integration.MessageTimeoutException;
import org.springframework.integration.channel.QueueChannel;
import org.springframework.integration.core.MessagingTemplate;
import org.springframework.integration.dsl.IntegrationFlow;
import org.springframework.integration.dsl.context.IntegrationFlowContext;
import org.springframework.messaging.Message;
import org.springframework.messaging.MessageChannel;
import org.springframework.messaging.MessageHandlingException;
import org.springframework.messaging.MessagingException;
import org.springframework.messaging.SubscribableChannel;
import org.springframework.messaging.support.GenericMessage;
import org.springframework.messaging.support.MessageBuilder;

/**
 * Two or more Spring Boot applications in separate JVMs on one segment: this JVM is one, the
 * others are {@link PeerApplication}s started with the test class path.
 */
class PeerProcessesTest {

    private static final Duration LINE = Duration.ofSeconds(60);
    private static final Duration WAIT = Duration.ofSeconds(30);

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    /** The arguments of an application of the test: peer-app.yml, the directory, its name, then {@code args}. */
    private static String[] arguments(Path directory, String name, String... args) {
        List<String> all = new ArrayList<>(List.of("--spring.config.name=peer-app", "--shm.directory=" + directory,
                "--spring.application.name=" + name));
        all.addAll(List.of(args));
        return all.toArray(String[]::new);
    }

    private static ConfigurableApplicationContext app(Path directory, String name, Class<?> configuration,
            String... args) {
        return new SpringApplicationBuilder(configuration).web(WebApplicationType.NONE)
                .run(arguments(directory, name, args));
    }

    private static ChildJvm peer(Path directory, String name, String... args) {
        return ChildJvm.start(PeerApplication.class, arguments(directory, name, args));
    }

    private static List<String> lines(ChildJvm child, String prefix) {
        return child.output().lines().filter(line -> line.startsWith(prefix))
                .map(line -> line.substring(prefix.length()).trim()).toList();
    }

    /** User and system CPU time, in clock ticks, of the threads of process {@code pid} whose name starts with {@code prefix}. */
    private static long cpuTicks(long pid, String prefix) {
        try (Stream<Path> tasks = Files.list(Path.of("/proc/" + pid + "/task"))) {
            long ticks = 0;
            for (Path task : tasks.toList()) {
                try {
                    if (!Files.readString(task.resolve("comm")).startsWith(prefix)) {
                        continue;
                    }
                    String stat = Files.readString(task.resolve("stat"));
                    String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                    ticks += Long.parseLong(fields[11]) + Long.parseLong(fields[12]); // utime, stime (fields 14, 15)
                } catch (IOException ended) {
                    // a thread (a JIT compiler's, say) that ended since the listing
                }
            }
            return ticks;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void await(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("not within " + WAIT + ": " + what);
            }
            LockSupport.parkNanos(20_000_000);
        }
    }

    @Test
    void everyGroupReceivesEveryMessageAndTheMembersOfAGroupShareThem() {
        Path directory = shm.directory("pubsub");
        int count = 300;
        try (ConfigurableApplicationContext app = app(directory, "orders-service", SenderConfiguration.class);
             ChildJvm billing1 = peer(directory, "billing", "--peer.listen=true", "--peer.work-micros=1000");
             ChildJvm billing2 = peer(directory, "billing", "--peer.listen=true", "--peer.work-micros=1000");
             ChildJvm audit = peer(directory, "audit", "--peer.listen=true")) {
            for (ChildJvm child : List.of(billing1, billing2, audit)) {
                child.awaitLine("READY", LINE);
            }
            MessageChannel events = app.getBean("events", MessageChannel.class);
            for (int i = 0; i < count; i++) {
                assertThat(events.send(new GenericMessage<>("event-" + i))).isTrue();
            }
            await("audit got " + count, () -> lines(audit, "GOT ").size() >= count);
            await("billing got " + count, () -> lines(billing1, "GOT ").size() + lines(billing2, "GOT ").size() >= count);
            Set<String> expected = new java.util.HashSet<>();
            for (int i = 0; i < count; i++) {
                expected.add("event-" + i + " redelivered=false");
            }
            assertThat(lines(audit, "GOT ")).hasSize(count).containsExactlyInAnyOrderElementsOf(expected);
            List<String> first = lines(billing1, "GOT ");
            List<String> second = lines(billing2, "GOT ");
            List<String> both = new ArrayList<>(first);
            both.addAll(second);
            assertThat(both).hasSize(count).containsExactlyInAnyOrderElementsOf(expected);
            assertThat(first).as("both members of billing compete").isNotEmpty();
            assertThat(second).as("both members of billing compete").isNotEmpty();
            for (ChildJvm child : List.of(billing1, billing2, audit)) {
                child.send("EXIT");
                assertThat(child.awaitExit(LINE)).isZero();
            }
        }
    }

    /** The client side of the pricing service; it waits {@code pricing.reply-timeout} (2 s) for a reply. */
    @Configuration(proxyBeanMethods = false)
    @EnableAutoConfiguration
    public static class PricingClient {
        @Bean
        IntegrationFlow pricingClient(Segment main, @Value("${pricing.reply-timeout:2s}") Duration replyTimeout) {
            return flow -> flow.handle(Shm.outboundGateway(main, "pricing").replyTimeout(replyTimeout));
        }
    }

    @Test
    void requestReplyAcrossProcessesWithErrorsAndTimeoutsAndJsonPayloads() throws Exception {
        Path directory = shm.directory("rpc");
        try (ChildJvm provider = peer(directory, "pricing-service", "--peer.pricing=true")) {
            provider.awaitLine("READY", LINE);
            try (ConfigurableApplicationContext app = app(directory, "shop", PricingClient.class)) {
                MessageChannel pricing = app.getBean("pricingClient.input", MessageChannel.class);
                MessagingTemplate template = new MessagingTemplate();
                template.setReceiveTimeout(10_000);
                Message<?> reply = template.sendAndReceive(pricing, new GenericMessage<>("hello"));
                assertThat(reply).isNotNull();
                assertThat(reply.getPayload()).isEqualTo("HELLO@" + provider.pid());
                for (int i = 0; i < 50; i++) {
                    assertThat(template.sendAndReceive(pricing, new GenericMessage<>("r" + i)).getPayload())
                            .isEqualTo("R" + i + "@" + provider.pid());
                }
                // Concurrent callers share the pair; whichever waits reads the replies for all of them, and
                // hands the lane on when its own reply came: each gets its own reply, none waits for nothing.
                // Half of them on virtual threads, which read the lane without the futex sleep.
                int threads = 8;
                int each = 200;
                List<Future<List<String>>> callers = new ArrayList<>();
                try (ExecutorService platform = Executors.newFixedThreadPool(threads / 2);
                     ExecutorService virtual = Executors.newVirtualThreadPerTaskExecutor()) {
                    for (int t = 0; t < threads; t++) {
                        int caller = t;
                        callers.add((t % 2 == 0 ? platform : virtual).submit(() -> {
                            List<String> wrong = new ArrayList<>();
                            for (int i = 0; i < each; i++) {
                                String request = "c" + caller + "-" + i;
                                Object payload = template.sendAndReceive(pricing, new GenericMessage<>(request))
                                        .getPayload();
                                if (!payload.equals(request.toUpperCase() + "@" + provider.pid())) {
                                    wrong.add(request + " -> " + payload);
                                }
                            }
                            return wrong;
                        }));
                    }
                    for (Future<List<String>> caller : callers) {
                        assertThat(caller.get(60, TimeUnit.SECONDS)).as("replies that answer another request")
                                .isEmpty();
                    }
                }
                // A gateway that was stopped opens no pair any more: its pair is closed, and a late request fails.
                Segment main = app.getBean("main", Segment.class);
                int service = main.directory().lookup("pricing").getAsInt();
                int pairs = main.lanes().lanesOf(service).size();
                ShmOutboundGateway gateway = new ShmOutboundGateway(main, "pricing");
                gateway.setBeanFactory(app.getBeanFactory());
                gateway.afterPropertiesSet();
                QueueChannel replies = new QueueChannel();
                gateway.handleMessage(MessageBuilder.withPayload("own").setReplyChannel(replies).build());
                assertThat(replies.receive(10_000)).extracting(Message::getPayload).isEqualTo("OWN@" + provider.pid());
                assertThat(main.lanes().lanesOf(service)).hasSize(pairs + 1);
                gateway.destroy();
                assertThat(main.lanes().lanesOf(service)).hasSize(pairs);
                assertThatThrownBy(() -> gateway.handleMessage(MessageBuilder.withPayload("late").setReplyChannel(replies)
                        .build())).hasStackTraceContaining("was stopped");
                assertThat(main.lanes().lanesOf(service)).hasSize(pairs);
                assertThatThrownBy(() -> template.sendAndReceive(pricing, new GenericMessage<>("boom")))
                        .isInstanceOf(MessageHandlingException.class)
                        .hasMessageContaining("no price for boom");

                MessageChannel orders = app.getBean("orders", MessageChannel.class);
                orders.send(new GenericMessage<>(new Order("o-1", 2, List.of("apple"))));
                assertThat(provider.awaitLine("ORDER ", LINE)).isEqualTo("o-1 2 [apple]");
                orders.send(new GenericMessage<>(new Gadget("rm -rf /")));
                assertThat(provider.awaitLine("ERROR ", LINE)).startsWith("ShmDecodingException")
                        .contains(Gadget.class.getName(), "trusted packages");
                orders.send(new GenericMessage<>(new Order("o-2", 1, List.of())));
                assertThat(provider.awaitLine("ORDER ", LINE)).as("the consumer survives the untrusted record")
                        .isEqualTo("o-2 1 []");

                long start = System.nanoTime();
                assertThatThrownBy(() -> template.sendAndReceive(pricing, new GenericMessage<>("slow")))
                        .isInstanceOf(MessageTimeoutException.class).hasMessageContaining("no reply");
                assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
            }
            provider.send("EXIT");
            assertThat(provider.awaitExit(LINE)).isZero();
        }
    }

    @Test
    void aSenderThatShutsDownGracefullyLosesNothingItAccepted() {
        Path directory = shm.directory("shutdown");
        Set<String> received = ConcurrentHashMap.newKeySet();
        try (ConfigurableApplicationContext app = app(directory, "audit", SenderConfiguration.class)) {
            ((SubscribableChannel) app.getBean("events", MessageChannel.class)).subscribe(message -> {
                LockSupport.parkNanos(500_000); // a slow consumer, so that the ring holds a backlog
                received.add((String) message.getPayload());
            });
            try (ChildJvm sender = peer(directory, "orders-service", "--peer.send=20000")) {
                sender.awaitLine("ACCEPTED 300", LINE);
                sender.signal("TERM"); // Spring Boot's shutdown hook closes the context
                sender.awaitExit(LINE);
                Set<String> accepted = lines(sender, "ACCEPTED ").stream().map(i -> "event-" + i)
                        .collect(Collectors.toSet());
                assertThat(accepted).hasSizeGreaterThan(300);
                assertThat(accepted.size()).as("the sender stopped before the end: messages were in flight")
                        .isLessThan(20_000);
                await("every accepted message received", () -> received.containsAll(accepted));
                assertThat(received).containsAll(accepted);
            }
        }
    }

    @Test
    void aMessageWhoseConsumerIsKilledIsRedeliveredToAnotherMemberOfItsGroup() throws Exception {
        Path directory = shm.directory("kill");
        try (ConfigurableApplicationContext app = app(directory, "orders-service", SenderConfiguration.class);
             ChildJvm holder = peer(directory, "billing", "--peer.listen=true", "--peer.hold-first=true")) {
            holder.awaitLine("READY", LINE);
            app.getBean("events", MessageChannel.class).send(new GenericMessage<>("event-0"));
            assertThat(holder.awaitLine("HOLDING ", LINE)).isEqualTo("event-0");

            BlockingQueue<Message<?>> got = new LinkedBlockingQueue<>();
            IntegrationFlowContext flows = app.getBean(IntegrationFlowContext.class);
            flows.registration(IntegrationFlow.from(Shm.inboundAdapter(app.getBean("main", Segment.class), "events")
                            .channelOptions(dev.shm.core.ring.ChannelOptions.defaults().withCapacity(64)
                                    .withSlotSize(256))
                            .group("billing"))
                    .handle(got::add).get()).register();
            holder.kill();

            Message<?> redelivered = got.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
            assertThat(redelivered).as("redelivered to the surviving member").isNotNull();
            assertThat(redelivered.getPayload()).isEqualTo("event-0");
            assertThat(redelivered.getHeaders()).containsEntry(ShmHeaders.REDELIVERED, true)
                    .containsEntry(ShmHeaders.CHANNEL, "events");
        }
    }

    @Test
    void aProviderWithConcurrencyHandlesRequestsAtOnceAndEachReplyStillFindsItsCaller() throws Exception {
        Path directory = shm.directory("concurrent");
        String large = "0123456789abcdef".repeat(20_000); // above the 4 KB slot class: replies in memfds
        try (ChildJvm provider = peer(directory, "pricing-service", "--peer.pricing=true",
                "--peer.pricing-concurrency=4")) {
            provider.awaitLine("READY", LINE);
            try (ConfigurableApplicationContext app = app(directory, "shop", PricingClient.class,
                    "--pricing.reply-timeout=30s");
                 ExecutorService callers = Executors.newFixedThreadPool(4)) {
                MessageChannel pricing = app.getBean("pricingClient.input", MessageChannel.class);
                MessagingTemplate template = new MessagingTemplate();
                template.setReceiveTimeout(10_000);
                // Each of the four waits in the provider until all four are there: one at a time, none would.
                List<Future<Object>> together = new ArrayList<>();
                for (int t = 0; t < 4; t++) {
                    String request = "together-" + t;
                    together.add(callers.submit(() -> template.sendAndReceive(pricing, new GenericMessage<>(request))
                            .getPayload()));
                }
                for (Future<Object> reply : together) {
                    assertThat(reply.get(30, TimeUnit.SECONDS)).isEqualTo("TOGETHER@" + provider.pid());
                }
                // Replies written by four workers at once, small and large, each to its own request.
                List<Future<List<String>>> mixed = new ArrayList<>();
                for (int t = 0; t < 4; t++) {
                    int caller = t;
                    mixed.add(callers.submit(() -> {
                        List<String> wrong = new ArrayList<>();
                        for (int i = 0; i < 100; i++) {
                            String request = (i % 10 == 0 ? large : "") + "c" + caller + "-" + i;
                            Object reply = template.sendAndReceive(pricing, new GenericMessage<>(request)).getPayload();
                            if (!reply.equals(request.toUpperCase() + "@" + provider.pid())) {
                                wrong.add("c" + caller + "-" + i);
                            }
                        }
                        return wrong;
                    }));
                }
                for (Future<List<String>> caller : mixed) {
                    assertThat(caller.get(60, TimeUnit.SECONDS)).as("replies that answer another request").isEmpty();
                }
                assertThat(app.getBean("main", Segment.class).leases().leases()).isEmpty();

                // Stopped with a request in hand: the stop waits for the worker, then for the client to read
                // the large reply, before it gives the reply's memfd back. This client is the test itself,
                // on a pair of its own, so that it can read late: 300 ms after the reply was written.
                Segment main = app.getBean("main", Segment.class);
                ShmMessageCodec codec = app.getBean(ShmMessageCodec.class);
                int service = main.directory().lookup("pricing").getAsInt();
                LaneTable.LanePair own = main.lanes().open(service, main.directory().entry(service).provider());
                String lingering = "linger-" + large;
                try (LaneMemfds memfds = new LaneMemfds(main.leases(), "test")) {
                    assertThat(LaneIo.write(main, own.toService(), codec.encode(MessageBuilder.withPayload(lingering)
                            .setHeader(ShmHeaders.CORRELATION, 1L).build()), memfds, System.nanoTime() + WAIT.toNanos()))
                            .isEqualTo(LaneIo.OK);
                    main.directory().doorbell(service).ring();
                    provider.awaitLine("LINGER", LINE);
                    provider.send("EXIT");
                    await("the reply written", () -> own.toClient().hasFrames());
                    LockSupport.parkNanos(300_000_000L); // the adverse case: a client that reads late
                    List<Object> replies = new ArrayList<>();
                    assertThat(own.toClient().poll((type, payload) -> replies.add(LaneIo.decode(main, codec, type,
                            payload, own.provider()).getPayload()), 1)).isEqualTo(1);
                    assertThat(replies).containsExactly(lingering.toUpperCase() + "@" + provider.pid());
                }
                main.lanes().close(own);
                assertThat(provider.awaitExit(LINE)).isZero();
                assertThat(provider.output()).doesNotContain("not delivered");
                assertThat(app.getBean("main", Segment.class).leases().leases()).isEmpty();
            }
        }
    }

    /** How many memfds of the gateways ({@code shm-request-…}, {@code shm-reply-…}) a process holds open. */
    private static long gatewayMemfds(long pid) {
        try (Stream<Path> fds = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            return fds.filter(fd -> {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    return target.startsWith("/memfd:shm-request-") || target.startsWith("/memfd:shm-reply-");
                } catch (IOException e) {
                    return false; // closed meanwhile
                }
            }).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * A provider, then a client, out of descriptors: the large request, then the large reply, that
     * it cannot open stays in its lane, unread, with its memfd leased, and is read once the process
     * has descriptors again; its caller gets the answer. With a provider's concurrency of 2 too,
     * whose serving thread gives back the worker permit it took for the request it could not read.
     */
    @ParameterizedTest(name = "provider concurrency {0}")
    @ValueSource(ints = {1, 2})
    void aLargeRequestOrReplyThatCannotBeOpenedNowWaitsInItsLaneUntilItCan(int concurrency) throws Exception {
        Path directory = shm.directory("starved-lanes-" + concurrency);
        String large = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(30_000); // above the 4 KB slot class
        try (ChildJvm provider = peer(directory, "pricing-a", "--peer.pricing=true",
                "--peer.pricing-concurrency=" + concurrency);
             ChildJvm client = peer(directory, "caller", "--peer.client=true")) {
            provider.awaitLine("READY", LINE);
            client.awaitLine("READY", LINE);
            try (ConfigurableApplicationContext app = app(directory, "shop", PricingClient.class,
                    "--pricing.reply-timeout=30s");
                 ExecutorService pool = Executors.newSingleThreadExecutor()) {
                Segment main = app.getBean("main", Segment.class);
                MessageChannel pricing = app.getBean("pricingClient.input", MessageChannel.class);
                MessagingTemplate template = new MessagingTemplate();
                String expected = large.toUpperCase() + "@" + provider.pid();
                assertThat(template.sendAndReceive(pricing, new GenericMessage<>(large)).getPayload()).isEqualTo(expected);

                // The provider cannot open the request's memfd.
                provider.send("STARVE");
                provider.awaitLine("STARVED", LINE);
                Future<Message<?>> call = pool.submit(() -> template.sendAndReceive(pricing, new GenericMessage<>(large)));
                await("the provider says it cannot read the request now",
                        () -> provider.output().contains("the inbound gateway of service 'pricing' cannot read a request of peer"));
                assertThat(provider.output()).contains("still stands")
                        .containsAnyOf("failed: EMFILE", "cannot read /proc/").doesNotContain("dropped a request");
                assertThat(main.leases().leases()).as("the request's memfd stays leased").hasSize(1);
                long ticks = cpuTicks(provider.pid(), "shm-service-pr");
                LockSupport.parkNanos(Duration.ofSeconds(1).toNanos()); // a second of the provider's retries
                assertThat(cpuTicks(provider.pid(), "shm-service-pr") - ticks)
                        .as("CPU of the serving thread in that second, in 10 ms ticks: it sleeps between tries")
                        .isLessThan(30);
                assertThat(call).isNotDone();
                provider.send("FEED");
                provider.awaitLine("FED", LINE);
                assertThat(call.get(30, TimeUnit.SECONDS).getPayload()).isEqualTo(expected);
                await("the provider ended the request's lease", () -> main.leases().leases().isEmpty());

                // The client cannot open the reply's memfd.
                client.send("CALL big:1000000");
                provider.awaitLine("BIG", LINE);
                provider.send("RELEASE");
                assertThat(client.awaitLine("REPLY", LINE)).isEqualTo("1000000 " + provider.pid());
                client.send("CALL big:1000000");
                provider.awaitLine("BIG", LINE); // the request is in hand: the reply comes on RELEASE
                client.send("STARVE");
                client.awaitLine("STARVED", LINE);
                provider.send("RELEASE");
                await("the client says it cannot read the reply now",
                        () -> client.output().contains("the outbound gateway of service 'pricing' cannot read a reply now"));
                assertThat(client.output()).doesNotContain("dropped a reply");
                client.send("FEED");
                client.awaitLine("FED", LINE);
                assertThat(client.awaitLine("REPLY", LINE)).isEqualTo("1000000 " + provider.pid());
                assertThat(client.output()).doesNotContain("CALL FAILED");
            }
            provider.send("EXIT");
            client.send("EXIT");
            assertThat(provider.awaitExit(LINE)).isZero();
            assertThat(client.awaitExit(LINE)).isZero();
        }
    }

    @Test
    void largeRequestsAndRepliesTravelInMemfdsAndAStandingByProviderTakesOverWhenTheProviderIsKilled()
            throws Exception {
        Path directory = shm.directory("large");
        long self = ProcessHandle.current().pid();
        // peer-app.yml's largest slot class is 4 KB: these requests and their replies go in memfds.
        String large = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(30_000); // about 1 MB
        try (ChildJvm first = peer(directory, "pricing-a", "--peer.pricing=true")) {
            first.awaitLine("READY", LINE);
            try (ChildJvm second = peer(directory, "pricing-b", "--peer.pricing=true");
                 ConfigurableApplicationContext app = app(directory, "shop", PricingClient.class)) {
                second.awaitLine("READY", LINE);
                Segment main = app.getBean("main", Segment.class);
                MessageChannel pricing = app.getBean("pricingClient.input", MessageChannel.class);
                MessagingTemplate template = new MessagingTemplate();
                template.setReceiveTimeout(10_000);
                assertThat(template.sendAndReceive(pricing, new GenericMessage<>(large)).getPayload())
                        .isEqualTo(large.toUpperCase() + "@" + first.pid());
                assertThat(main.leases().leases()).as("each reader ended the lease of what it read").isEmpty();

                // Several callers at once: a memfd per request in flight, each reply to its own caller.
                List<Future<Boolean>> callers = new ArrayList<>();
                try (ExecutorService pool = Executors.newFixedThreadPool(4)) {
                    for (int t = 0; t < 4; t++) {
                        String request = t + large + t;
                        callers.add(pool.submit(() -> {
                            for (int i = 0; i < 5; i++) {
                                Object reply = template.sendAndReceive(pricing, new GenericMessage<>(request))
                                        .getPayload();
                                if (!reply.equals(request.toUpperCase() + "@" + first.pid())) {
                                    return false;
                                }
                            }
                            return true;
                        }));
                    }
                    for (Future<Boolean> caller : callers) {
                        assertThat(caller.get(60, TimeUnit.SECONDS)).as("every reply answers its request").isTrue();
                    }
                }
                assertThat(main.leases().leases()).isEmpty();
                template.sendAndReceive(pricing, new GenericMessage<>("small")); // the client closes what was read
                assertThat(gatewayMemfds(self)).as("memfds left open in this process").isZero();
                await("the provider closes the memfds of replies read", () -> gatewayMemfds(first.pid()) == 0);

                // A large request written while the provider is busy, and the provider killed before it reads it.
                try (ExecutorService pool = Executors.newFixedThreadPool(2)) {
                    Future<?> slow = pool.submit(() -> template.sendAndReceive(pricing, new GenericMessage<>("slow")));
                    first.awaitLine("SLOW", LINE);
                    Future<?> unread = pool.submit(() -> template.sendAndReceive(pricing, new GenericMessage<>(large)));
                    await("the unread request's lease", () -> main.leases().leases().size() == 1);
                    int service = main.directory().lookup("pricing").getAsInt();
                    int dead = main.directory().entry(service).provider();
                    first.kill();
                    // Failed by the reset of the pair, or by the 2 s reply timeout if that came first.
                    assertThatThrownBy(() -> unread.get(30, TimeUnit.SECONDS)).hasCauseInstanceOf(MessagingException.class);
                    assertThatThrownBy(() -> slow.get(30, TimeUnit.SECONDS)).hasCauseInstanceOf(MessagingException.class);
                    await("the standby provides the service", () -> {
                        int provider = main.directory().entry(service).provider();
                        return provider >= 0 && provider != dead;
                    });
                    await("the dead provider recovered (its lanes reset)",
                            () -> main.counters().get(SegmentCounters.PEERS_RECOVERED) > 0);
                }
                assertThat(template.sendAndReceive(pricing, new GenericMessage<>(large)).getPayload())
                        .isEqualTo(large.toUpperCase() + "@" + second.pid());
                assertThat(main.leases().leases()).as("the lease of the request the dead provider never read")
                        .isEmpty();
                template.sendAndReceive(pricing, new GenericMessage<>("small"));
                assertThat(gatewayMemfds(self)).isZero();
                second.send("EXIT");
                assertThat(second.awaitExit(LINE)).isZero();
            }
        }
    }

    @Test
    void aConsumerWithConcurrencyHandlesMessagesAtOnceAndAllItHadInHandIsRedeliveredWhenItIsKilled()
            throws Exception {
        Path directory = shm.directory("members");
        int count = 10;
        try (ConfigurableApplicationContext app = app(directory, "orders-service", SenderConfiguration.class);
             ChildJvm holder = peer(directory, "billing", "--peer.listen=true", "--peer.hold=3",
                     "--shm.channels.events.concurrency=3")) {
            holder.awaitLine("READY", LINE);
            MessageChannel events = app.getBean("events", MessageChannel.class);
            for (int i = 0; i < count; i++) {
                assertThat(events.send(new GenericMessage<>("event-" + i))).isTrue();
            }
            // Three threads, each holding one message: one member would hold one and leave the rest waiting.
            await("three messages held at once", () -> lines(holder, "HOLDING ").size() == 3);
            Set<String> held = Set.copyOf(lines(holder, "HOLDING "));

            BlockingQueue<Message<?>> got = new LinkedBlockingQueue<>();
            app.getBean(IntegrationFlowContext.class).registration(IntegrationFlow.from(Shm.inboundAdapter(
                            app.getBean("main", Segment.class), "events")
                            .channelOptions(dev.shm.core.ring.ChannelOptions.defaults().withCapacity(64).withSlotSize(256))
                            .group("billing"))
                    .handle(got::add).get()).register();
            holder.kill();

            Set<String> redelivered = new java.util.HashSet<>();
            Set<String> all = new java.util.HashSet<>();
            for (int i = 0; i < count; i++) {
                Message<?> message = got.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
                assertThat(message).as("message %d of %d after the kill", i + 1, count).isNotNull();
                assertThat(all.add((String) message.getPayload())).as("delivered twice: %s", message).isTrue();
                if (Boolean.TRUE.equals(message.getHeaders().get(ShmHeaders.REDELIVERED))) {
                    redelivered.add((String) message.getPayload());
                }
            }
            assertThat(redelivered).as("the three in hand, flagged").isEqualTo(held);
            assertThat(got.poll(200, TimeUnit.MILLISECONDS)).as("nothing more").isNull();
        }
    }
}
