package dev.shm.spring.support;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.pool.SlotPool;
import dev.shm.core.ring.Backpressure;
import dev.shm.core.ring.Channel;
import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.ring.SendOutcome;
import dev.shm.core.ring.Subscription;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentOptions;
import dev.shm.core.segment.SlotClass;
import dev.shm.core.testing.ShmDirectory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.springframework.messaging.Message;
import org.springframework.messaging.MessageDeliveryException;
import org.springframework.messaging.support.GenericMessage;

/** The sender over a real segment: what a {@code block} channel does when the slot pool has no slot. */
class ShmSenderTests {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private static final Message<byte[]> LARGE = new GenericMessage<>(new byte[1000]); // above the 256-byte slots

    @Test
    void aBlockChannelWaitsForAPoolSlotUpToItsSendTimeout() throws Exception {
        try (Segment segment = Segment.open(SegmentOptions.named("s").withDirectory(shm.directory("sender"))
                .withSize(4L << 20).withSlotClasses(List.of(new SlotClass(4096, 4))), "test")) {
            Channel channel = Channel.declare(segment, "c", ChannelOptions.defaults().withCapacity(16).withSlotSize(256)
                    .withSendTimeout(Duration.ofSeconds(20)));
            Subscription subscription = channel.subscribe("g", true);
            ShmSender sender = new ShmSender(channel, new ShmMessageCodec(null));
            List<Long> held = exhaust(segment.slotPool());

            CompletableFuture<SendOutcome> waiting = CompletableFuture.supplyAsync(() -> sender.send(LARGE));
            assertThatThrownBy(() -> waiting.get(300, TimeUnit.MILLISECONDS)).as("no slot: the send waits")
                    .isInstanceOf(TimeoutException.class);
            segment.slotPool().free(held.removeLast()); // a consumer freed one
            assertThat(waiting.get(20, TimeUnit.SECONDS)).isEqualTo(SendOutcome.SENT);
            assertThat(subscription.poll(message -> assertThat(message.length()).isGreaterThan(1000), 10)).isOne();

            held.addAll(exhaust(segment.slotPool()));
            assertThatThrownBy(() -> sender.send(LARGE, 200)).isInstanceOf(MessageDeliveryException.class)
                    .hasMessageContaining("slot pool is exhausted").hasMessageContaining("send timeout (200 ms)");
            held.forEach(segment.slotPool()::free);
            subscription.close();
            channel.close();
        }
    }

    @Test
    void aFailChannelDoesNotWaitForAPoolSlot() {
        try (Segment segment = Segment.open(SegmentOptions.named("s").withDirectory(shm.directory("fail"))
                .withSize(4L << 20).withSlotClasses(List.of(new SlotClass(4096, 4))), "test")) {
            Channel channel = Channel.declare(segment, "c", ChannelOptions.defaults().withCapacity(16).withSlotSize(256)
                    .withBackpressure(Backpressure.FAIL).withSendTimeout(Duration.ofSeconds(20)));
            channel.subscribe("g", true).close();
            ShmSender sender = new ShmSender(channel, new ShmMessageCodec(null));
            List<Long> held = exhaust(segment.slotPool());
            long start = System.nanoTime();
            assertThatThrownBy(() -> sender.send(LARGE)).isInstanceOf(MessageDeliveryException.class)
                    .hasMessageContaining("slot pool is exhausted").hasMessageNotContaining("send timeout");
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
            held.forEach(segment.slotPool()::free);
            channel.close();
        }
    }

    /** Takes every slot that fits a 1,000-byte record, growing the pool until the segment is full. */
    private static List<Long> exhaust(SlotPool pool) {
        List<Long> held = new ArrayList<>();
        for (int i = 0; i < 100_000; i++) {
            long ref = pool.allocate(1100);
            if (ref < 0) {
                return held;
            }
            held.add(ref);
        }
        throw new AssertionError("the pool did not run out in 100,000 slots");
    }
}
