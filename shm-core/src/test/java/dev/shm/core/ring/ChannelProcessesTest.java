package dev.shm.core.ring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.internal.Processes;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentOptions;
import dev.shm.core.segment.SlotClass;
import dev.shm.core.testing.ChildJvm;
import dev.shm.core.testing.ShmDirectory;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Channels across real processes: producers and consumers are child JVMs. */
class ChannelProcessesTest {

    static final ChannelOptions CHANNEL_OPTIONS = ChannelOptions.defaults().withCapacity(1024).withSlotSize(128)
            .withSendTimeout(Duration.ofMillis(200));
    private static final Duration LINE = Duration.ofSeconds(60);

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    static SegmentOptions segmentOptions(Path directory) {
        return SegmentOptions.named("bus")
                .withDirectory(directory)
                .withSize(32L << 20)
                .withMaxPeers(16)
                .withLiveness(Duration.ofMillis(50), Duration.ofSeconds(1))
                .withSlotClasses(List.of(new SlotClass(512, 512), new SlotClass(4096, 128)))
                .withLanes(4, 4096);
    }

    /**
     * The sleeper test's segment: a long liveness timeout, so that a sleeping subscriber's safety
     * wake-up (half of it) is far above the wake-up the test expects from each send.
     */
    static SegmentOptions sleeperSegmentOptions(Path directory) {
        return segmentOptions(directory).withLiveness(Duration.ofMillis(100), Duration.ofSeconds(20));
    }

    /** The sleeper test's channels: {@code sp} is declared single-producer, {@code mp} not. */
    static ChannelOptions sleeperChannelOptions(String name) {
        return CHANNEL_OPTIONS.withSingleProducer(name.equals("sp")).withWaitStrategy(WaitStrategy.BUSY_SPIN);
    }

    /** A single-producer channel with a small ring, so that every producer laps it many times. */
    static final ChannelOptions SINGLE_PRODUCER_OPTIONS = CHANNEL_OPTIONS.withCapacity(64).withSingleProducer(true)
            .withSendTimeout(Duration.ofSeconds(5));

    /**
     * The lapped channel: a single producer, 16 slots of 4 KiB (4,080 bytes of payload inline), which
     * an optional group that reads as slowly as a second process does is lapped on all the time.
     */
    static final ChannelOptions LAPPED_OPTIONS = CHANNEL_OPTIONS.withCapacity(16).withSlotSize(4096)
            .withSingleProducer(true).withSendTimeout(Duration.ofSeconds(5));
    /** A lapped channel's payload that goes in a pool slot (of the 4 KiB class): above the inline 4,080 bytes. */
    static final int LAPPED_POOLED_LENGTH = 4096;

    private record Received(int producer, int index, int flags) {
    }

    private static List<Received> read(Path file) throws Exception {
        List<Received> records = new ArrayList<>();
        try (InputStream in = Files.newInputStream(file);
             DataInputStream data = new DataInputStream(new java.io.BufferedInputStream(in))) {
            while (true) {
                try {
                    records.add(new Received(data.readInt(), data.readInt(), data.readInt()));
                } catch (EOFException end) {
                    return records;
                }
            }
        }
    }

