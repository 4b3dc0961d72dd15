package dev.shm.bench.jmh;

import dev.shm.core.ring.Backpressure;
import dev.shm.core.ring.Channel;
import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.ring.Message;
import dev.shm.core.ring.MessageHandler;
import dev.shm.core.ring.Subscription;
import dev.shm.core.ring.SubscriptionMode;
import dev.shm.core.ring.WaitStrategy;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentOptions;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The channel's hot path in one thread of one process: send one message (claim, copy, publish) and
 * poll it (claim for the group, hand to the handler, mark done, move the group's done sequence),
 * for a single-producer and a multi-producer channel. No other thread touches the ring, so this is
 * the cost of the instructions and atomics themselves, without cache-line transfers.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class ChannelBenchmark {

    /** Whether the channel is declared single-producer. */
    @Param({"true", "false"})
    public boolean singleProducer;

    /** How the one member subscribes: {@code EXCLUSIVE} or {@code SHARED}. */
    @Param({"EXCLUSIVE", "SHARED"})
    public String mode;

    /** Payload bytes. */
    @Param({"32", "1024"})
    public int payload;

    private Path dir;
    private Segment segment;
    private Channel channel;
    private Subscription subscription;
    private MemorySegment source;
    private long sum;
    private final MessageHandler handler = this::onMessage;

    /**
     * Opens a segment in a fresh directory, a channel and one required group.
     *
     * @throws IOException when the directory cannot be made
     */
    @Setup(Level.Trial)
    public void setUp() throws IOException {
        dir = Files.createTempDirectory(Path.of("/dev/shm"), "shm-jmh-");
        segment = Segment.open(SegmentOptions.named("jmh").withDirectory(dir), "jmh");
        channel = Channel.declare(segment, "bench", ChannelOptions.defaults()
                .withMaxGroups(1)
                .withSlotSize(((24 + payload) + 63) / 64 * 64)
                .withSingleProducer(singleProducer)
                .withBackpressure(Backpressure.FAIL)
                .withWaitStrategy(WaitStrategy.BUSY_SPIN));
        subscription = channel.subscribe("bench", true, SubscriptionMode.valueOf(mode));
        source = Arena.ofAuto().allocate(payload, 64);
    }

    /**
     * Sends one message and polls it back.
     *
     * @return what the handler saw, for the blackhole
     */
    @Benchmark
    public long sendAndPoll() {
        source.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, sum);
        channel.send(source, 0, payload);
        subscription.poll(handler, 1);
        return sum;
    }

    private void onMessage(Message message) {
        sum += message.buffer().get(ValueLayout.JAVA_LONG_UNALIGNED, message.offset()) + 1;
    }

    /**
     * Closes everything and removes the directory.
     *
     * @throws IOException when a file cannot be removed
     */
    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        subscription.close();
        channel.close();
        segment.close();
        try (var files = Files.list(dir)) {
            for (Path file : files.toList()) {
                Files.deleteIfExists(file);
            }
        }
        Files.deleteIfExists(dir);
    }
}
