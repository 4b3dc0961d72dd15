package dev.shm.spring.dsl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.ring.Backpressure;
import dev.shm.core.ring.Channel;
import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.counters.SegmentCounters;
import dev.shm.core.lane.Lane;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.segment.DirectoryDescriptor;
import dev.shm.core.segment.Segment;
import dev.shm.core.testing.ShmDirectory;
import dev.shm.spring.autoconfigure.ShmAutoConfiguration;
import dev.shm.spring.channel.PollableShmChannel;
import dev.shm.spring.channel.SubscribableShmChannel;
import dev.shm.spring.gateway.ShmInboundGateway;
import dev.shm.spring.inbound.ShmInboundChannelAdapter;
import dev.shm.spring.outbound.ShmMessageHandler;
import dev.shm.spring.support.ShmDecodingException;
import dev.shm.spring.support.ShmHeaders;
import dev.shm.spring.support.ShmMessageCodec;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.springframework.beans.factory.BeanFactory;
import org.springframework.beans.factory.BeanFactoryAware;
import org.springframework.beans.factory.InitializingBean;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.integration.autoconfigure.IntegrationAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.SmartLifecycle;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.integration.annotation.ServiceActivator;
import org.springframework.integration.channel.QueueChannel;
import org.springframework.integration.dsl.IntegrationFlow;
import org.springframework.integration.core.MessagingTemplate;
import org.springframework.integration.dsl.Pollers;
import org.springframework.messaging.Message;
import org.springframework.messaging.MessageChannel;
import org.springframework.messaging.MessageDeliveryException;
import org.springframework.messaging.support.ErrorMessage;
import org.springframework.messaging.support.GenericMessage;
import org.springframework.messaging.support.MessageBuilder;

/**
 * The DSL components in one JVM: two application contexts attached to one segment as two peers
 * (the cross-process behaviour is in the integration tests).
 */
class ShmDslTests {

