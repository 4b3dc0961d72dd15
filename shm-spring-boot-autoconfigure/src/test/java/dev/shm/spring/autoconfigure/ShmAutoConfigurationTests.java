package dev.shm.spring.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.shm.core.NativeAccessException;
import dev.shm.core.memory.MemfdBuffer;
import dev.shm.core.ring.Backpressure;
import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.ring.WaitStrategy;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentOptions;
import dev.shm.core.segment.SlotClass;
import dev.shm.core.testing.ShmDirectory;
import dev.shm.spring.channel.SubscribableShmChannel;
import dev.shm.spring.support.PayloadConverter;
import dev.shm.spring.support.ShmDeclarationMismatchException;
import dev.shm.spring.support.ShmGroupBusyException;
import dev.shm.spring.support.ShmMessageCodec;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.diagnostics.FailureAnalysis;
import org.springframework.boot.diagnostics.FailureAnalyzer;
import org.springframework.boot.integration.autoconfigure.IntegrationAutoConfiguration;
import org.springframework.boot.test.context.FilteredClassLoader;
import org.springframework.boot.test.context.assertj.AssertableApplicationContext;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.integration.channel.DirectChannel;
import org.springframework.messaging.MessageChannel;
import org.springframework.messaging.support.GenericMessage;
import org.springframework.util.unit.DataSize;
import tools.jackson.databind.json.JsonMapper;