    @Test
    void threeProducersTwoGroupsAndCompetingConsumersLoseNothingAndDuplicateNothing() throws Exception {
        Path directory = shm.directory("bus");
        int producers = 3;
        int each = 70_000;
        SegmentOptions options = segmentOptions(directory);
        List<ChildJvm> children = new ArrayList<>();
        try (Segment parent = Segment.open(options, "test");
             Channel channel = Channel.declare(parent, ChannelChild.CHANNEL, CHANNEL_OPTIONS)) {
            channel.subscribe("billing", true).close(); // both groups exist before the first message
            channel.subscribe("audit", true).close();
            Path billing1 = directory.resolve("billing-1.bin");
            Path billing2 = directory.resolve("billing-2.bin");
            Path audit = directory.resolve("audit.bin");
            List<ChildJvm> consumers = List.of(
                    ChildJvm.start(ChannelChild.class, "consume", directory.toString(), "billing", billing1.toString()),
                    ChildJvm.start(ChannelChild.class, "consume", directory.toString(), "billing", billing2.toString()),
                    ChildJvm.start(ChannelChild.class, "consume", directory.toString(), "audit", audit.toString()));
            children.addAll(consumers);
            List<ChildJvm> senders = new ArrayList<>();
            for (int p = 0; p < producers; p++) {
                senders.add(ChildJvm.start(ChannelChild.class, "produce", directory.toString(), Integer.toString(p),
                        Integer.toString(each)));
            }
            children.addAll(senders);
            children.forEach(c -> c.awaitLine("READY", LINE));
            senders.forEach(c -> c.send("GO"));
            for (ChildJvm sender : senders) {
                sender.awaitLine("DONE", Duration.ofSeconds(240));
            }
            long deadline = System.nanoTime() + LINE.toNanos();
            while (channel.stats().occupancy() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(10); // a bounded poll of the consumers' progress
            }
            consumers.forEach(c -> c.send("STOP"));
            long[] delivered = new long[3];
            for (int i = 0; i < 3; i++) {
                String[] done = consumers.get(i).awaitLine("DONE", LINE).trim().split(" ");
                delivered[i] = Long.parseLong(done[0]);
                assertThat(Long.parseLong(done[1])).as("messages with a bad checksum or length").isZero();
            }

            Channel.Stats stats = channel.stats();
            assertThat(stats.published()).isEqualTo((long) producers * each);
            assertThat(stats.groups()).allSatisfy(g -> {
                assertThat(g.lag()).isZero();
                assertThat(g.lost()).isZero();
                assertThat(g.redeliveries()).isZero();
            });
            assertThat(stats.skips()).isZero();
            assertThat(stats.corrupt()).isZero();

            checkExactlyOnce(List.of(read(billing1), read(billing2)), producers, each);
            checkExactlyOnce(List.of(read(audit)), producers, each);
            assertThat(delivered[0]).as("both billing members got work").isPositive();
            assertThat(delivered[1]).isPositive();
            assertThat(delivered[0] + delivered[1]).isEqualTo((long) producers * each);
            assertThat(parent.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
            assertThat(parent.leases().leases()).isEmpty();
        } finally {
            children.forEach(ChildJvm::close);
        }
    }

    /**
     * A group declared without a member keeps what a producer of another process sends, after that
     * producer left, for the member of a third process that joins later: every message, once, in
     * order, pool slots included; what was sent before the declaration is not the group's.
     */
    @Test
    void aGroupDeclaredWithoutAMemberKeepsWhatIsSentForAMemberThatJoinsLater() throws Exception {
        Path directory = shm.directory("declared");
        int each = 300; // less than the ring's 1,024 slots, and pool payloads within the pool's 4 KiB slots
        SegmentOptions options = segmentOptions(directory);
        List<ChildJvm> children = new ArrayList<>();
        try (Segment parent = Segment.open(options, "test");
             Channel channel = Channel.declare(parent, ChannelChild.CHANNEL, CHANNEL_OPTIONS)) {
            MemorySegment early = MemorySegment.ofArray(new byte[16]);
            assertThat(channel.send(early, 0, 16)).isEqualTo(SendOutcome.SENT); // before any group: nobody's
            channel.declareGroup("late", true);
            channel.declareGroup("late", true); // declared again: the same group
            assertThatThrownBy(() -> channel.declareGroup("late", false))
                    .isInstanceOfSatisfying(ChannelException.class,
                            e -> assertThat(e.reason()).isEqualTo(ChannelException.Reason.LAYOUT_MISMATCH))
                    .hasMessageContaining("exists with required=true");

            ChildJvm sender = ChildJvm.start(ChannelChild.class, "produce", directory.toString(), "0",
                    Integer.toString(each));
            children.add(sender);
            sender.awaitLine("READY", LINE);
            sender.send("GO");
            sender.awaitLine("DONE", LINE);
            assertThat(sender.awaitExit(LINE)).isZero();
            Channel.GroupStats waiting = group(channel, "late");
            assertThat(waiting.members()).isZero();
            assertThat(waiting.lag()).as("kept for the group, which has no member yet").isEqualTo(each);

            Path out = directory.resolve("late.bin");
            ChildJvm consumer = ChildJvm.start(ChannelChild.class, "consume", directory.toString(), "late",
                    out.toString());
            children.add(consumer);
            consumer.awaitLine("READY", LINE);
            long deadline = System.nanoTime() + LINE.toNanos();
            while (group(channel, "late").lag() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(10); // a bounded poll of the member's progress
            }
            consumer.send("STOP");
            String[] done = consumer.awaitLine("DONE", LINE).trim().split(" ");
            assertThat(Long.parseLong(done[0])).isEqualTo(each);
            assertThat(Long.parseLong(done[1])).as("messages with a bad checksum or length").isZero();
            checkExactlyOnce(List.of(read(out)), 1, each);
            Channel.GroupStats late = group(channel, "late");
            assertThat(late.lost()).isZero();
            assertThat(late.redeliveries()).isZero();
            assertThat(parent.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
        } finally {
            children.forEach(ChildJvm::close);
        }
    }

    private static Channel.GroupStats group(Channel channel, String name) {
        return channel.stats().groups().stream().filter(g -> g.name().equals(name)).findFirst().orElseThrow();
    }

    @Test
    void aMessageWhoseConsumerIsKilledMidMessageIsRedeliveredToAnotherMemberFlagged() throws Exception {
        Path directory = shm.directory("bus");
        try (Segment parent = Segment.open(segmentOptions(directory), "test");
             Channel channel = Channel.declare(parent, ChannelChild.CHANNEL, CHANNEL_OPTIONS);
             Subscription survivor = channel.subscribe("billing", true);
             ChildJvm holder = ChildJvm.start(ChannelChild.class, "hold", directory.toString(), "billing")) {
            holder.awaitLine("READY", LINE);
            MemorySegment buffer = MemorySegment.ofArray(new long[512]);
            ChannelChild.fill(buffer, 7, 0, 300); // a pool slot, so its release is checked too
            assertThat(channel.send(buffer, 0, 300)).isEqualTo(SendOutcome.SENT);
            assertThat(holder.awaitLine("HOLDING", LINE)).isEqualTo("0");
            assertThat(survivor.poll(m -> { }, 10)).as("the held message is claimed by the other member").isZero();

            holder.kill();
            List<Boolean> flags = new ArrayList<>();
            long deadline = System.nanoTime() + LINE.toNanos();
            while (flags.isEmpty() && System.nanoTime() < deadline) {
                survivor.take(m -> {
                    assertThat(m.buffer().get(ValueLayout.JAVA_INT_UNALIGNED, m.offset() + 4)).isZero();
                    assertThat(m.buffer().get(ValueLayout.JAVA_LONG_UNALIGNED, m.offset() + 8))
                            .isEqualTo(ChannelChild.checksum(m.buffer(), m.offset(), m.length()));
                    flags.add(m.isRedelivered());
                }, 1, Duration.ofMillis(100));
            }
            assertThat(flags).containsExactly(true);
            // Recovery runs on the segment's monitor thread, and the survivor may take the message
            // back before recovery has counted the redelivery, removed the dead member (its last step
            // for the group) and freed the pool slot: wait for all three.
            long settled = System.nanoTime() + LINE.toNanos();
            while ((channel.stats().groups().getFirst().redeliveries() < 1
                    || channel.stats().groups().getFirst().members() != 1
                    || parent.slotPool().stats().stream().anyMatch(c -> c.free() != c.total()))
                    && System.nanoTime() - settled < 0) {
                LockSupport.parkNanos(1_000_000);
            }
            Channel.GroupStats billing = channel.stats().groups().getFirst();
            assertThat(billing.redeliveries()).isEqualTo(1);
            assertThat(billing.members()).as("the dead member left the group").isEqualTo(1);
            assertThat(billing.lag()).isZero();
            assertThat(parent.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
        }
    }

    /**
     * A subscriber that runs out of descriptors cannot open a memfd message its sender still holds:
     * its poll throws, leaves the message unread, and hands it out once it can open it again (a shared
     * member even when another member moved the group's next beyond it meanwhile). Nothing is lost or
     * counted lost, nothing read twice, and the sender, whose stat the starved process cannot read
     * meanwhile, still counts as alive.
     */
    @ParameterizedTest
    @ValueSource(strings = {"EXCLUSIVE", "SHARED"})
    void aSubscriberOutOfDescriptorsLeavesAMemfdMessageUnreadAndReadsItLater(String mode) throws Exception {
        Path directory = shm.directory("bus");
        try (Segment parent = Segment.open(segmentOptions(directory), "test");
             Channel channel = Channel.declare(parent, ChannelChild.CHANNEL, CHANNEL_OPTIONS);
             ChildJvm child = ChildJvm.start(ChannelChild.class, "starved", directory.toString(), mode,
                     Long.toString(ProcessHandle.current().pid()), Long.toString(Processes.startTime()))) {
            child.awaitLine("READY", LINE);
            int length = ChannelChild.lengthOf(4999); // above the largest slot class: a memfd
            MemorySegment buffer = MemorySegment.ofArray(new long[length / 8 + 1]);
            ChannelChild.fill(buffer, 1, 0, length);
            assertThat(channel.send(buffer, 0, length)).isEqualTo(SendOutcome.SENT);
            assertThat(child.awaitLine("GOT", LINE)).isEqualTo("0 true false");
            ChannelChild.fill(buffer, 1, 1, length);
            assertThat(channel.send(buffer, 0, length)).isEqualTo(SendOutcome.SENT);
            child.send("SENT 1");

            String failure = child.awaitLine("UNAVAILABLE", LINE);
            assertThat(failure).contains("message 1 of channel 'orders', group 'starved' stays in the ring, unread")
                    .contains("process " + ProcessHandle.current().pid()).containsAnyOf("failed: EMFILE", "cannot read /proc/");
            assertThat(child.awaitLine("UNAVAILABLE", LINE)).as("the second poll finds it again")
                    .contains("message 1 of channel");
            assertThat(child.awaitLine("ALIVE", LINE)).as("stat unreadable, and the sender alive").isEqualTo("true true");
            // Not flagged redelivered: no handler saw it.
            assertThat(child.awaitLine("GOT", LINE)).isEqualTo("1 true false");
            assertThat(child.awaitLine("MORE", LINE)).as("nothing twice").isEqualTo("0 []");
            assertThat(child.awaitLine("LOST", LINE)).isEqualTo("0");
        }
    }

    /**
     * A memfd payload lives in its sender's process, so closing a sender's channel keeps its memfds for
     * the required groups up to the send timeout: one a group reads while close waits is delivered,
     * one nobody has read by then is let go, and the group counts it lost, the delivery contract's one
     * loss without a crash. (A CI run once counted such a loss in the three-producer test, whose
     * producers closed with their last memfd unread by a consumer JVM behind by more than 200 ms: its
     * producers now wait for the groups first, as a graceful stop does.)
     */
    @Test
    void closingASenderKeepsItsMemfdPayloadsForTheRequiredGroupsUpToTheSendTimeout() throws Exception {
        Path directory = shm.directory("bus");
        long timeoutMillis = 2_000; // well beyond the 300 ms below, on a busy machine too
        try (Segment parent = Segment.open(segmentOptions(directory), "test");
             Channel channel = Channel.declare(parent, ChannelChild.CHANNEL, CHANNEL_OPTIONS);
             Subscription billing = channel.subscribe("billing", true);
             ChildJvm sender = ChildJvm.start(ChannelChild.class, "close-with-memfds", directory.toString(),
                     Long.toString(timeoutMillis))) {
            sender.awaitLine("SENT", LINE);
            List<Integer> got = new ArrayList<>();
            MessageHandler handler = m -> {
                MemorySegment b = m.buffer();
                assertThat(b.get(ValueLayout.JAVA_LONG_UNALIGNED, m.offset() + 8))
                        .isEqualTo(ChannelChild.checksum(b, m.offset(), m.length()));
                got.add(b.get(ValueLayout.JAVA_INT_UNALIGNED, m.offset() + 4));
            };
            assertThat(billing.poll(handler, 1)).isOne();
            sender.send("CLOSE");
            sender.awaitLine("CLOSING", LINE);
            Thread.sleep(300); // the subject: message 1 is read late, yet within the sender's timeout
            assertThat(billing.poll(handler, 1)).as("message 1, read while close waits").isOne();
            long took = Long.parseLong(sender.awaitLine("CLOSED", LINE));
            assertThat(took).as("close waited the whole timeout for message 2").isGreaterThanOrEqualTo(timeoutMillis);
            assertThat(billing.poll(handler, 16)).as("message 2, let go unread").isZero();
            assertThat(got).containsExactly(0, 1);
            assertThat(channel.stats().groups()).singleElement().satisfies(g -> {
                assertThat(g.lost()).isOne();
                assertThat(g.lag()).isZero();
            });
            sender.send("EXIT");
            assertThat(sender.awaitExit(LINE)).isZero();
            assertThat(parent.leases().leases()).isEmpty();
        }
    }

    @Test
    void anExclusiveMemberKilledMidMessageHandsItToItsReplacementFlagged() throws Exception {
        Path directory = shm.directory("bus");
        try (Segment parent = Segment.open(segmentOptions(directory), "test");
             Channel channel = Channel.declare(parent, ChannelChild.CHANNEL, CHANNEL_OPTIONS);
             ChildJvm holder = ChildJvm.start(ChannelChild.class, "hold", directory.toString(),
                     ChannelChild.EXCLUSIVE_GROUP)) {
            holder.awaitLine("READY", LINE);
            assertThat(channel.stats().groups().getFirst().exclusive()).isTrue();
            // While the holder lives, nobody else joins: a member waits the liveness timeout, then is refused.
            assertThatThrownBy(() -> channel.subscribe(ChannelChild.EXCLUSIVE_GROUP, true))
                    .isInstanceOfSatisfying(ChannelException.class,
                            e -> assertThat(e.reason()).isEqualTo(ChannelException.Reason.GROUP_BUSY))
                    .hasMessageContaining("is held by the exclusive member of peer");
            MemorySegment buffer = MemorySegment.ofArray(new long[512]);
            // Two messages the holder finishes (it moves done, not next), then producer 7's, whose first
            // it holds: a pool slot, so that its release is checked too.
            for (int i = 0; i < 2; i++) {
                ChannelChild.fill(buffer, 6, i, 40);
                assertThat(channel.send(buffer, 0, 40)).isEqualTo(SendOutcome.SENT);
            }
            int[] lengths = {300, 40, 2000};
            for (int i = 0; i < lengths.length; i++) {
                ChannelChild.fill(buffer, 7, i, lengths[i]);
                assertThat(channel.send(buffer, 0, lengths[i])).isEqualTo(SendOutcome.SENT);
            }
            assertThat(holder.awaitLine("HOLDING", LINE)).isEqualTo("0");

            holder.kill();
            // The replacement (a shared member: it starts from done, not from the next the exclusive
            // member never moved) joins once recovery has handed the dead member's message on.
            List<String> got = new ArrayList<>();
            try (Subscription replacement = channel.subscribe(ChannelChild.EXCLUSIVE_GROUP, true)) {
                long deadline = System.nanoTime() + LINE.toNanos();
                while (got.size() < lengths.length && System.nanoTime() < deadline) {
                    replacement.take(m -> {
                        assertThat(m.buffer().get(ValueLayout.JAVA_LONG_UNALIGNED, m.offset() + 8))
                                .isEqualTo(ChannelChild.checksum(m.buffer(), m.offset(), m.length()));
                        got.add(m.buffer().get(ValueLayout.JAVA_INT_UNALIGNED, m.offset()) + "/"
                                + m.buffer().get(ValueLayout.JAVA_INT_UNALIGNED, m.offset() + 4)
                                + (m.isRedelivered() ? " redelivered" : ""));
                    }, 10, Duration.ofMillis(100));
                }
            }
            assertThat(got).containsExactly("7/0 redelivered", "7/1", "7/2");
            Channel.GroupStats audit = channel.stats().groups().getFirst();
            assertThat(audit.redeliveries()).isEqualTo(1);
            assertThat(audit.members()).isZero();
            assertThat(audit.exclusive()).isFalse();
            assertThat(audit.lag()).isZero();
            assertThat(parent.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
        }
    }

    /**
     * A subscriber in another process sleeps on the ring's futex (BLOCKING) while this process
     * produces with BUSY_SPIN: each send must wake it at once, not after its safety wake-up (10 s
     * here). The sender waits until the subscriber is registered as a sleeper before each send,
     * so that every one of the sends crosses a real sleep.
     */
    @Test
    void aSubscriberSleepingInAnotherProcessIsWokenByEverySend() throws Exception {
        int count = 20;
        for (String name : List.of("sp", "mp")) {
            Path directory = shm.directory("sleep-" + name);
            try (Segment parent = Segment.open(sleeperSegmentOptions(directory), "test");
                 Channel channel = Channel.declare(parent, name, sleeperChannelOptions(name));
                 ChildJvm sleeper = ChildJvm.start(ChannelChild.class, "sleep", directory.toString(), name,
                         Integer.toString(count))) {
                sleeper.awaitLine("READY", LINE);
                Ring ring = ring(channel);
                MemorySegment buffer = MemorySegment.ofArray(new int[1]);
                for (int i = 0; i < count; i++) {
                    long deadline = System.nanoTime() + LINE.toNanos();
                    while ((int) Ring.INT.getVolatile(ring.memory, (long) RingDescriptor.DATA_SLEEPERS_OFFSET) == 0) {
                        assertThat(System.nanoTime()).as("the subscriber goes to sleep").isLessThan(deadline);
                        Thread.onSpinWait();
                    }
                    buffer.set(ValueLayout.JAVA_INT, 0, i);
                    long sent = System.nanoTime();
                    assertThat(channel.send(buffer, 0, 4)).isEqualTo(SendOutcome.SENT);
                    assertThat(sleeper.awaitLine("GOT", LINE)).isEqualTo(Integer.toString(i));
                    assertThat(Duration.ofNanos(System.nanoTime() - sent)).as("%s: wake-up of message %d", name, i)
                            .isLessThan(Duration.ofSeconds(3));
                }
            }
        }
    }

    /**
     * A single producer in another process laps an optional group all the time, while a required
     * group of its own process keeps up: every message the optional group is handed is whole (one
     * index in every word, never a mix of two laps), each at most once and in order, and what it
     * missed is counted lost.
     *
     * <p>Such a reader tells a slot being written again from the message it read only by the
     * producer's mark. A single producer skips the mark of its inline slots while no group may be
     * lapped, and marks them from its next read of the gating on — at the latest a lap after the
     * reader's start — whether the reader was there before the first message or joins mid-stream.
     * A torn copy needs the two processes to meet in one slot at the wrong moment, so besides the
     * messages this test watches the slot at the cursor: the mark shows there, from another
     * process, once the reader is in (and never before, with only the required group).
     *
     * <p>With payloads in pool slots, the reader takes the reference from the slot after its look
     * at the header: a producer that laps it in between has written the next lap's reference there,
     * to a slot that is allocated and current. Handed out as this message, it would come again,
     * unflagged, a lap later (and this message would be lost uncounted).
     */
    @ParameterizedTest(name = "joins mid-stream: {0}, in pool slots: {1}")
    @CsvSource({"false, false", "true, false", "false, true"})
    void anOptionalGroupLappedByASingleProducerInAnotherProcessIsHandedOnlyWholeMessages(boolean joinsMidStream,
            boolean pooled) throws Exception {
        Path directory = shm.directory("bus");
        int count = 300_000;
        try (Segment parent = Segment.open(segmentOptions(directory), "test");
             Channel channel = Channel.declare(parent, "lapped", LAPPED_OPTIONS)) {
            Ring ring = ring(channel);
            int length = pooled ? LAPPED_POOLED_LENGTH : channel.inlineCapacity();
            // delivered, last index, torn or out of order or another message's, sequence minus index
            long[] seen = {0, -1, 0, Long.MIN_VALUE};
            MessageHandler check = m -> {
                MemorySegment b = m.buffer();
                long index = b.get(ValueLayout.JAVA_LONG_UNALIGNED, m.offset());
                if (seen[3] == Long.MIN_VALUE) {
                    seen[3] = m.sequence() - index; // one producer from the ring's first sequence on
                }
                boolean whole = m.length() == length && index > seen[1] && index < count
                        && m.sequence() - index == seen[3];
                for (int word = 1; whole && word < length / 8; word++) {
                    whole = b.get(ValueLayout.JAVA_LONG_UNALIGNED, m.offset() + 8L * word) == index;
                }
                seen[0]++;
                seen[1] = Math.max(seen[1], index);
                if (!whole) {
                    seen[2]++;
                }
            };
            Subscription monitor = joinsMidStream ? null : channel.subscribe("monitor", false);
            long marksBefore = 0;
            long marksAfter = 0;
            try (ChildJvm producer = ChildJvm.start(ChannelChild.class, "lap-optional", directory.toString(),
                    Integer.toString(count), Integer.toString(length))) {
                producer.awaitLine("READY", LINE);
                long deadline = System.nanoTime() + LINE.toNanos();
                long markedFrom = joinsMidStream ? Long.MAX_VALUE : ring.capacity;
                String done = null;
                while (done == null) {
                    assertThat(System.nanoTime()).as("the producer finishes").isLessThan(deadline);
                    long cursor = ring.cursor();
                    long h = ring.header(ring.slot(cursor));
                    if (RingDescriptor.isTag(h, cursor) && RingDescriptor.state(h) == RingDescriptor.WRITING) {
                        if (cursor >= markedFrom) {
                            marksAfter++;
                        } else if (monitor == null) {
                            marksBefore++;
                        }
                    }
                    if (monitor == null && cursor >= count / 10) {
                        monitor = channel.subscribe("monitor", false); // into a stream of unmarked slots
                        markedFrom = channel.stats().groups().getLast().start() + ring.capacity;
                    }
                    if (monitor != null) {
                        monitor.poll(check, 4);
                    }
                    String line = producer.pollLine();
                    if (line != null && line.startsWith("DONE ")) {
                        done = line;
                    }
                }
                assertThat(done).as("the required group got every message").isEqualTo("DONE " + count);
                assertThat(monitor).as("joined before the stream ended").isNotNull();
                while (monitor.poll(check, 64) > 0) {
                    // the last lap
                }
            } finally {
                if (monitor != null) {
                    monitor.close();
                }
            }
            Channel.GroupStats stats = channel.stats().groups().stream().filter(g -> g.name().equals("monitor"))
                    .findFirst().orElseThrow();
            assertThat(seen[2]).as("messages handed out torn or out of order").isZero();
            assertThat(stats.lost()).as("the optional group was lapped").isPositive();
            assertThat(seen[0]).as("delivered").isPositive();
            assertThat(seen[0] + stats.lost()).as("every message from its start delivered or counted lost")
                    .isEqualTo(count - stats.start());
            assertThat(marksAfter).as("slots seen marked while the optional group could be lapped").isPositive();
            assertThat(marksBefore).as("slots seen marked while only the required group read").isZero();
            assertThat(channel.stats().corrupt()).isZero();
        }
    }

    /**
     * A single producer is SIGKILLed mid-stream, five times — the first with a slot claimed and not
     * published, the second with a message published and the cursor not yet moved over it, the third
     * half-way through writing an inline message into an unmarked slot (it has only a required
     * group, so it does not mark), the others at random — and another process takes the channel
     * over each time (after the dead one is recovered); the last one finishes. The consumer gets
     * every message a producer said it sent, each once, in order, checksums intact — across the
     * slot the dead producer had claimed, and across the first lap of each new producer, which has
     * to read the headers that the previous one left.
     */
    @Test
    void aSingleProducerKilledMidStreamIsTakenOverWithNothingLostOrDuplicated() throws Exception {
        Path directory = shm.directory("bus");
        java.util.SplittableRandom random = new java.util.SplittableRandom(11);
        int rounds = 6;
        try (Segment parent = Segment.open(segmentOptions(directory), "test");
             Channel channel = Channel.declare(parent, "sp", SINGLE_PRODUCER_OPTIONS);
             Subscription subscription = channel.subscribe("billing", true)) {
            int[] next = new int[rounds];
            int[] bad = new int[1];
            MessageHandler handler = m -> {
                MemorySegment b = m.buffer();
                int producer = b.get(ValueLayout.JAVA_INT_UNALIGNED, m.offset());
                int index = b.get(ValueLayout.JAVA_INT_UNALIGNED, m.offset() + 4);
                boolean ok = producer >= 0 && producer < rounds && index == next[producer] && !m.isRedelivered()
                        && m.length() == Math.min(ChannelChild.lengthOf(index), 4000)
                        && b.get(ValueLayout.JAVA_LONG_UNALIGNED, m.offset() + 8)
                                == ChannelChild.checksum(b, m.offset(), m.length());
                if (ok) {
                    next[producer]++;
                } else {
                    bad[0]++;
                }
            };
            for (int round = 0; round < rounds; round++) {
                boolean last = round == rounds - 1;
                int quota = last ? 3000 : 1_000_000; // the killed ones are never done
                // The first one dies with a slot claimed, after it lapped the ring: deterministically
                // between claim and publish, in its fast path.
                // The second one dies right after a publication, before its store of the cursor: its
                // successor finds the slot at the cursor holding the cursor's own sequence. The third
                // dies while it writes an unmarked slot: its successor finds the previous lap's header
                // over half a new message.
                String dies = switch (round) {
                    case 0 -> "claimed";
                    case 1 -> "published";
                    case 2 -> "torn";
                    default -> "none";
                };
                int at = switch (round) {
                    case 0 -> 5 * SINGLE_PRODUCER_OPTIONS.capacity() + 3;
                    case 1 -> 3 * SINGLE_PRODUCER_OPTIONS.capacity() + 5;
                    case 2 -> 2 * SINGLE_PRODUCER_OPTIONS.capacity() + 7;
                    default -> -1;
                };
                try (ChildJvm producer = ChildJvm.start(ChannelChild.class, "sp-stream", directory.toString(),
                        Integer.toString(round), Integer.toString(quota), dies, Integer.toString(at))) {
                    int peer = Integer.parseInt(producer.awaitLine("READY", LINE));
                    long until = System.nanoTime()
                            + Duration.ofMillis(last || at >= 0 ? 60_000 : 150 + random.nextInt(250)).toNanos();
                    int said = 0;
                    String died = "none";
                    while (System.nanoTime() < until) {
                        subscription.poll(handler, 256);
                        String line = producer.pollLine();
                        if (line != null && line.startsWith("SENT ")) {
                            said = Integer.parseInt(line.substring(5));
                        } else if (line != null && line.startsWith("CLAIMED ")) {
                            died = "claimed";
                            said = at;
                            break;
                        } else if (line != null && line.startsWith("PUBLISHED ")) {
                            died = "published";
                            said = Integer.parseInt(line.substring(10));
                            break;
                        } else if (line != null && line.startsWith("TORN ")) {
                            died = "torn";
                            said = at;
                            break;
                        } else if ("DONE".equals(line)) {
                            said = quota;
                            break;
                        }
                    }
                    assertThat(died).as("producer %d waits in the state it was told to die in", round).isEqualTo(dies);
                    if (!last) {
                        assertThat(said).as("producer %d is killed mid-stream", round).isGreaterThan(0).isLessThan(quota);
                        producer.kill();
                        long deadline = System.nanoTime() + LINE.toNanos();
                        while (parent.peer(peer).state() != dev.shm.core.segment.PeerState.EMPTY) {
                            assertThat(System.nanoTime()).as("the dead producer is recovered").isLessThan(deadline);
                            subscription.poll(handler, 256);
                        }
                    }
                    long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
                    while (next[round] < said && System.nanoTime() < deadline) {
                        subscription.poll(handler, 256);
                    }
                    assertThat(next[round]).as("messages of producer %d it said it sent", round)
                            .isGreaterThanOrEqualTo(said);
                    if (died.equals("claimed") || died.equals("torn")) {
                        assertThat(next[round]).as("nothing of the %s slot arrives", died).isEqualTo(at);
                    }
                    if (last) {
                        assertThat(said).isEqualTo(quota);
                        assertThat(next[round]).isEqualTo(quota);
                    }
                }
            }
            assertThat(subscription.poll(handler, 256)).as("nothing after the last message").isZero();
            assertThat(bad[0]).as("messages out of order, duplicated, redelivered or damaged").isZero();
            assertThat(channel.stats().groups().getFirst().lag()).isZero();
            assertThat(parent.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
        }
    }

    /** The channel's ring, for tests that look at or damage its words (it is private to the channel). */
    static Ring ring(Channel channel) throws ReflectiveOperationException {
        java.lang.reflect.Field field = Channel.class.getDeclaredField("ring");
        field.setAccessible(true);
        return (Ring) field.get(channel);
    }

    /** Every (producer, index) exactly once across the members; each member saw each producer in order. */
    private static void checkExactlyOnce(List<List<Received>> members, int producers, int each) {
        BitSet[] seen = new BitSet[producers];
        for (int p = 0; p < producers; p++) {
            seen[p] = new BitSet(each);
        }
        for (List<Received> member : members) {
            int[] last = new int[producers];
            java.util.Arrays.fill(last, -1);
            for (Received r : member) {
                assertThat(r.flags()).as("checksum and redelivery flags").isZero();
                assertThat(r.index()).as("per-producer order within a member").isGreaterThan(last[r.producer()]);
                last[r.producer()] = r.index();
                assertThat(seen[r.producer()].get(r.index())).as("duplicate %s", r).isFalse();
                seen[r.producer()].set(r.index());
            }
        }
        for (int p = 0; p < producers; p++) {
            assertThat(seen[p].cardinality()).as("messages of producer %d", p).isEqualTo(each);
        }
    }
}