    static final ChannelOptions SMALL = ChannelOptions.defaults().withCapacity(16).withSlotSize(256);

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private ApplicationContextRunner runner(Path directory) {
        return new ApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(IntegrationAutoConfiguration.class, ShmAutoConfiguration.class))
                .withPropertyValues("shm.directory=" + directory, "shm.segments.main.size=8MB",
                        "shm.segments.main.slot-classes[0].size=1KB", "shm.segments.main.slot-classes[0].count=16");
    }

    @Configuration(proxyBeanMethods = false)
    static class Consumer {
        @Bean
        QueueChannel received() {
            return new QueueChannel();
        }

        @Bean
        QueueChannel failures() {
            return new QueueChannel();
        }

        @Bean
        IntegrationFlow consume(Segment main) {
            return IntegrationFlow.from(Shm.inboundAdapter(main, "events").channelOptions(SMALL).group("billing")
                            .exclusive(true).errorChannel("failures").id("eventsIn"))
                    .channel("received").get();
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class Producer {
        @Bean
        IntegrationFlow produce(Segment main) {
            return flow -> flow.handle(Shm.outboundAdapter(main, "events").channelOptions(SMALL));
        }
    }

    @Test
    void outboundAdapterToInboundAdapterWithPauseResumeAndUndecodableRecords() {
        Path directory = shm.directory("adapters");
        runner(directory).withUserConfiguration(Consumer.class).run(consumer -> {
            assertThat(consumer).hasNotFailed();
            runner(directory).withUserConfiguration(Producer.class).run(producer -> {
                assertThat(producer).hasNotFailed();
                MessageChannel in = producer.getBean("produce.input", MessageChannel.class);
                QueueChannel received = consumer.getBean("received", QueueChannel.class);
                in.send(new GenericMessage<>("one"));
                Message<?> one = received.receive(10_000);
                assertThat(one).isNotNull();
                assertThat(one.getPayload()).isEqualTo("one");
                assertThat(one.getHeaders()).containsEntry(ShmHeaders.CHANNEL, "events");

                ShmInboundChannelAdapter adapter = consumer.getBean("eventsIn", ShmInboundChannelAdapter.class);
                adapter.pause();
                assertThat(adapter.isPaused()).isTrue();
                in.send(new GenericMessage<>("two"));
                assertThat(received.receive(300)).as("nothing while paused").isNull();
                adapter.resume();
                assertThat(received.receive(10_000).getPayload()).isEqualTo("two");

                // A record that is not a message: the error channel gets its raw bytes, the adapter goes on.
                try (Channel raw = Channel.declare(producer.getBean("main", Segment.class), "events", SMALL)) {
                    assertThat(raw.stats().groups()).singleElement().satisfies(g -> {
                        assertThat(g.name()).isEqualTo("billing");
                        assertThat(g.exclusive()).as("the adapter holds its group alone").isTrue();
                        assertThat(g.members()).isEqualTo(1);
                    });
                    raw.send(new byte[] {1, 2, 3, 4, 5});
                }
                Message<?> failure = consumer.getBean("failures", QueueChannel.class).receive(10_000);
                assertThat(failure).isInstanceOf(ErrorMessage.class);
                assertThat(failure.getPayload()).isInstanceOf(ShmDecodingException.class);
                ShmDecodingException decoding = (ShmDecodingException) failure.getPayload();
                assertThat((byte[]) decoding.getFailedMessage().getPayload()).containsExactly(1, 2, 3, 4, 5);
                in.send(new GenericMessage<>("three"));
                assertThat(received.receive(10_000).getPayload()).isEqualTo("three");
            });
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class Members {
        /** Trips when three handlers wait on it at once. */
        final CyclicBarrier together = new CyclicBarrier(3);
        /** Trips when both members of the channel below wait on it at once. */
        final CyclicBarrier pair = new CyclicBarrier(2);

        @Bean
        SubscribableShmChannel jobs(Segment main) {
            return Shm.channel(main, "jobs", SMALL).group("jobbers").concurrency(2).getObject();
        }

        @Bean
        QueueChannel done() {
            return new QueueChannel();
        }

        @Bean
        IntegrationFlow job(SubscribableShmChannel jobs, QueueChannel done) {
            return IntegrationFlow.from(jobs).handle(message -> {
                try {
                    pair.await(10, TimeUnit.SECONDS);
                } catch (Exception e) {
                    throw new IllegalStateException("not two at once", e);
                }
                done.send(message);
            }).get();
        }

        @Bean
        QueueChannel received() {
            return new QueueChannel();
        }

        @Bean
        IntegrationFlow consume(Segment main, QueueChannel received) {
            return IntegrationFlow.from(Shm.inboundAdapter(main, "work").channelOptions(SMALL).group("workers")
                            .concurrency(3).id("workIn"))
                    .handle(message -> {
                        if (((String) message.getPayload()).startsWith("together")) {
                            try {
                                together.await(10, TimeUnit.SECONDS);
                            } catch (Exception e) {
                                throw new IllegalStateException("not three at once", e);
                            }
                        }
                        received.send(MessageBuilder.fromMessage(message)
                                .setHeader("thread", Thread.currentThread().getName()).build());
                    }).get();
        }
    }

    @Test
    void anInboundAdapterWithConcurrencyRunsItsMembersInParallelAndPausesThemAll() {
        runner(shm.directory("members")).withUserConfiguration(Members.class).run(context -> {
            assertThat(context).hasNotFailed();
            QueueChannel received = context.getBean("received", QueueChannel.class);
            try (Channel work = Channel.declare(context.getBean("main", Segment.class), "work", SMALL)) {
                ShmMessageCodec codec = context.getBean(ShmMessageCodec.class);
                for (int i = 0; i < 3; i++) {
                    assertThat(work.send(codec.encode(new GenericMessage<>("together-" + i)).toByteArray()))
                            .isEqualTo(dev.shm.core.ring.SendOutcome.SENT);
                }
                java.util.Set<Object> threads = new java.util.HashSet<>();
                for (int i = 0; i < 3; i++) {
                    Message<?> got = received.receive(10_000);
                    assertThat(got).as("the three handled at once").isNotNull();
                    threads.add(got.getHeaders().get("thread"));
                }
                assertThat(threads).hasSize(3);

                ShmInboundChannelAdapter adapter = context.getBean("workIn", ShmInboundChannelAdapter.class);
                adapter.pause();
                work.send(codec.encode(new GenericMessage<>("later")).toByteArray());
                assertThat(received.receive(300)).as("no member takes anything while paused").isNull();
                adapter.resume();
                assertThat(received.receive(10_000).getPayload()).isEqualTo("later");

                // Stopped (every member leaves) and started again (as many join, and run at once again).
                adapter.stop();
                assertThat(adapter.isRunning()).isFalse();
                work.send(codec.encode(new GenericMessage<>("after")).toByteArray());
                assertThat(received.receive(300)).as("no member of the stopped adapter takes it").isNull();
                adapter.start();
                assertThat(received.receive(10_000).getPayload()).isEqualTo("after");
                context.getBean(Members.class).together.reset();
                for (int i = 0; i < 3; i++) {
                    work.send(codec.encode(new GenericMessage<>("together-again-" + i)).toByteArray());
                }
                for (int i = 0; i < 3; i++) {
                    assertThat(received.receive(10_000)).as("three members after the restart").isNotNull();
                }
            }

            // A subscribable channel with two members: its handler runs on both at once.
            MessageChannel jobs = context.getBean("jobs", MessageChannel.class);
            QueueChannel done = context.getBean("done", QueueChannel.class);
            jobs.send(new GenericMessage<>("a"));
            jobs.send(new GenericMessage<>("b"));
            assertThat(done.receive(10_000)).as("both handled at once").isNotNull();
            assertThat(done.receive(10_000)).as("both handled at once").isNotNull();
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class Restart {
        @Bean
        SubscribableShmChannel restart(Segment main) {
            return Shm.channel(main, "restart", SMALL).group("solo").exclusive(true)
                    .drainTimeout(Duration.ofSeconds(2)).getObject();
        }
    }

    /**
     * An exclusive channel stopped while its handler outlives the drain timeout (and ignores the
     * interrupt) keeps holding its group until the handler returns. Started again, the channel waits
     * for that thread, up to the drain timeout, instead of failing at once on its own membership:
     * with a clear error while the handler still runs, and a working consumer once it returned.
     */
    @Test
    void anExclusiveChannelStartedAgainWaitsForItsPreviousConsumerToFinishItsMessage() {
        runner(shm.directory("restart")).withUserConfiguration(Restart.class).run(context -> {
            assertThat(context).hasNotFailed();
            SubscribableShmChannel channel = context.getBean("restart", SubscribableShmChannel.class);
            CountDownLatch inHandler = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            BlockingQueue<Object> received = new LinkedBlockingQueue<>();
            channel.subscribe(message -> {
                received.add(message.getPayload());
                if ("slow".equals(message.getPayload())) {
                    inHandler.countDown();
                    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                    while (System.nanoTime() - deadline < 0) {
                        try {
                            if (release.await(deadline - System.nanoTime(), TimeUnit.NANOSECONDS)) {
                                return;
                            }
                        } catch (InterruptedException ignored) {
                            // a handler that does not stop when interrupted
                        }
                    }
                }
            });
            assertThat(channel.send(new GenericMessage<>("slow"))).isTrue();
            assertThat(inHandler.await(10, TimeUnit.SECONDS)).isTrue();
            channel.stop(); // 2 s, an interrupt, 1 s more: the handler goes on

            assertThatThrownBy(channel::start).isExactlyInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("still handles a message");
            assertThat(channel.isRunning()).as("a start that failed").isFalse();
            release.countDown();
            channel.start();
            assertThat(channel.send(new GenericMessage<>("next"))).isTrue();
            assertThat(received.poll(10, TimeUnit.SECONDS)).isEqualTo("slow");
            assertThat(received.poll(10, TimeUnit.SECONDS)).isEqualTo("next");
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class FailFast {
        @Bean
        IntegrationFlow produce(Segment main) {
            return flow -> flow.handle(Shm.outboundAdapter(main, "full")
                    .channelOptions(SMALL.withCapacity(2).withBackpressure(Backpressure.FAIL)));
        }

        @Bean
        IntegrationFlow consume(Segment main) {
            return IntegrationFlow.from(Shm.inboundAdapter(main, "full").channelOptions(SMALL.withCapacity(2))
                    .group("stuck").autoStartup(false)).channel("nullChannel").get();
        }
    }

    @Test
    void aFullRingFailsTheSendWithFailBackpressure() {
        runner(shm.directory("full")).withUserConfiguration(FailFast.class).run(context -> {
            assertThat(context).hasNotFailed();
            // the group exists but takes nothing: it gates the producer
            try (Channel ring = Channel.declare(context.getBean("main", Segment.class), "full", SMALL.withCapacity(2))) {
                ring.subscribe("stuck", true).close();
            }
            MessageChannel in = context.getBean("produce.input", MessageChannel.class);
            in.send(new GenericMessage<>("a"));
            in.send(new GenericMessage<>("b"));
            assertThatThrownBy(() -> in.send(new GenericMessage<>("c"))).isInstanceOf(MessageDeliveryException.class)
                    .hasMessageContaining("is full");
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class Waits {
        @Bean
        PollableShmChannel waits(Segment main) {
            return Shm.pollableChannel(main, "waits", SMALL.withCapacity(2).withSendTimeout(Duration.ofSeconds(60)))
                    .getObject();
        }

        @Bean
        PollableShmChannel capped(Segment main) {
            return Shm.pollableChannel(main, "capped", SMALL.withCapacity(2).withSendTimeout(Duration.ofMillis(50)))
                    .getObject();
        }
    }

    @Test
    void aSendWithATimeoutWaitsNoLongerThanItNorThanTheChannelsSendTimeout() {
        runner(shm.directory("waits")).withUserConfiguration(Waits.class).run(context -> {
            assertThat(context).hasNotFailed();
            PollableShmChannel waits = context.getBean("waits", PollableShmChannel.class);
            PollableShmChannel capped = context.getBean("capped", PollableShmChannel.class);
            for (PollableShmChannel channel : List.of(waits, capped)) {
                assertThat(channel.send(new GenericMessage<>("a"))).isTrue();
                assertThat(channel.send(new GenericMessage<>("b"))).isTrue();
            }
            // Shorter than the channel's 60 s: the caller's timeout (bounds far below 60 s).
            long start = System.nanoTime();
            assertThat(waits.send(new GenericMessage<>("c"), 0)).as("full, no wait").isFalse();
            assertThat(waits.send(new GenericMessage<>("c"), 50)).as("full for 50 ms").isFalse();
            assertThat(System.nanoTime() - start).isLessThan(TimeUnit.SECONDS.toNanos(30));
            // Longer than the channel's 50 ms (as Spring Integration's endpoints pass 30 s): the channel's.
            start = System.nanoTime();
            assertThat(capped.send(new GenericMessage<>("c"), 60_000)).as("full for the channel's 50 ms").isFalse();
            assertThat(System.nanoTime() - start).isLessThan(TimeUnit.SECONDS.toNanos(30));
            // A send that waits gets the room a receiver frees meanwhile.
            long waitsBefore = waits.getRing().stats().fullWaits();
            java.util.concurrent.atomic.AtomicBoolean sent = new java.util.concurrent.atomic.AtomicBoolean();
            Thread sender = Thread.ofPlatform().start(() -> sent.set(waits.send(new GenericMessage<>("c"), 60_000)));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (waits.getRing().stats().fullWaits() == waitsBefore && System.nanoTime() < deadline) {
                Thread.onSpinWait();
            }
            assertThat(waits.getRing().stats().fullWaits()).as("the send waits for room").isEqualTo(waitsBefore + 1);
            assertThat(waits.receive(10_000).getPayload()).isEqualTo("a");
            sender.join(30_000);
            assertThat(sent).isTrue();
            assertThat(waits.receive(10_000).getPayload()).isEqualTo("b");
            assertThat(waits.receive(10_000).getPayload()).isEqualTo("c");
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class Channels {
        @Bean
        PollableShmChannel jobs(Segment main) {
            return Shm.pollableChannel(main, "jobs").group("workers").exclusive(true).getObject();
        }

        @Bean
        SubscribableShmChannel tasks(Segment main) {
            return Shm.channel(main, "tasks").pointToPoint().getObject();
        }

        @Bean
        QueueChannel done() {
            return new QueueChannel();
        }

        @Bean
        IntegrationFlow work() {
            return IntegrationFlow.from("jobs")
                    .bridge(e -> e.poller(Pollers.fixedDelay(Duration.ofMillis(10)).receiveTimeout(100)))
                    .channel("done").get();
        }
    }

    @Test
    void theDslComponentsTakeTheApplicationsDrainTimeoutUnlessGivenTheirOwn() {
        runner(shm.directory("drain")).withPropertyValues("shm.shutdown.drain-timeout=3s").run(context -> {
            Segment main = context.getBean("main", Segment.class);
            BeanFactory beans = context.getSourceApplicationContext().getAutowireCapableBeanFactory();
            ShmMessageHandler sender = Shm.outboundAdapter(main, "drained").getObject();
            ShmMessageHandler own = Shm.outboundAdapter(main, "drained").drainTimeout(Duration.ofSeconds(1)).getObject();
            ShmInboundChannelAdapter adapter = Shm.inboundAdapter(main, "drained").getObject();
            adapter.setOutputChannel(new QueueChannel());
            ShmInboundGateway gateway = Shm.inboundGateway(main, "drained-service").getObject();
            gateway.setRequestChannel(new QueueChannel());
            SubscribableShmChannel channel = Shm.channel(main, "drained-channel").getObject();
            List<InitializingBean> components = List.of(sender, own, adapter, gateway, channel);
            try {
                for (InitializingBean component : components) {
                    ((BeanFactoryAware) component).setBeanFactory(beans);
                    component.afterPropertiesSet();
                }
                assertThat(sender.getDrainTimeout()).isEqualTo(Duration.ofSeconds(3));
                assertThat(own.getDrainTimeout()).as("its own").isEqualTo(Duration.ofSeconds(1));
                assertThat(adapter.getDrainTimeout()).isEqualTo(Duration.ofSeconds(3));
                assertThat(gateway.getDrainTimeout()).isEqualTo(Duration.ofSeconds(3));
                assertThat(channel.getDrainTimeout()).isEqualTo(Duration.ofSeconds(3));
            } finally {
                sender.destroy();
                own.destroy();
                adapter.destroy();
                gateway.destroy();
                channel.destroy();
            }
        });
    }

    @Test
    void pollableAndPointToPointChannelsFromTheDsl() {
        runner(shm.directory("channels")).withUserConfiguration(Channels.class).run(context -> {
            assertThat(context).hasNotFailed();
            PollableShmChannel jobs = context.getBean("jobs", PollableShmChannel.class);
            assertThat(jobs.getGroup()).isEqualTo("workers");
            assertThat(jobs.isExclusive()).isTrue();
            assertThat(jobs.getRing().stats().groups()).singleElement()
                    .satisfies(g -> assertThat(g.exclusive()).as("held by the pollable channel").isTrue());
            jobs.send(new GenericMessage<>("job-1"));
            Message<?> done = context.getBean("done", QueueChannel.class).receive(10_000);
            assertThat(done).isNotNull();
            assertThat(done.getPayload()).isEqualTo("job-1");

            // Stopped, it leaves its group and stays out, though its poller (which shutdown stops
            // after the channels) goes on calling receive; started again, it takes what came meanwhile.
            jobs.stop();
            jobs.send(new GenericMessage<>("job-2"));
            long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(300); // three of the poller's receive timeouts
            while (System.nanoTime() < until) {
                assertThat(jobs.getRing().stats().groups()).singleElement()
                        .satisfies(g -> assertThat(g.members()).as("members of a stopped channel's group").isZero());
                Thread.sleep(5);
            }
            assertThat(jobs.receive(0)).isNull();
            assertThat(context.getBean("done", QueueChannel.class).receive(0)).isNull();
            jobs.start();
            done = context.getBean("done", QueueChannel.class).receive(10_000);
            assertThat(done).isNotNull();
            assertThat(done.getPayload()).isEqualTo("job-2");

            SubscribableShmChannel tasks = context.getBean("tasks", SubscribableShmChannel.class);
            assertThat(tasks.isBroadcast()).isFalse();
            BlockingQueue<String> first = new LinkedBlockingQueue<>();
            BlockingQueue<String> second = new LinkedBlockingQueue<>();
            tasks.subscribe(m -> first.add((String) m.getPayload()));
            tasks.subscribe(m -> second.add((String) m.getPayload()));
            for (int i = 0; i < 10; i++) {
                tasks.send(new GenericMessage<>("task-" + i));
            }
            List<String> all = new java.util.ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (all.size() < 10 && System.nanoTime() < deadline) {
                String s = first.poll(10, TimeUnit.MILLISECONDS);
                if (s != null) {
                    all.add(s);
                }
                second.drainTo(all);
            }
            assertThat(all).hasSize(10);
            assertThat(first).as("one handler per message, round-robin").isEmpty();
        });
    }

    /**
     * An application whose own producers send before its shm consumers start: a subscribable channel
     * of {@code shm.channels} with a service activator, an inbound adapter and a pollable channel.
     */
    @Configuration(proxyBeanMethods = false)
    static class EarlySenders {
        final BlockingQueue<String> orders = new LinkedBlockingQueue<>();

        @Bean
        Object ordersActivator() {
            return new Object() {
                @ServiceActivator(inputChannel = "orders")
                public void handle(String payload) {
                    orders.add(payload);
                }
            };
        }

        @Bean
        QueueChannel events() {
            return new QueueChannel();
        }

        @Bean
        IntegrationFlow eventsIn(Segment main) {
            return IntegrationFlow.from(Shm.inboundAdapter(main, "events").channelOptions(SMALL).group("reader"))
                    .channel("events").get();
        }

        @Bean
        IntegrationFlow eventsOut(Segment main) {
            return flow -> flow.handle(Shm.outboundAdapter(main, "events").channelOptions(SMALL));
        }

        @Bean
        PollableShmChannel jobs(Segment main) {
            return Shm.pollableChannel(main, "jobs", SMALL).group("workers").getObject();
        }

        @Bean
        QueueChannel done() {
            return new QueueChannel();
        }

        @Bean
        IntegrationFlow work() {
            return IntegrationFlow.from("jobs")
                    .bridge(e -> e.poller(Pollers.fixedDelay(Duration.ofMillis(10)).receiveTimeout(100)))
                    .channel("done").get();
        }

        /** Sends in phase 0: after the event-driven endpoints subscribed, before the shm consumers start. */
        @Bean
        SmartLifecycle earlySender(BeanFactory beans) {
            return new SmartLifecycle() {
                private volatile boolean running;

                @Override
                public void start() {
                    for (int i = 1; i <= 3; i++) {
                        assertThat(beans.getBean("orders", MessageChannel.class)
                                .send(new GenericMessage<>("order-" + i))).isTrue();
                        assertThat(beans.getBean("eventsOut.input", MessageChannel.class)
                                .send(new GenericMessage<>("event-" + i))).isTrue();
                        assertThat(beans.getBean("jobs", MessageChannel.class)
                                .send(new GenericMessage<>("job-" + i))).isTrue();
                    }
                    running = true;
                }

                @Override
                public void stop() {
                    running = false;
                }

                @Override
                public boolean isRunning() {
                    return running;
                }

                @Override
                public int getPhase() {
                    return 0;
                }
            };
        }
    }

    @Test
    void whatTheApplicationSendsBeforeItsShmConsumersStartIsKeptForThem() {
        runner(shm.directory("early")).withUserConfiguration(EarlySenders.class)
                .withPropertyValues("shm.channels.orders.group=shop")
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    BlockingQueue<String> orders = context.getBean(EarlySenders.class).orders;
                    QueueChannel events = context.getBean("events", QueueChannel.class);
                    QueueChannel done = context.getBean("done", QueueChannel.class);
                    for (int i = 1; i <= 3; i++) {
                        assertThat(orders.poll(10, TimeUnit.SECONDS)).isEqualTo("order-" + i);
                        Message<?> event = events.receive(10_000);
                        assertThat(event).isNotNull();
                        assertThat(event.getPayload()).isEqualTo("event-" + i);
                        Message<?> job = done.receive(10_000);
                        assertThat(job).isNotNull();
                        assertThat(job.getPayload()).isEqualTo("job-" + i);
                    }
                    assertThat(orders.poll(100, TimeUnit.MILLISECONDS)).as("each once").isNull();
                    assertThat(events.receive(0)).isNull();
                    assertThat(done.receive(0)).isNull();
                });
    }

    @Configuration(proxyBeanMethods = false)
    static class Pricing {
        @Bean
        IntegrationFlow pricing(Segment main) {
            return IntegrationFlow.from(Shm.inboundGateway(main, "pricing"))
                    .transform(String.class, String::toUpperCase).get();
        }

        @Bean
        IntegrationFlow ask(Segment main) {
            return flow -> flow.handle(Shm.outboundGateway(main, "pricing").replyTimeout(Duration.ofSeconds(10)));
        }
    }

    /**
     * A damaged frame in one client's request lane (a length near 2^31, written as something else
     * than a lane writer would) is counted and dropped by the provider, which goes on serving: the
     * next requests, of that client and of the others, are answered. Before, the exception ended
     * the serving thread while the process stayed the provider, and every request timed out.
     */
    @Test
    void anInboundGatewayServesOnAfterADamagedRequestFrame() {
        runner(shm.directory("damaged")).withUserConfiguration(Pricing.class).run(context -> {
            assertThat(context).hasNotFailed();
            Segment main = context.getBean("main", Segment.class);
            MessagingTemplate template = new MessagingTemplate();
            template.setReceiveTimeout(10_000);
            MessageChannel ask = context.getBean("ask.input", MessageChannel.class);
            assertThat(template.convertSendAndReceive(ask, "first", String.class)).isEqualTo("FIRST");

            // A client of its own (this process is the provider too), whose request lane gets a
            // frame that claims 2^31 - 4 bytes, published at once with the write position.
            int service = main.directory().declare("pricing", DirectoryDescriptor.SERVICE, new String[0],
                    new long[0], _ -> new long[] {0, 0});
            LaneTable.LanePair rogue = main.lanes().open(service, main.peerId());
            MemorySegment control = field(rogue.toService(), "memory");
            MemorySegment data = field(rogue.toService(), "data");
            long before = main.counters().get(SegmentCounters.CORRUPT_FRAMES_REJECTED);
            data.set(ValueLayout.JAVA_INT, 0, Integer.MAX_VALUE - 3); // the frame's length
            data.set(ValueLayout.JAVA_SHORT, 4, (short) 0); // its type: inline
            long write = (long) LONG.getVolatile(control, 0L); // the write position's word: epoch, position 0
            LONG.setVolatile(control, 0L, write + 16);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (main.counters().get(SegmentCounters.CORRUPT_FRAMES_REJECTED) == before
                    && System.nanoTime() < deadline) {
                Thread.sleep(5); // a bounded poll of the provider's next rescan
            }
            assertThat(main.counters().get(SegmentCounters.CORRUPT_FRAMES_REJECTED)).isEqualTo(before + 1);

            assertThat(template.convertSendAndReceive(ask, "second", String.class)).isEqualTo("SECOND");
            assertThat(rogue.toService().offerInline(MemorySegment.ofArray(new byte[8]), 0, 8))
                    .as("the damaged lane takes frames again").isEqualTo(Lane.OK);
            main.lanes().close(rogue);
            assertThat(template.convertSendAndReceive(ask, "third", String.class)).isEqualTo("THIRD");
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class SlowService {
        final CountDownLatch entered = new CountDownLatch(1);
        final java.util.concurrent.atomic.AtomicBoolean release = new java.util.concurrent.atomic.AtomicBoolean();

        @Bean
        IntegrationFlow slow(Segment main) {
            return IntegrationFlow.from(Shm.inboundGateway(main, "slow").concurrency(2)
                            .drainTimeout(Duration.ofMillis(200)).id("slowIn"))
                    .handle((payload, headers) -> {
                        entered.countDown();
                        while (!release.get()) {
                            Thread.onSpinWait(); // a flow that ignores interrupts
                        }
                        return payload;
                    }).get();
        }

        @Bean
        IntegrationFlow askSlow(Segment main) {
            return flow -> flow.handle(Shm.outboundGateway(main, "slow").replyTimeout(Duration.ofSeconds(10)));
        }
    }

    /**
     * An inbound gateway with workers, stopped while a worker is in a flow that ignores interrupts
     * (its drain times out), does not start again while that worker lives: it would reply through
     * lane objects of its own beside the new run's, two writers on one lane. Once the worker
     * returned, it starts and serves.
     */
    @Test
    void anInboundGatewayDoesNotStartAgainWhileAWorkerOfItsLastRunIsInAFlow() {
        runner(shm.directory("slow")).withUserConfiguration(SlowService.class).run(context -> {
            assertThat(context).hasNotFailed();
            SlowService service = context.getBean(SlowService.class);
            ShmInboundGateway gateway = context.getBean("slowIn", ShmInboundGateway.class);
            MessagingTemplate template = new MessagingTemplate();
            template.setReceiveTimeout(10_000);
            MessageChannel ask = context.getBean("askSlow.input", MessageChannel.class);
            Thread caller = Thread.ofPlatform().daemon().start(() -> {
                try {
                    template.convertSendAndReceive(ask, "held", String.class);
                } catch (RuntimeException e) {
                    // its reply comes too late, or never: not what this test looks at
                }
            });
            assertThat(service.entered.await(10, TimeUnit.SECONDS)).isTrue();
            gateway.stop();
            try {
                assertThatThrownBy(gateway::start).isInstanceOf(IllegalStateException.class)
                        .hasMessageContaining("a worker of its last run");
            } finally {
                service.release.set(true);
            }
            gateway.start();
            assertThat(template.convertSendAndReceive(ask, "next", String.class)).isEqualTo("next");
            caller.join(TimeUnit.SECONDS.toMillis(15));
            assertThat(caller.isAlive()).isFalse();
        });
    }

    @Configuration(proxyBeanMethods = false)
    static class BigReplies {
        @Bean
        IntegrationFlow quote(Segment main) {
            return IntegrationFlow.from(Shm.inboundGateway(main, "quote"))
                    .transform(String.class, p -> p.equals("big") ? "q".repeat(10_000) : p.toUpperCase()).get();
        }

        @Bean
        IntegrationFlow askQuote(Segment main) {
            return flow -> flow.handle(Shm.outboundGateway(main, "quote").replyTimeout(Duration.ofSeconds(15)));
        }
    }

    /**
     * A client that stopped reading its replies (its callers timed out: a client reads its reply lane
     * only while one waits) has its reply lane fill up; the provider drops that client's replies once
     * the lane stayed full and unread for the stall bound (here the segment's 2 s liveness timeout),
     * and answers the other clients. Before, each of that client's replies held the provider for the
     * full reply timeout (30 s), and the other clients timed out behind them.
     */
    @Test
    void aClientThatStoppedReadingItsRepliesDoesNotHoldUpTheOthers() {
        runner(shm.directory("stalled")).withUserConfiguration(BigReplies.class).run(context -> {
            assertThat(context).hasNotFailed();
            Segment main = context.getBean("main", Segment.class);
            ShmMessageCodec codec = context.getBean(ShmMessageCodec.class);
            MessagingTemplate template = new MessagingTemplate();
            template.setReceiveTimeout(15_000);
            MessageChannel ask = context.getBean("askQuote.input", MessageChannel.class);
            assertThat(template.convertSendAndReceive(ask, "first", String.class)).isEqualTo("FIRST");

            // A client of its own that sends twelve requests for 10 KB replies and reads none of them:
            // six fill its 64 KB reply lane, and the provider waits on the seventh.
            int service = main.directory().declare("quote", DirectoryDescriptor.SERVICE, new String[0],
                    new long[0], _ -> new long[] {0, 0});
            LaneTable.LanePair mute = main.lanes().open(service, main.peerId());
            byte[] request = codec.encode(new GenericMessage<>("big")).toByteArray();
            for (int i = 0; i < 12; i++) {
                assertThat(mute.toService().offerInline(MemorySegment.ofArray(request), 0, request.length))
                        .isEqualTo(Lane.OK);
            }
            main.directory().doorbell(service).ring();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (mute.toClient().pending() < 6 * 10_000 && System.nanoTime() < deadline) {
                Thread.sleep(5); // a bounded poll of the provider's replies
            }
            assertThat(mute.toClient().pending()).as("the mute client's reply lane, full").isGreaterThan(6 * 10_000);

            // Within the caller's 15 s: behind one stall bound, not behind six reply timeouts of 30 s.
            assertThat(template.convertSendAndReceive(ask, "second", String.class)).isEqualTo("SECOND");
            main.lanes().close(mute);
            assertThat(template.convertSendAndReceive(ask, "third", String.class)).isEqualTo("THIRD");
        });
    }

    /**
     * A client whose lane pair is found damaged closes it (its release formats both lanes) and goes
     * on with a new one: a damaged reply lane fails the request whose reply it held, with a message
     * that says so, and the next request is answered; a damaged request lane is found by the write
     * (the client's own write position, here), and the request goes out again on a new pair. Before, the damaged pair stayed in use and every
     * later request failed on it.
     */
    @Test
    void anOutboundGatewayClosesADamagedPairAndGoesOnWithANewOne() {
        runner(shm.directory("damaged-pair")).withUserConfiguration(Pricing.class).run(context -> {
            assertThat(context).hasNotFailed();
            Segment main = context.getBean("main", Segment.class);
            MessagingTemplate template = new MessagingTemplate();
            template.setReceiveTimeout(10_000);
            MessageChannel ask = context.getBean("ask.input", MessageChannel.class);
            assertThat(template.convertSendAndReceive(ask, "first", String.class)).isEqualTo("FIRST");
            int service = main.directory().declare("pricing", DirectoryDescriptor.SERVICE, new String[0],
                    new long[0], _ -> new long[] {0, 0});

            // The reply lane's write position, past the lane's data.
            LaneTable.LanePair pair = main.lanes().lanesOf(service).getFirst();
            MemorySegment replies = field(pair.toClient(), "memory");
            long word = (long) LONG.getVolatile(replies, 0L);
            LONG.setVolatile(replies, 0L, (word & 0xFFFF_0000_0000_0000L) | (pair.toClient().capacity() + 64L));
            assertThatThrownBy(() -> template.convertSendAndReceive(ask, "second", String.class))
                    .hasStackTraceContaining("were damaged");
            assertThat(template.convertSendAndReceive(ask, "third", String.class)).isEqualTo("THIRD");

            // The request lane's write position, past the lane's data.
            pair = main.lanes().lanesOf(service).getFirst();
            MemorySegment requests = field(pair.toService(), "memory");
            word = (long) LONG.getVolatile(requests, 0L);
            LONG.setVolatile(requests, 0L, (word & 0xFFFF_0000_0000_0000L) | (pair.toService().capacity() + 64L));
            assertThat(template.convertSendAndReceive(ask, "fourth", String.class)).isEqualTo("FOURTH");
        });
    }

    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();

    private static MemorySegment field(Lane lane, String name) throws ReflectiveOperationException {
        java.lang.reflect.Field field = Lane.class.getDeclaredField(name);
        field.setAccessible(true);
        return (MemorySegment) field.get(lane);
    }

    @Test
    void largePayloadsTravelThroughTheSlotPoolAndMemfdBuffers() {
        Path directory = shm.directory("large");
        runner(directory).withUserConfiguration(Consumer.class).run(consumer -> {
            runner(directory).withUserConfiguration(Producer.class).run(producer -> {
                MessageChannel in = producer.getBean("produce.input", MessageChannel.class);
                QueueChannel received = consumer.getBean("received", QueueChannel.class);
                for (int size : new int[] {600, 100_000}) { // a 1 KB pool slot; above every slot class: a memfd
                    byte[] payload = new byte[size];
                    new java.util.Random(size).nextBytes(payload);
                    in.send(new GenericMessage<>(payload));
                    Message<?> got = received.receive(10_000);
                    assertThat(got).as("%d bytes", size).isNotNull();
                    assertThat((byte[]) got.getPayload()).isEqualTo(payload);
                }
            });
        });
    }

    @Test
    void anInboundGatewayRefusesAConcurrencyBelowOne() {
        runner(shm.directory("concurrency")).run(context -> {
            Segment main = context.getBean("main", Segment.class);
            assertThatThrownBy(() -> Shm.inboundGateway(main, "pricing").concurrency(0))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("concurrency of the inbound gateway of service 'pricing' is 0; it must be at least 1");
        });
    }
}