class ShmAutoConfigurationTests {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(IntegrationAutoConfiguration.class, ShmAutoConfiguration.class))
            .withPropertyValues("spring.application.name=billing");

    /** Small slot classes: creating the default 20 MB of slots in every test would only cost time. */
    private String[] small(Path directory, String segment) {
        return new String[] {"shm.directory=" + directory, "shm.segments." + segment + ".size=8MB",
                "shm.segments." + segment + ".slot-classes[0].size=1KB",
                "shm.segments." + segment + ".slot-classes[0].count=16"};
    }

    @Test
    void propertyDefaultsEqualShmCoreDefaults() {
        ShmProperties properties = new ShmProperties();
        assertThat(properties.isEnabled()).isTrue();
        assertThat(properties.getDirectory()).isEqualTo(SegmentOptions.DEFAULT_DIRECTORY);
        ShmProperties.Segment segment = new ShmProperties.Segment();
        assertThat(segment.getSize().toBytes()).isEqualTo(SegmentOptions.DEFAULT_SIZE);
        assertThat(segment.getMaxPeers()).isEqualTo(SegmentOptions.DEFAULT_MAX_PEERS);
        assertThat(segment.getHeartbeatInterval()).isEqualTo(SegmentOptions.DEFAULT_HEARTBEAT_INTERVAL);
        assertThat(segment.getLivenessTimeout()).isEqualTo(SegmentOptions.DEFAULT_LIVENESS_TIMEOUT);
        assertThat(segment.getPermissions()).isEqualTo(SegmentOptions.DEFAULT_PERMISSIONS);
        assertThat(segment.getSlotClasses()).extracting(c -> new SlotClass(c.getSize().toBytes(), c.getCount()))
                .isEqualTo(SegmentOptions.DEFAULT_SLOT_CLASSES);
        SegmentOptions fromProperties = ShmOptions.segmentOptions(withSegment(new ShmProperties(), "main", segment),
                "main");
        assertThat(fromProperties).isEqualTo(SegmentOptions.named("main"));

        ShmProperties.Channel channel = new ShmProperties.Channel();
        assertThat(channel.getType()).isEqualTo(ShmProperties.ChannelType.PUBLISH_SUBSCRIBE);
        assertThat(channel.isRequired()).isTrue();
        assertThat(channel.isExclusive()).isFalse();
        assertThat(ShmOptions.channelOptions("orders", channel)).isEqualTo(ChannelOptions.defaults());
        assertThat(channel.getCapacity()).isEqualTo(ChannelOptions.DEFAULT_CAPACITY);
        assertThat(channel.getSlotSize().toBytes()).isEqualTo(ChannelOptions.DEFAULT_SLOT_SIZE);
        assertThat(channel.getSendTimeout()).isEqualTo(ChannelOptions.DEFAULT_SEND_TIMEOUT);
        assertThat(channel.getBackpressure().name()).isEqualTo(ChannelOptions.defaults().backpressure().name());
        assertThat(channel.getWait().name()).isEqualTo(ChannelOptions.defaults().waitStrategy().name());
        assertThat(channel.getMaxGroups()).isEqualTo(ChannelOptions.DEFAULT_MAX_GROUPS);
        assertThat(properties.getCodec().getTrustedPackages()).isEmpty();
        assertThat(properties.getShutdown().getDrainTimeout()).isEqualTo(Duration.ofSeconds(10));
    }

    private static ShmProperties withSegment(ShmProperties properties, String name, ShmProperties.Segment segment) {
        properties.getSegments().put(name, segment);
        return properties;
    }

    @Test
    void withoutConfigurationThereAreNoSegmentsButTheCodec() {
        runner.run(context -> {
            assertThat(context).hasNotFailed();
            assertThat(context).hasSingleBean(ShmProperties.class);
            assertThat(context).hasSingleBean(ShmMessageCodec.class);
            assertThat(context).hasSingleBean(PayloadConverter.class);
            assertThat(context).doesNotHaveBean(Segment.class);
        });
    }

    @Test
    void everySegmentPropertyReachesTheSegment() {
        Path directory = shm.directory("segments");
        runner.withPropertyValues("shm.directory=" + directory, "shm.segments.main.size=16MB",
                "shm.segments.main.max-peers=8", "shm.segments.main.heartbeat-interval=50ms",
                "shm.segments.main.liveness-timeout=1500ms", "shm.segments.main.permissions=rw-rw----",
                "shm.segments.main.slot-classes[0].size=1KB", "shm.segments.main.slot-classes[0].count=32",
                "shm.segments.main.slot-classes[1].size=64KB", "shm.segments.main.slot-classes[1].count=4")
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    Segment segment = context.getBean("main", Segment.class);
                    SegmentOptions options = segment.options();
                    assertThat(segment.path()).isEqualTo(directory.resolve("main.shm"));
                    assertThat(options.size()).isEqualTo(16L << 20);
                    assertThat(options.maxPeers()).isEqualTo(8);
                    assertThat(options.heartbeatInterval()).isEqualTo(Duration.ofMillis(50));
                    assertThat(options.livenessTimeout()).isEqualTo(Duration.ofMillis(1500));
                    assertThat(options.permissions()).isEqualTo(PosixFilePermissions.fromString("rw-rw----"));
                    assertThat(options.slotClasses()).containsExactly(new SlotClass(1024, 32),
                            new SlotClass(64 * 1024, 4));
                    assertThat(segment.peer(segment.peerId()).name()).isEqualTo("billing");
                });
        assertThat(directory.resolve("main.shm")).doesNotExist(); // the last one out removed it
    }

    @Test
    void everyChannelPropertyReachesTheChannel() {
        Path directory = shm.directory("channels");
        runner.withPropertyValues(small(directory, "main"))
                .withPropertyValues("shm.segments.other.size=8MB", "shm.segments.other.slot-classes[0].size=1KB",
                        "shm.segments.other.slot-classes[0].count=16",
                        "shm.channels.orders.segment=other", "shm.channels.orders.group=audit",
                        "shm.channels.orders.capacity=256", "shm.channels.orders.slot-size=1KB",
                        "shm.channels.orders.required=false", "shm.channels.orders.exclusive=true",
                        "shm.channels.orders.backpressure=drop",
                        "shm.channels.orders.send-timeout=250ms", "shm.channels.orders.wait=blocking",
                        "shm.channels.orders.max-groups=8", "shm.shutdown.drain-timeout=3s",
                        "shm.channels.invoices.segment=main")
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    SubscribableShmChannel orders = context.getBean("orders", SubscribableShmChannel.class);
                    assertThat(orders.getSegment()).isSameAs(context.getBean("other", Segment.class));
                    assertThat(orders.getGroup()).isEqualTo("audit");
                    assertThat(orders.isRequired()).isFalse();
                    assertThat(orders.isExclusive()).isTrue();
                    assertThat(orders.isBroadcast()).isTrue();
                    ChannelOptions options = orders.getRing().options();
                    assertThat(options.capacity()).isEqualTo(256);
                    assertThat(options.slotSize()).isEqualTo(1024);
                    assertThat(options.backpressure()).isEqualTo(Backpressure.DROP);
                    assertThat(options.sendTimeout()).isEqualTo(Duration.ofMillis(250));
                    assertThat(options.waitStrategy()).isEqualTo(WaitStrategy.BLOCKING);
                    assertThat(options.maxGroups()).isEqualTo(8);
                    assertThat(orders.getDrainTimeout()).isEqualTo(Duration.ofSeconds(3));
                    SubscribableShmChannel invoices = context.getBean("invoices", SubscribableShmChannel.class);
                    assertThat(invoices.getSegment()).isSameAs(context.getBean("main", Segment.class));
                    assertThat(invoices.getGroup()).isEqualTo("billing"); // spring.application.name
                    assertThat(invoices.isExclusive()).isFalse();
                    assertThat(invoices.getRing().options()).isEqualTo(ChannelOptions.defaults());
                });
    }

    @Test
    void channelsWithoutSegmentsGetTheDefaultSegment() {
        Path directory = shm.directory("default");
        runner.withPropertyValues("shm.directory=" + directory, "shm.channels.orders.type=point-to-point")
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context.getBean(ShmProperties.DEFAULT_SEGMENT, Segment.class).path())
                            .isEqualTo(directory.resolve("shm.shm"));
                    SubscribableShmChannel orders = context.getBean("orders", SubscribableShmChannel.class);
                    assertThat(orders.getGroup()).isEqualTo(ShmOptions.POINT_TO_POINT_GROUP);
                    assertThat(orders.isBroadcast()).isFalse();
                });
    }

    @Test
    void everyBufferEntryBecomesAMemfdBuffer() {
        runner.withPropertyValues("shm.buffers.frames.size=2MB").run(context -> {
            assertThat(context).hasNotFailed();
            MemfdBuffer frames = context.getBean("frames", MemfdBuffer.class);
            assertThat(frames.size()).isEqualTo(2L << 20);
            assertThat(frames.isSealed()).isTrue();
        });
    }

    @Test
    void trustedPackagesExtendTheDefaultsAndTheApplicationsPackages() {
        runner.withPropertyValues("shm.codec.trusted-packages=com.example.orders").run(context -> {
            PayloadConverter converter = context.getBean(PayloadConverter.class);
            byte[] json = "{\"id\":\"o-1\"}".getBytes(java.nio.charset.StandardCharsets.UTF_8);
            assertThatThrownBy(() -> converter.fromBytes("com.example.orders.Missing", json, 0, json.length))
                    .hasMessageContaining("not on this application's class path"); // trusted: the class is looked up
            assertThatThrownBy(() -> converter.fromBytes("com.example.other.Order", json, 0, json.length))
                    .hasMessageContaining("not in the trusted packages");
            assertThat(converter.fromBytes("java.util.LinkedHashMap", json, 0, json.length))
                    .isEqualTo(java.util.Map.of("id", "o-1"));
        });
    }

    @Test
    void backsOffWhenDisabled() {
        runner.withPropertyValues("shm.enabled=false", "shm.channels.orders.capacity=1000",
                "shm.buffers.frames.size=1MB").run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context).doesNotHaveBean(ShmProperties.class);
                    assertThat(context).doesNotHaveBean(ShmMessageCodec.class);
                    assertThat(context).doesNotHaveBean("orders");
                    assertThat(context).doesNotHaveBean("frames");
                });
    }

    @Test
    void withoutSpringIntegrationOnlySegmentsAndBuffers() {
        Path directory = shm.directory("plain");
        runner.withClassLoader(new FilteredClassLoader("org.springframework.integration."))
                .withConfiguration(AutoConfigurations.of(ShmAutoConfiguration.class))
                .withPropertyValues(small(directory, "main"))
                .withPropertyValues("shm.channels.orders.capacity=64", "shm.buffers.frames.size=1MB")
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context).hasBean("main");
                    assertThat(context).hasBean("frames");
                    assertThat(context).doesNotHaveBean("orders");
                    assertThat(context).doesNotHaveBean(ShmMessageCodec.class);
                });
    }

    @Test
    void withoutJacksonTheCodecHasNoConverter() {
        runner.withClassLoader(new FilteredClassLoader(JsonMapper.class)).run(context -> {
            assertThat(context).hasNotFailed();
            assertThat(context).hasSingleBean(ShmMessageCodec.class);
            assertThat(context).doesNotHaveBean(PayloadConverter.class);
        });
    }

    @Test
    void anApplicationBeanOfTheSameNameWins() {
        Path directory = shm.directory("override");
        runner.withUserConfiguration(OwnOrders.class)
                .withPropertyValues(small(directory, "main"))
                .withPropertyValues("shm.channels.orders.capacity=64")
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context.getBean("orders", MessageChannel.class)).isInstanceOf(DirectChannel.class);
                });
    }

    @Configuration(proxyBeanMethods = false)
    static class OwnOrders {
        @Bean
        DirectChannel orders() {
            return new DirectChannel();
        }
    }

    // ------------------------------------------------------------------ failure analysis

    private static FailureAnalysis analyze(AssertableApplicationContext context, FailureAnalyzer analyzer) {
        assertThat(context).hasFailed();
        FailureAnalysis analysis = analyzer.analyze(context.getStartupFailure());
        assertThat(analysis).as("analysis of %s", context.getStartupFailure()).isNotNull();
        return analysis;
    }

    @Test
    void capacityNotAPowerOfTwoNamesThePropertyAndTheFix() {
        runner.withPropertyValues("shm.channels.orders.capacity=1000").run(context -> {
            FailureAnalysis analysis = analyze(context, new InvalidShmPropertyFailureAnalyzer());
            assertThat(analysis.getDescription()).contains("'shm.channels.orders.capacity'", "'1000'",
                    "power of two");
            assertThat(analysis.getAction()).contains("shm.channels.orders.capacity", "512 or 1024");
        });
    }

    @Test
    void slotSizeTooSmallNamesThePropertyAndTheFix() {
        runner.withPropertyValues("shm.channels.orders.slot-size=16B").run(context -> {
            FailureAnalysis analysis = analyze(context, new InvalidShmPropertyFailureAnalyzer());
            assertThat(analysis.getDescription()).contains("'shm.channels.orders.slot-size'", "'16B'");
            assertThat(analysis.getAction()).contains("use at least 32B");
        });
    }

    @Test
    void aConcurrencyBelowOneOrBesideAnExclusiveMemberNamesThePropertiesAndTheFix() {
        runner.withPropertyValues("shm.channels.orders.concurrency=0").run(context -> {
            FailureAnalysis analysis = analyze(context, new InvalidShmPropertyFailureAnalyzer());
            assertThat(analysis.getDescription()).contains("'shm.channels.orders.concurrency'", "'0'", "at least one");
        });
        runner.withPropertyValues("shm.channels.orders.concurrency=3", "shm.channels.orders.exclusive=true")
                .run(context -> {
                    FailureAnalysis analysis = analyze(context, new InvalidShmPropertyFailureAnalyzer());
                    assertThat(analysis.getDescription()).contains("'shm.channels.orders.concurrency'", "'3'",
                            "shm.channels.orders.exclusive=true");
                    assertThat(analysis.getAction()).contains("shm.channels.orders.concurrency=1",
                            "shm.channels.orders.exclusive=false");
                });
    }

    @Test
    void unknownSegmentNamesThePropertyAndTheSegments() {
        runner.withPropertyValues("shm.segments.main.size=64MB", "shm.channels.orders.segment=mian").run(context -> {
            FailureAnalysis analysis = analyze(context, new InvalidShmPropertyFailureAnalyzer());
            assertThat(analysis.getDescription()).contains("'shm.channels.orders.segment'", "'mian'",
                    "no segment of that name");
            assertThat(analysis.getAction()).contains("[main]");
        });
    }

    @Test
    void otherInvalidValuesNameTheirProperty() {
        runner.withPropertyValues("shm.segments.main.liveness-timeout=50ms").run(context -> assertThat(
                analyze(context, new InvalidShmPropertyFailureAnalyzer()).getDescription())
                .contains("'shm.segments.main.liveness-timeout'"));
        runner.withPropertyValues("shm.segments.main.slot-classes[0].size=100B",
                "shm.segments.main.slot-classes[0].count=4").run(context -> assertThat(
                analyze(context, new InvalidShmPropertyFailureAnalyzer()).getDescription())
                .contains("'shm.segments.main.slot-classes[0].size'", "multiple of 64"));
        runner.withPropertyValues("shm.segments.orders.size=64MB", "shm.channels.orders.capacity=64").run(context ->
                assertThat(analyze(context, new InvalidShmPropertyFailureAnalyzer()).getDescription())
                        .contains("'shm.channels.orders'", "taken by 'shm.segments.orders'"));
    }

    @Test
    void aSegmentTooSmallForItsSlotClassesOrChannelsNamesTheSizeAndWhatItNeeds() {
        // The default slot classes take 20 MB (1,024 x 4 KB and 64 x 256 KB): 16 MB cannot hold them.
        runner.withPropertyValues("shm.segments.main.size=16MB").run(context -> {
            FailureAnalysis analysis = analyze(context, new InvalidShmPropertyFailureAnalyzer());
            assertThat(analysis.getDescription()).contains("'shm.segments.main.size'", "'16777216B'",
                    "first extent of each slot class need");
            assertThat(analysis.getAction()).contains("raise it to at least 21MB", "shm.segments.main.slot-classes");
        });
        // Slot classes that fit, and a ring of 65,536 slots of 1 KB (64 MB, with its claim words and release entries) that does not.
        runner.withPropertyValues(small(shm.directory("rings"), "main"))
                .withPropertyValues("shm.channels.orders.capacity=65536", "shm.channels.orders.slot-size=1KB")
                .run(context -> {
                    FailureAnalysis analysis = analyze(context, new InvalidShmPropertyFailureAnalyzer());
                    assertThat(analysis.getDescription()).contains("'shm.segments.main.size'", "'8388608B'",
                            "rings of its channels [orders]");
                    assertThat(analysis.getAction()).contains("raise it to at least 68MB",
                            "lower the capacity or slot-size");
                });
    }

    @Test
    void aRingThatFindsNoRoomLeftInItsSegmentNamesTheSizeAndTheChannel() {
        // Each application's channels fit; together, in one segment, they do not.
        Path directory = shm.directory("full");
        runner.withPropertyValues(small(directory, "main")).withPropertyValues("shm.channels.orders.capacity=4096",
                "shm.channels.orders.slot-size=1KB").run(first -> {
                    assertThat(first).hasNotFailed();
                    runner.withPropertyValues(small(directory, "main")).withPropertyValues(
                            "shm.channels.invoices.capacity=4096", "shm.channels.invoices.slot-size=1KB")
                            .run(second -> {
                                FailureAnalysis analysis = analyze(second, new ShmRingSpaceFailureAnalyzer());
                                assertThat(analysis.getDescription()).contains("shm channel 'invoices'",
                                        "segment 'main'", "no room");
                                assertThat(analysis.getAction()).contains("'shm.segments.main.size'",
                                        "'shm.channels.invoices.capacity'", "'shm.channels.invoices.slot-size'");
                            });
                });
    }

    @Test
    void aGroupThatExistsWithTheOtherRequiredNamesTheProperty() {
        Path directory = shm.directory("required");
        runner.withPropertyValues(small(directory, "main")).withPropertyValues("shm.channels.orders.required=true")
                .run(first -> {
                    assertThat(first).hasNotFailed();
                    first.getBean("orders", SubscribableShmChannel.class).subscribe(m -> { });
                    runner.withPropertyValues(small(directory, "main"))
                            .withPropertyValues("shm.channels.orders.required=false").run(second -> {
                                SubscribableShmChannel orders = second.getBean("orders", SubscribableShmChannel.class);
                                Throwable mismatch = catchThrowable(() -> orders.subscribe(m -> { }));
                                assertThat(mismatch).isInstanceOf(ShmDeclarationMismatchException.class);
                                FailureAnalysis analysis = new ShmDeclarationMismatchFailureAnalyzer().analyze(mismatch);
                                assertThat(analysis.getDescription()).contains("'shm.channels.orders.required'",
                                        "required=true", "required=false");
                                assertThat(analysis.getAction()).contains("for a consumer group: required");
                            });
                });
    }

    @Test
    void fileSystemSmallerThanTheSegmentNamesTheSizeAndDockersShmSize() {
        Path directory = shm.directory("small");
        runner.withPropertyValues("shm.directory=" + directory, "shm.segments.main.size=100000TB").run(context -> {
            FailureAnalysis analysis = analyze(context, new ShmSpaceFailureAnalyzer());
            assertThat(analysis.getDescription()).contains("'shm.segments.main.size'", "SIGBUS");
            assertThat(analysis.getAction()).contains("Lower 'shm.segments.main.size'", "--shm-size");
        });
    }

    @Test
    void directoryThatIsNotWritableOrMissingNamesTheProperty() {
        runner.withPropertyValues("shm.directory=/proc/1", "shm.segments.main.size=64MB").run(context -> {
            FailureAnalysis analysis = analyze(context, new ShmDirectoryFailureAnalyzer());
            assertThat(analysis.getDescription()).contains("'shm.directory'", "/proc/1", "not writable");
            assertThat(analysis.getAction()).contains("Set 'shm.directory'");
        });
        Path missing = shm.path("missing");
        runner.withPropertyValues("shm.directory=" + missing, "shm.segments.main.size=64MB").run(context ->
                assertThat(analyze(context, new ShmDirectoryFailureAnalyzer()).getDescription())
                        .contains("does not exist"));
    }

    @Test
    void channelDeclaredElsewhereWithOtherParametersNamesBothValues() {
        Path directory = shm.directory("mismatch");
        runner.withPropertyValues(small(directory, "main")).withPropertyValues("shm.channels.orders.capacity=1024")
                .run(first -> {
                    assertThat(first).hasNotFailed();
                    runner.withPropertyValues(small(directory, "main"))
                            .withPropertyValues("shm.channels.orders.capacity=2048").run(second -> {
                                FailureAnalysis analysis = analyze(second,
                                        new ShmDeclarationMismatchFailureAnalyzer());
                                assertThat(analysis.getDescription()).contains("'shm.channels.orders'",
                                        "capacity=1024", "capacity=2048");
                                assertThat(analysis.getAction()).contains("Declare it alike in every process");
                            });
                });
    }

    @Test
    void anExclusiveMemberHoldsItsGroupAndAnotherMemberFailsNamingTheProperty() {
        Path directory = shm.directory("exclusive");
        String[] segment = {"shm.segments.main.liveness-timeout=300ms"};
        runner.withPropertyValues(small(directory, "main")).withPropertyValues(segment)
                .withPropertyValues("shm.channels.orders.exclusive=true").run(first -> {
                    assertThat(first).hasNotFailed();
                    SubscribableShmChannel held = first.getBean("orders", SubscribableShmChannel.class);
                    BlockingQueue<Object> got = new LinkedBlockingQueue<>();
                    held.subscribe(m -> got.add(m.getPayload()));
                    assertThat(held.getRing().stats().groups()).singleElement().satisfies(g -> {
                        assertThat(g.name()).isEqualTo("billing");
                        assertThat(g.exclusive()).isTrue();
                    });
                    runner.withPropertyValues(small(directory, "main")).withPropertyValues(segment)
                            .withPropertyValues("shm.channels.orders.exclusive=false").run(second -> {
                            SubscribableShmChannel orders = second.getBean("orders", SubscribableShmChannel.class);
                            assertThat(orders.send(new GenericMessage<>("to the holder"))).isTrue();
                            assertThat(got.poll(10, TimeUnit.SECONDS)).isEqualTo("to the holder");
                            Throwable busy = catchThrowable(() -> orders.subscribe(m -> { }));
                            assertThat(busy).isInstanceOf(ShmGroupBusyException.class)
                                    .hasMessageContaining("group 'billing' of channel 'orders'");
                            FailureAnalysis analysis = new ShmGroupBusyFailureAnalyzer().analyze(busy);
                            assertThat(analysis.getDescription()).contains("'billing'", "held by the exclusive member");
                            assertThat(analysis.getAction()).contains("shm.channels.orders.exclusive=false",
                                    "shm.channels.orders.group");
                        });
                });
    }

    @Test
    void segmentDeclaredElsewhereWithOtherParametersNamesTheSegment() {
        Path directory = shm.directory("segment-mismatch");
        runner.withPropertyValues(small(directory, "main")).run(first -> {
            assertThat(first).hasNotFailed();
            runner.withPropertyValues(small(directory, "main")).withPropertyValues("shm.segments.main.max-peers=4")
                    .run(second -> assertThat(analyze(second, new ShmDeclarationMismatchFailureAnalyzer())
                            .getDescription()).contains("'shm.segments.main'", "maxPeers"));
        });
    }

    @Test
    void aRingThatDisagreesWithItsDeclarationIsAnalyzedLikeAMismatch() {
        FailureAnalysis analysis = new ShmDeclarationMismatchFailureAnalyzer().analyze(new IllegalStateException(
                dev.shm.spring.support.ShmRings.class.getSimpleName(),
                new dev.shm.spring.support.ShmDeclarationMismatchException("shm.channels.orders",
                        new dev.shm.core.ring.ChannelException(
                                dev.shm.core.ring.ChannelException.Reason.ELEMENT_SIZE_MISMATCH,
                                "ring 'orders' has slotSize=256; declared slotSize=512"))));
        assertThat(analysis.getDescription()).contains("'shm.channels.orders'", "slotSize=256", "slotSize=512");
        assertThat(analysis.getAction()).contains("capacity, slot-size and max-groups");
    }

    @Test
    void nativeAccessMissingNamesTheFlag() {
        FailureAnalysis analysis = new NativeAccessFailureAnalyzer()
                .analyze(new IllegalStateException(new NativeAccessException("the unnamed module (the class path)")));
        assertThat(analysis.getDescription()).contains("native access", "shm.enabled");
        assertThat(analysis.getAction()).contains("--enable-native-access=ALL-UNNAMED", "Enable-Native-Access");
    }

    @Test
    void failureAnalyzersAreRegistered() {
        List<String> names = org.springframework.core.io.support.SpringFactoriesLoader.forDefaultResourceLocation()
                .load(FailureAnalyzer.class, org.springframework.core.io.support.SpringFactoriesLoader.FailureHandler
                        .handleMessage((message, failure) -> { })).stream().map(a -> a.getClass().getName()).toList();
        assertThat(names).contains(InvalidShmPropertyFailureAnalyzer.class.getName(),
                ShmSpaceFailureAnalyzer.class.getName(), ShmDirectoryFailureAnalyzer.class.getName(),
                ShmDeclarationMismatchFailureAnalyzer.class.getName(), NativeAccessFailureAnalyzer.class.getName(),
                ShmGroupBusyFailureAnalyzer.class.getName(), ShmRingSpaceFailureAnalyzer.class.getName());
    }

    @Test
    void dataSizesBindWithUnits() {
        ShmProperties.Channel channel = new ShmProperties.Channel();
        channel.setSlotSize(DataSize.parse("1KB"));
        assertThat(ShmOptions.channelOptions("x", channel).slotSize()).isEqualTo(1024);
    }
}
