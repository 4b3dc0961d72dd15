package dev.shm.core.ring;

import static dev.shm.core.testing.ChildSupport.await;
import static dev.shm.core.testing.ChildSupport.say;

import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentOptions;
import dev.shm.core.testing.ChildSupport;
import java.io.BufferedOutputStream;
import java.io.DataOutputStream;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/** The producer and consumer processes of the channel's cross-process tests. */
public final class ChannelChild {

    static final String CHANNEL = "orders";

    private ChannelChild() {
    }

    public static void main(String[] args) throws Exception {
        ChildSupport.begin(Duration.ofSeconds(300));
        SegmentOptions options = ChannelProcessesTest.segmentOptions(Path.of(args[1]));
        try {
            switch (args[0]) {
                case "produce" -> produce(options, Integer.parseInt(args[2]), Integer.parseInt(args[3]));
                case "consume" -> consume(options, args[2], Path.of(args[3]));
                case "hold" -> hold(options, args[2]);
                default -> throw new IllegalArgumentException("unknown role " + args[0]);
            }
        } catch (Throwable t) {
            say("FAILED " + t);
            t.printStackTrace(System.out);
            System.exit(1);
        }
        System.exit(0);
    }

    /** The length of message {@code index}: mostly inline, some in pool slots, a few through a memfd. */
    static int lengthOf(int index) {
        if (index % 5000 == 4999) {
            return 10_000;
        }
        int kind = index % 10;
        return kind < 7 ? 16 + (index * 7) % 64 : 100 + (index * 131) % 3900;
    }

    /** Fills a message: producer, index, checksum, then bytes derived from both. */
    static void fill(MemorySegment buffer, int producer, int index, int length) {
        buffer.set(ValueLayout.JAVA_INT_UNALIGNED, 0, producer);
        buffer.set(ValueLayout.JAVA_INT_UNALIGNED, 4, index);
        for (int i = 16; i < length; i++) {
            buffer.set(ValueLayout.JAVA_BYTE, i, (byte) (producer * 31 + index * 17 + i));
        }
        buffer.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, checksum(buffer, 0, length));
    }

    /** A checksum of everything but the checksum field itself. */
    static long checksum(MemorySegment buffer, long offset, long length) {
        long h = 1125899906842597L + length;
        for (long i = 0; i < length; i++) {
            if (i >= 8 && i < 16) {
                continue;
            }
            h = 31 * h + buffer.get(ValueLayout.JAVA_BYTE, offset + i);
        }
        return h;
    }

    private static void produce(SegmentOptions options, int producer, int count) {
        try (Segment segment = Segment.open(options, "producer-" + producer);
             Channel channel = Channel.declare(segment, CHANNEL, ChannelProcessesTest.CHANNEL_OPTIONS)) {
            MemorySegment buffer = MemorySegment.ofArray(new long[10_000 / 8 + 8]);
            say("READY");
            await("GO");
            for (int index = 0; index < count; index++) {
                int length = lengthOf(index);
                fill(buffer, producer, index, length);
                SendOutcome outcome;
                while ((outcome = channel.send(buffer, 0, length)) != SendOutcome.SENT) {
                    if (outcome != SendOutcome.NO_BUFFER && outcome != SendOutcome.TIMEOUT) {
                        throw new IllegalStateException("send " + index + ": " + outcome);
                    }
                    Thread.onSpinWait(); // pool slots come back as the consumers catch up
                }
                if (index % 1000 == 0) {
                    say("SENT " + index);
                }
            }
            say("SENT " + count);
        }
        say("DONE");
    }

    /** Claims one message of the group and never finishes it: the parent kills this process mid-message. */
    private static void hold(SegmentOptions options, String group) throws Exception {
        Segment segment = Segment.open(options, "holder");
        Channel channel = Channel.declare(segment, CHANNEL, ChannelProcessesTest.CHANNEL_OPTIONS);
        Subscription subscription = channel.subscribe(group, true);
        say("READY");
        subscription.take(m -> {
            say("HOLDING " + m.buffer().get(ValueLayout.JAVA_INT_UNALIGNED, m.offset() + 4));
            try {
                Thread.sleep(Duration.ofMinutes(5));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, 1, Duration.ofSeconds(60));
    }

    private static void consume(SegmentOptions options, String group, Path out) throws Exception {
        try (Segment segment = Segment.open(options, "consumer-" + group);
             Channel channel = Channel.declare(segment, CHANNEL, ChannelProcessesTest.CHANNEL_OPTIONS);
             Subscription subscription = channel.subscribe(group, true);
             OutputStream file = Files.newOutputStream(out);
             DataOutputStream records = new DataOutputStream(new BufferedOutputStream(file, 1 << 16))) {
            long[] counts = new long[2];
            MessageHandler handler = m -> {
                MemorySegment b = m.buffer();
                long o = m.offset();
                int producer = b.get(ValueLayout.JAVA_INT_UNALIGNED, o);
                int index = b.get(ValueLayout.JAVA_INT_UNALIGNED, o + 4);
                boolean ok = m.length() == lengthOf(index)
                        && b.get(ValueLayout.JAVA_LONG_UNALIGNED, o + 8) == checksum(b, o, m.length());
                try {
                    records.writeInt(producer);
                    records.writeInt(index);
                    records.writeInt((ok ? 0 : 1) | (m.isRedelivered() ? 2 : 0));
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
                counts[0]++;
                if (!ok) {
                    counts[1]++;
                }
            };
            Thread stopper = Thread.ofPlatform().daemon().start(() -> await("STOP"));
            say("READY");
            while (stopper.isAlive()) {
                subscription.take(handler, 256, Duration.ofMillis(20));
            }
            while (subscription.poll(handler, 256) > 0) {
                // drain what is left
            }
            records.flush();
            say("DONE " + counts[0] + " " + counts[1]);
        }
    }
}
