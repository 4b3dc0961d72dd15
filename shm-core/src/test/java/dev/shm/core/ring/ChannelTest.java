package dev.shm.core.ring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.memory.MemfdBuffer;
import dev.shm.core.segment.Directory;
import dev.shm.core.segment.DirectoryDescriptor;
import dev.shm.core.segment.LeaseDescriptor;
import dev.shm.core.segment.LeaseTable;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentException;
import dev.shm.core.segment.SegmentOptions;
import dev.shm.core.segment.SlotClass;
import dev.shm.core.segment.TestSegments;
import dev.shm.core.testing.ShmDirectory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class ChannelTest {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private SegmentOptions options;
    private final ChannelOptions small = ChannelOptions.defaults().withCapacity(16).withSlotSize(128);

    @BeforeEach
    void options() {
        options = TestSegments.options(shm.directory("rings"), "bus");
    }

    private static byte[] bytes(int length, int seed) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) {
            b[i] = (byte) (seed * 31 + i);
        }
        return b;
    }

    private static List<byte[]> drain(Subscription subscription) {
        List<byte[]> received = new ArrayList<>();
        while (subscription.poll(m -> received.add(m.toByteArray()), 64) > 0) {
            // keep polling
        }
        return received;
    }

    @Test
    void everyGroupReceivesEveryMessageAndMembersOfAGroupCompete() {
        try (Segment a = Segment.open(options, "a"); Segment b = Segment.open(options, "b")) {
            Channel producer = Channel.declare(a, "orders", small);
            Channel consumer = Channel.declare(b, "orders", small);
            Subscription billing1 = consumer.subscribe("billing", true);
            Subscription billing2 = producer.subscribe("billing", true);
            Subscription audit = consumer.subscribe("audit", true);
            for (int i = 0; i < 10; i++) {
                assertThat(producer.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
            }
            List<byte[]> first = new ArrayList<>();
            billing1.poll(m -> first.add(m.toByteArray()), 4);
            List<byte[]> second = drain(billing2);
            List<byte[]> all = drain(audit);
            assertThat(first).hasSize(4);
            assertThat(second).hasSize(6);
            assertThat(all).hasSize(10);
            for (int i = 0; i < 10; i++) {
                assertThat(all.get(i)).isEqualTo(bytes(20, i));
            }
            assertThat(first.get(0)).isEqualTo(bytes(20, 0));
            assertThat(second.get(0)).isEqualTo(bytes(20, 4));
            Channel.Stats stats = producer.stats();
            assertThat(stats.published()).isEqualTo(10);
            assertThat(stats.occupancy()).isZero();
            assertThat(stats.groups()).extracting(Channel.GroupStats::name).containsExactly("billing", "audit");
            assertThat(stats.groups().getFirst().members()).isEqualTo(2);
            assertThat(stats.groups().getFirst().consumed()).isEqualTo(10);
        }
    }

    @Test
    void aProcessStaysAMemberWhileAnyOfItsSubscriptionsToTheGroupIsOpen() {
        try (Segment a = Segment.open(options, "a"); Segment b = Segment.open(options, "b")) {
            Channel channel = Channel.declare(a, "orders", small);
            Channel again = Channel.declare(a, "orders", small); // a second handle in the same process
            Subscription first = channel.subscribe("billing", true);
            Subscription second = again.subscribe("billing", true);
            Subscription other = Channel.declare(b, "orders", small).subscribe("billing", true);
            assertThat(billingMembers(channel)).isEqualTo(2);

            first.close();
            first.close(); // closing twice counts once
            assertThat(billingMembers(channel)).as("a's second subscription is still open").isEqualTo(2);
            second.close();
            assertThat(billingMembers(channel)).isEqualTo(1);
            other.close();
            assertThat(billingMembers(channel)).isZero();

            Subscription back = channel.subscribe("billing", true);
            assertThat(billingMembers(channel)).isEqualTo(1);
            back.close();
            assertThat(billingMembers(channel)).isZero();
        }
    }

    @Test
    void anExclusiveMemberHasTheGroupToItselfAndHandsItOnWhereItStopped() {
        try (Segment a = Segment.open(options, "a"); Segment b = Segment.open(options, "b")) {
            Channel producer = Channel.declare(a, "orders", small);
            Channel consumer = Channel.declare(b, "orders", small);
            Subscription exclusive = consumer.subscribe("billing", true, SubscriptionMode.EXCLUSIVE);
            Channel.GroupStats held = producer.stats().groups().getFirst();
            assertThat(held.exclusive()).isTrue();
            assertThat(held.members()).isEqualTo(1);
            // In this process the conflict is known at once: no wait.
            assertThatThrownBy(() -> consumer.subscribe("billing", true))
                    .isInstanceOfSatisfying(ChannelException.class,
                            e -> assertThat(e.reason()).isEqualTo(ChannelException.Reason.GROUP_BUSY))
                    .hasMessageContaining("already has the exclusive subscription to group 'billing'");
            // Inline, pool-slot and a skip (a send whose source fails after the claim) on the exclusive path.
            List<Integer> lengths = List.of(20, 100, 300, 7, 2000, 1);
            for (int i = 0; i < lengths.size(); i++) {
                assertThat(producer.send(bytes(lengths.get(i), i))).isEqualTo(SendOutcome.SENT);
            }
            MemorySegment gone;
            try (Arena arena = Arena.ofConfined()) {
                gone = arena.allocate(8);
            }
            MemorySegment closedSource = gone;
            assertThatThrownBy(() -> producer.send(closedSource, 0, 8)).isInstanceOf(IllegalStateException.class);
            assertThat(producer.send(bytes(30, 6))).isEqualTo(SendOutcome.SENT);
            List<byte[]> first = new ArrayList<>();
            assertThat(exclusive.poll(m -> first.add(m.toByteArray()), 4)).isEqualTo(4);
            assertThat(producer.stats().groups().getFirst().done()).as("done moves with each message").isEqualTo(4);
            assertThat(exclusive.poll(m -> first.add(m.toByteArray()), 10)).as("over the skip").isEqualTo(3);
            assertThat(producer.stats().groups().getFirst().done()).isEqualTo(8);
            assertThat(first).hasSize(7);
            for (int i = 0; i < lengths.size(); i++) {
                assertThat(first.get(i)).isEqualTo(bytes(lengths.get(i), i));
            }
            assertThat(first.get(6)).isEqualTo(bytes(30, 6));
            assertThat(producer.send(bytes(50, 8))).isEqualTo(SendOutcome.SENT);
            assertThat(producer.send(bytes(60, 9))).isEqualTo(SendOutcome.SENT);
            exclusive.close();
            Channel.GroupStats released = producer.stats().groups().getFirst();
            assertThat(released.exclusive()).isFalse();
            assertThat(released.members()).isZero();

            // A shared member goes on where the exclusive one stopped: nothing lost, nothing twice.
            Subscription shared = producer.subscribe("billing", true);
            assertThatThrownBy(() -> consumer.subscribe("billing", true, SubscriptionMode.EXCLUSIVE))
                    .as("an exclusive member needs the group to itself (this waits the liveness timeout)")
                    .isInstanceOfSatisfying(ChannelException.class,
                            e -> assertThat(e.reason()).isEqualTo(ChannelException.Reason.GROUP_BUSY))
                    .hasMessageContaining("has 1 member(s)");
            List<byte[]> rest = drain(shared);
            assertThat(rest).hasSize(2);
            assertThat(rest.get(0)).isEqualTo(bytes(50, 8));
            assertThat(rest.get(1)).isEqualTo(bytes(60, 9));
            Channel.Stats stats = producer.stats();
            assertThat(stats.skips()).isEqualTo(1);
            assertThat(stats.groups().getFirst().lag()).isZero();
            assertThat(stats.groups().getFirst().redeliveries()).isZero();
            assertThat(a.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
            shared.close();

            // And an exclusive member again, after the shared one: it starts where the group stands.
            assertThat(producer.send(bytes(40, 7))).isEqualTo(SendOutcome.SENT);
            try (Subscription again = consumer.subscribe("billing", true, SubscriptionMode.EXCLUSIVE)) {
                assertThat(drain(again)).singleElement().isEqualTo(bytes(40, 7));
            }
        }
    }

    /**
     * A slot being written is what a member that keeps up with its producer meets most: an exclusive
     * member waits for it where it is, rather than going the shared way and reading its position
     * from the group's done at its next poll.
     */
    @Test
    void anExclusiveMemberThatMeetsASlotBeingWrittenWaitsOnItsOwnPath() throws Exception {
        for (boolean single : new boolean[] {false, true}) {
            ChannelOptions declared = small.withSingleProducer(single);
            try (Segment a = Segment.open(options, "a"); Segment b = Segment.open(options, "b")) {
                Channel producer = Channel.declare(a, "orders", declared);
                Subscription member = Channel.declare(b, "orders", declared)
                        .subscribe("billing", true, SubscriptionMode.EXCLUSIVE);
                for (int i = 0; i < 3; i++) {
                    assertThat(producer.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
                    assertThat(drain(member)).singleElement().isEqualTo(bytes(20, i));
                }
                Ring ring = ChannelProcessesTest.ring(producer);
                long next = producer.stats().cursor();
                long slot = ring.slot(next);
                long previousLap = ring.header(slot);
                // The sequence as a send in progress leaves it (several producers claim it first).
                if (!single) {
                    Ring.LONG.setVolatile(ring.memory, (long) RingDescriptor.CURSOR_OFFSET, next + 1);
                }
                Ring.LONG.setVolatile(ring.memory, slot, RingDescriptor.word(next, a.peerId(), RingDescriptor.WRITING));
                // Past the polls that look at the cursor too (after 1 ms at one sequence).
                for (long until = System.nanoTime() + 20_000_000; System.nanoTime() - until < 0; ) {
                    assertThat(member.poll(m -> { }, 10)).as("nothing yet").isZero();
                }
                assertThat(member.keepsItsPosition()).as("single producer: " + single).isTrue();
                assertThat(producer.stats().skips()).isZero();
                assertThat(producer.stats().corrupt()).isZero();

                Ring.LONG.setVolatile(ring.memory, slot, previousLap); // undone, and sent for real
                Ring.LONG.setVolatile(ring.memory, (long) RingDescriptor.CURSOR_OFFSET, next);
                assertThat(producer.send(bytes(30, 9))).isEqualTo(SendOutcome.SENT);
                assertThat(drain(member)).singleElement().isEqualTo(bytes(30, 9));
                assertThat(producer.stats().groups().getFirst().lag()).isZero();
            }
        }
    }

    private static int billingMembers(Channel channel) {
        return channel.stats().groups().getFirst().members();
    }

    @Test
    void theGroupsDoneMovesOverEveryFinishedMessageWhicheverMemberFinishedItAndInWhateverOrder() {
        try (Segment a = Segment.open(options, "a"); Segment b = Segment.open(options, "b")) {
            Channel producer = Channel.declare(a, "orders", small.withBackpressure(Backpressure.FAIL));
            Subscription slow = producer.subscribe("billing", true);
            Subscription fast = Channel.declare(b, "orders", small).subscribe("billing", true);
            for (int i = 0; i < 16; i++) {
                assertThat(producer.send(bytes(8, i))).isEqualTo(SendOutcome.SENT);
            }
            List<byte[]> drainedMeanwhile = new ArrayList<>();
            List<Long> doneMeanwhile = new ArrayList<>();
            List<SendOutcome> sendMeanwhile = new ArrayList<>();
            // The slow member holds message 0 while the fast one finishes 1..15: done cannot pass 0.
            assertThat(slow.poll(m -> {
                drainedMeanwhile.addAll(drain(fast));
                doneMeanwhile.add(billing(producer).consumed());
                sendMeanwhile.add(producer.send(bytes(8, 99)));
            }, 1)).isEqualTo(1);
            assertThat(drainedMeanwhile).hasSize(15);
            assertThat(doneMeanwhile).containsExactly(0L);
            assertThat(sendMeanwhile).containsExactly(SendOutcome.FULL);
            // Once message 0 is done, done moves over all 16: the ring has room for a whole lap.
            assertThat(billing(producer).consumed()).isEqualTo(16);
            assertThat(billing(producer).lag()).isZero();
            for (int i = 16; i < 32; i++) {
                assertThat(producer.send(bytes(8, i))).isEqualTo(SendOutcome.SENT);
            }
            // The other way round: the fast member finishes a run while the slow one holds the
            // message after it; done stops at the held message, then moves over the rest.
            assertThat(fast.poll(m -> { }, 4)).isEqualTo(4);
            assertThat(billing(producer).consumed()).isEqualTo(20);
            assertThat(slow.poll(m -> {
                drainedMeanwhile.addAll(drain(fast));
                doneMeanwhile.add(billing(producer).consumed());
            }, 1)).isEqualTo(1);
            assertThat(doneMeanwhile).containsExactly(0L, 20L);
            assertThat(drainedMeanwhile).hasSize(15 + 11);
            assertThat(billing(producer).consumed()).isEqualTo(32);
            assertThat(drainedMeanwhile.getLast()).isEqualTo(bytes(8, 31));
        }
    }

    /**
     * A producer that may sleep for room (BLOCK with the BLOCKING strategy) marks the ring when it
     * declares the channel, so that a consumer fences between moving its done sequence and looking
     * for sleeping producers; a producer asleep on a full ring is woken by a consumer of another peer.
     */
    @Test
    void aProducerThatMaySleepForRoomMarksTheRingAndAConsumerWakesIt() throws Exception {
        try (Segment a = Segment.open(options, "a"); Segment b = Segment.open(options, "b")) {
            ChannelOptions blocking = small.withBackpressure(Backpressure.BLOCK).withWaitStrategy(WaitStrategy.BLOCKING)
                    .withSendTimeout(Duration.ofSeconds(30));
            Channel spinning = Channel.declare(a, "spinning", blocking.withWaitStrategy(WaitStrategy.BUSY_SPIN));
            Channel failing = Channel.declare(a, "failing", blocking.withBackpressure(Backpressure.FAIL));
            assertThat(spaceBlocking(spinning)).isZero();
            assertThat(spaceBlocking(failing)).isZero();
            Channel producer = Channel.declare(a, "orders", blocking);
            assertThat(spaceBlocking(producer)).isOne();
            Subscription consumer = Channel.declare(b, "orders", blocking.withWaitStrategy(WaitStrategy.BUSY_SPIN))
                    .subscribe("billing", true, SubscriptionMode.EXCLUSIVE);
            for (int i = 0; i < 16; i++) {
                assertThat(producer.send(bytes(8, i))).isEqualTo(SendOutcome.SENT);
            }
            java.util.concurrent.CompletableFuture<SendOutcome> blocked =
                    java.util.concurrent.CompletableFuture.supplyAsync(() -> producer.send(bytes(8, 16)));
            Ring ring = ChannelProcessesTest.ring(producer);
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while ((int) Ring.INT.getVolatile(ring.memory, (long) RingDescriptor.SPACE_SLEEPERS_OFFSET) == 0) {
                assertThat(System.nanoTime()).as("the producer goes to sleep on the full ring").isLessThan(deadline);
                Thread.onSpinWait();
            }
            assertThat(blocked).isNotDone();
            assertThat(consumer.poll(m -> { }, 1)).isEqualTo(1);
            assertThat(blocked.get(10, TimeUnit.SECONDS)).isEqualTo(SendOutcome.SENT);
            assertThat(drain(consumer)).hasSize(16).last().isEqualTo(bytes(8, 16));
            consumer.close();
        }
    }

    /**
     * A segment closed with subscriptions still open recovers its own ring state as for a dead peer:
     * its subscriptions leave their groups (an exclusive hold ends), the message an exclusive member
     * may have had in hand is redelivered, and this process forgets them (closing them later does
     * nothing).
     */
    @Test
    void closingASegmentWithSubscriptionsLeftOpenLetsTheirGroupsGo() {
        Segment a = Segment.open(options, "a");
        try (Segment b = Segment.open(options, "b")) {
            Channel channel = Channel.declare(a, "orders", small);
            List<Subscription> left = List.of(channel.subscribe("billing", true), channel.subscribe("billing", true),
                    channel.subscribe("audit", true, SubscriptionMode.EXCLUSIVE));
            Channel other = Channel.declare(b, "orders", small);
            Subscription billing = other.subscribe("billing", true);
            assertThat(channel.send(bytes(8, 0))).isEqualTo(SendOutcome.SENT);
            assertThat(channel.send(bytes(8, 1))).isEqualTo(SendOutcome.SENT);
            assertThat(left.get(2).poll(m -> { }, 1)).isEqualTo(1);
            assertThat(Ring.subscribedGroups(a)).isEqualTo(2);
            a.close();
            assertThat(Ring.subscribedGroups(a)).isZero();
            assertThat(Ring.subscribedGroups(b)).isOne();
            left.forEach(Subscription::close); // too late to matter, and no error
            assertThat(other.stats().groups())
                    .extracting(Channel.GroupStats::name, Channel.GroupStats::members, Channel.GroupStats::exclusive)
                    .containsExactlyInAnyOrder(org.assertj.core.groups.Tuple.tuple("billing", 1, false),
                            org.assertj.core.groups.Tuple.tuple("audit", 0, false));
            List<Boolean> flags = new ArrayList<>();
            Subscription audit = other.subscribe("audit", true, SubscriptionMode.EXCLUSIVE);
            List<byte[]> audited = new ArrayList<>();
            while (audit.poll(m -> {
                audited.add(m.toByteArray());
                flags.add(m.isRedelivered());
            }, 64) > 0) {
                // keep polling
            }
            assertThat(audited).containsExactly(bytes(8, 1));
            assertThat(flags).containsExactly(true);
            assertThat(drain(billing)).containsExactly(bytes(8, 0), bytes(8, 1));
            audit.close();
            billing.close();
            assertThat(Ring.subscribedGroups(b)).isZero();
        } finally {
            a.close();
        }
    }

    private static int spaceBlocking(Channel channel) throws ReflectiveOperationException {
        return ChannelProcessesTest.ring(channel).memory.get(ValueLayout.JAVA_INT, RingDescriptor.SPACE_BLOCKING_OFFSET);
    }

    private static Channel.GroupStats billing(Channel channel) {
        return channel.stats().groups().stream().filter(g -> g.name().equals("billing")).findFirst().orElseThrow();
    }

    @Test
    void aRequiredGroupGatesProducersPerBackpressure() {
        try (Segment a = Segment.open(options, "a")) {
            Channel fail = Channel.declare(a, "jobs", small.withBackpressure(Backpressure.FAIL));
            Subscription slow = fail.subscribe("workers", true);
            for (int i = 0; i < 16; i++) {
                assertThat(fail.send(bytes(8, i))).isEqualTo(SendOutcome.SENT);
            }
            assertThat(fail.send(bytes(8, 99))).isEqualTo(SendOutcome.FULL);
            Channel drop = Channel.declare(a, "jobs", small.withBackpressure(Backpressure.DROP));
            assertThat(drop.send(bytes(8, 99))).isEqualTo(SendOutcome.DROPPED);
            Channel block = Channel.declare(a, "jobs", small.withSendTimeout(Duration.ofMillis(50)));
            assertThat(block.send(bytes(8, 99))).isEqualTo(SendOutcome.TIMEOUT);
            assertThat(fail.stats().drops()).isEqualTo(1);
            assertThat(fail.stats().fullWaits()).isEqualTo(1);
            assertThat(fail.stats().occupancy()).isEqualTo(16);
            assertThat(slow.poll(m -> { }, 1)).isEqualTo(1);
            assertThat(fail.send(bytes(8, 16))).isEqualTo(SendOutcome.SENT);
            List<byte[]> rest = drain(slow);
            assertThat(rest).hasSize(16);
            assertThat(rest.getLast()).isEqualTo(bytes(8, 16));
        }
    }

    @Test
    void aSendWithItsOwnTimeoutWaitsThatLongForRoomInsteadOfTheChannels() throws Exception {
        try (Segment a = Segment.open(options, "a"); Segment b = Segment.open(options, "b")) {
            Channel block = Channel.declare(a, "jobs", small.withSendTimeout(Duration.ofMillis(20)));
            Subscription slow = Channel.declare(b, "jobs", small.withSendTimeout(Duration.ofMillis(20)))
                    .subscribe("workers", true);
            for (int i = 0; i < 16; i++) {
                assertThat(block.send(bytes(8, i))).isEqualTo(SendOutcome.SENT);
            }
            MemorySegment payload = MemorySegment.ofArray(bytes(8, 16));
            // Shorter: no wait, or 30 ms against the channel's 20 ms: both time out, as does the channel's own.
            assertThat(block.send(payload, 0, 8, 0, TimeUnit.MILLISECONDS)).isEqualTo(SendOutcome.TIMEOUT);
            assertThat(block.send(payload, 0, 8, -5, TimeUnit.SECONDS)).isEqualTo(SendOutcome.TIMEOUT);
            assertThat(block.send(payload, 0, 8, 30, TimeUnit.MILLISECONDS)).isEqualTo(SendOutcome.TIMEOUT);
            // Longer: 60 s, while the consumer of the other peer takes a message 200 ms into the wait,
            // ten times the channel's timeout.
            long waitsBefore = block.stats().fullWaits();
            AtomicReference<SendOutcome> outcome = new AtomicReference<>();
            Thread sender = Thread.ofPlatform().start(
                    () -> outcome.set(block.send(payload, 0, 8, 60, TimeUnit.SECONDS)));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (block.stats().fullWaits() == waitsBefore && System.nanoTime() < deadline) {
                Thread.onSpinWait();
            }
            assertThat(block.stats().fullWaits()).as("the send waits for room").isEqualTo(waitsBefore + 1);
            Thread.sleep(200); // past the channel's own timeout
            assertThat(sender.isAlive()).as("still waiting after the channel's timeout").isTrue();
            assertThat(slow.poll(m -> { }, 1)).isEqualTo(1);
            sender.join(TimeUnit.SECONDS.toMillis(30));
            assertThat(outcome.get()).isEqualTo(SendOutcome.SENT);
            List<byte[]> rest = drain(slow);
            assertThat(rest).hasSize(16);
            assertThat(rest.getLast()).isEqualTo(bytes(8, 16));
            slow.close();
        }
    }

    /**
     * A producer with no required group reads the groups again a lap after the cursor it had reached
     * when it last read them, so a group that joins meanwhile — 4 and 5 sends after that read here —
     * gates it from its start: the ring fills with the group's messages, and the next send is
     * refused (a cache a lap too far would let it overwrite the group's first message).
     */
    @Test
    void aRequiredGroupThatJoinsAfterAProducerSentWithoutOneGatesThatProducer() {
        for (int run = 0; run < 4; run++) {
            int before = run < 2 ? 20 : 5;
            boolean single = run % 2 == 1;
            try (Segment a = Segment.open(options, "a")) {
                String name = (single ? "single" : "multi") + "-" + before;
                Channel producer = Channel.declare(a, name,
                        small.withBackpressure(Backpressure.FAIL).withSingleProducer(single));
                // No group yet: nothing gates the producer, and it may overwrite what nobody reads.
                for (int i = 0; i < before; i++) {
                    assertThat(producer.send(bytes(8, i))).isEqualTo(SendOutcome.SENT);
                }
                Subscription late = Channel.declare(a, name, small.withBackpressure(Backpressure.FAIL)
                        .withSingleProducer(single)).subscribe("late", true);
                for (int i = 0; i < 16; i++) {
                    assertThat(producer.send(bytes(8, 100 + i))).as("%s send %d", name, i).isEqualTo(SendOutcome.SENT);
                }
                assertThat(producer.send(bytes(8, 99))).as(name).isEqualTo(SendOutcome.FULL);
                List<byte[]> got = drain(late);
                assertThat(got).as(name).hasSize(16);
                assertThat(got.getFirst()).isEqualTo(bytes(8, 100));
                assertThat(got.getLast()).isEqualTo(bytes(8, 115));
            }
        }
    }

    @Test
    void anOptionalGroupIsOverrunAndCountsWhatItLost() {
        try (Segment a = Segment.open(options, "a")) {
            Channel channel = Channel.declare(a, "ticks", small.withBackpressure(Backpressure.FAIL));
            Subscription monitor = channel.subscribe("monitor", false);
            for (int i = 0; i < 40; i++) {
                assertThat(channel.send(bytes(8, i))).isEqualTo(SendOutcome.SENT);
            }
            List<byte[]> seen = drain(monitor);
            assertThat(seen).hasSize(16);
            assertThat(seen.getFirst()).isEqualTo(bytes(8, 24));
            assertThat(channel.stats().groups().getFirst().lost()).isEqualTo(24);
        }
    }

    @Test
    void aMemberOfAnOptionalGroupThatIsLappedInsideItsHandlerLeavesTheLaterMessageToTheGroup() {
        try (Segment a = Segment.open(options, "a")) {
            ChannelOptions four = ChannelOptions.defaults().withCapacity(4).withSlotSize(128)
                    .withBackpressure(Backpressure.FAIL);
            Channel channel = Channel.declare(a, "ticks", four);
            Subscription monitor = channel.subscribe("monitor", false);
            assertThat(channel.send(bytes(8, 0))).isEqualTo(SendOutcome.SENT);
            List<byte[]> seen = new ArrayList<>();
            int first = monitor.poll(m -> {
                seen.add(m.toByteArray());
                // While message 0 is claimed, the producer laps the ring: message 4 takes its slot.
                for (int i = 1; i <= 4; i++) {
                    assertThat(channel.send(bytes(8, i))).isEqualTo(SendOutcome.SENT);
                }
            }, 1);
            assertThat(first).isEqualTo(1);
            seen.addAll(drain(monitor));
            assertThat(seen).hasSize(5);
            for (int i = 0; i <= 4; i++) {
                assertThat(seen.get(i)).isEqualTo(bytes(8, i));
            }
            Channel.Stats stats = channel.stats();
            assertThat(stats.corrupt()).isZero();
            assertThat(stats.groups().getFirst().lost()).isZero();
            assertThat(stats.groups().getFirst().done()).isEqualTo(stats.cursor());
        }
    }

    @Test
    void aGroupCreatedLateStartsWithEveryMessageOpenWhateverItsClaimWordsHeldBefore() throws Exception {
        try (Segment a = Segment.open(options, "a")) {
            Channel channel = Channel.declare(a, "orders", small);
            Subscription first = channel.subscribe("first", true);
            Ring ring = ChannelProcessesTest.ring(channel);
            // The claim words of the next group's entry as a group long gone might have left them:
            // of sequences that now read as later laps (half the tag space ahead).
            long cursor = channel.stats().cursor();
            for (int i = 0; i < small.capacity(); i++) {
                Ring.LONG.setVolatile(ring.memory, ring.claim(1, i),
                        RingDescriptor.word(cursor + (1L << 47) + 3, RingDescriptor.NO_PEER, RingDescriptor.DONE));
            }
            Subscription late = channel.subscribe("late", true);
            for (int i = 0; i < 2 * small.capacity(); i++) {
                assertThat(channel.send(bytes(8, i))).isEqualTo(SendOutcome.SENT);
                assertThat(drain(late)).containsExactly(bytes(8, i));
                assertThat(drain(first)).hasSize(1);
            }
            assertThat(channel.stats().corrupt()).isZero();
        }
    }

    @Test
    void aChannelClosedWhileAThreadSendsMemfdPayloadsKeepsNoLeaseAndNoBuffer() throws Exception {
        // close() lets go of the memfds it knows; a send that passed its look at closed before and
        // publishes after that keeps its memfd to itself, waits for the group as close() did, and
        // ends its lease: none stays for the life of the process.
        try (Segment a = Segment.open(options, "a")) {
            for (int round = 0; round < 20; round++) {
                Channel channel = Channel.declare(a, "blobs-" + round, small);
                Subscription readers = channel.subscribe("readers", true);
                AtomicBoolean reading = new AtomicBoolean(true);
                AtomicInteger sent = new AtomicInteger();
                Thread reader = Thread.ofPlatform().start(() -> {
                    while (reading.get()) {
                        readers.poll(m -> { }, 16);
                    }
                });
                byte[] payload = bytes(8 << 20, round); // a memfd, slower to fill than close() to drain
                Thread sender = Thread.ofPlatform().start(() -> {
                    try {
                        while (channel.send(payload) == SendOutcome.SENT) {
                            sent.incrementAndGet();
                        }
                    } catch (IllegalStateException closed) {
                        // the channel closed under it
                    }
                });
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (sent.get() < 1 + round % 5 && System.nanoTime() < until) {
                    Thread.onSpinWait();
                }
                channel.close();
                sender.join(30_000);
                assertThat(sender.isAlive()).isFalse();
                reading.set(false);
                reader.join(10_000);
                readers.close();
                assertThat(a.leases().leases()).as("round %d: leases after close (%d sent)", round, sent.get())
                        .isEmpty();
            }
        }
    }

    @Test
    void payloadsTravelInlineInAPoolSlotOrInAMemfdAtEveryBoundary() {
        try (Segment a = Segment.open(options, "a")) {
            Channel channel = Channel.declare(a, "blobs", small);
            Subscription sub = channel.subscribe("readers", true);
            int inline = channel.inlineCapacity();
            long largest = a.slotPool().largestSlotSize();
            int[] lengths = {0, 1, inline - 1, inline, inline + 1, 255, 256, 257, 4095, 4096, 4097};
            List<Integer> types = new ArrayList<>();
            for (int length : lengths) {
                byte[] payload = bytes(length, length);
                assertThat(channel.send(payload)).isEqualTo(SendOutcome.SENT);
                sub.poll(m -> {
                    assertThat(m.toByteArray()).isEqualTo(payload);
                    assertThat(m.buffer().isReadOnly()).isTrue();
                    types.add(m.frameType());
                }, 1);
            }
            assertThat(largest).isEqualTo(4096);
            assertThat(types).containsExactly(RingDescriptor.INLINE, RingDescriptor.INLINE, RingDescriptor.INLINE,
                    RingDescriptor.INLINE, RingDescriptor.SLOT_REF, RingDescriptor.SLOT_REF, RingDescriptor.SLOT_REF,
                    RingDescriptor.SLOT_REF, RingDescriptor.SLOT_REF, RingDescriptor.SLOT_REF, RingDescriptor.MEMFD_REF);
            assertThat(a.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
        }
    }

    @Test
    void aPayloadSentInTwoPartsArrivesAsOneAtEveryBoundary() {
        try (Segment a = Segment.open(options, "a")) {
            Channel channel = Channel.declare(a, "blobs", small);
            Subscription sub = channel.subscribe("readers", true);
            int inline = channel.inlineCapacity();
            int[] lengths = {0, 1, inline - 1, inline, inline + 1, 4095, 4096, 4097, 3 * 4096};
            for (int length : lengths) {
                byte[] whole = bytes(length, length + 3);
                for (int split : new int[] {0, 1, length / 2, length - 1, length}) {
                    if (split < 0 || split > length) {
                        continue;
                    }
                    MemorySegment head = MemorySegment.ofArray(Arrays.copyOf(whole, split + 5)); // longer than used
                    MemorySegment tail = MemorySegment.ofArray(Arrays.copyOfRange(whole, split, length));
                    assertThat(channel.send(head, split, tail, length - split, 1, TimeUnit.SECONDS))
                            .as("length %d split at %d", length, split).isEqualTo(SendOutcome.SENT);
                    assertThat(sub.poll(m -> assertThat(m.toByteArray()).as("length %d split at %d", length, split)
                            .isEqualTo(whole), 1)).isOne();
                }
            }
            assertThatThrownBy(() -> channel.send(MemorySegment.ofArray(new byte[4]), 4, MemorySegment.ofArray(
                    new byte[4]), 5, 1, TimeUnit.SECONDS)).isInstanceOf(IndexOutOfBoundsException.class);
            assertThatThrownBy(() -> channel.send(MemorySegment.ofArray(new byte[4]), 5, MemorySegment.ofArray(
                    new byte[4]), 4, 1, TimeUnit.SECONDS)).isInstanceOf(IndexOutOfBoundsException.class);
            assertThat(channel.send(bytes(8, 1))).isEqualTo(SendOutcome.SENT); // reclaims the memfds
            assertThat(sub.poll(m -> { }, 1)).isOne();
            assertThat(a.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
            assertThat(a.leases().leases()).isEmpty();
        }
    }

    @Test
    void aFullLeaseTableRefusesAMemfdPayloadBeforeReadingIt() {
        try (Segment a = Segment.open(options, "a")) {
            Channel channel = Channel.declare(a, "blobs", small);
            Subscription sub = channel.subscribe("readers", true);
            List<MemfdBuffer> buffers = new ArrayList<>();
            List<LeaseTable.Lease> leases = new ArrayList<>();
            for (int i = 0; i < a.leases().capacity(); i++) {
                MemfdBuffer buffer = MemfdBuffer.create("filler-" + i, 4096);
                buffers.add(buffer);
                leases.add(a.leases().register(buffer));
            }
            assertThat(leases).doesNotContainNull();
            MemorySegment gone;
            try (Arena arena = Arena.ofConfined()) {
                gone = arena.allocate(3 * 4096);
            }
            // No memfd made and filled: the closed source is never read.
            assertThat(channel.send(gone, 0, gone.byteSize())).isEqualTo(SendOutcome.NO_BUFFER);
            a.leases().release(leases.removeLast());
            byte[] payload = bytes(3 * 4096, 9);
            assertThat(channel.send(payload)).isEqualTo(SendOutcome.SENT);
            assertThat(sub.poll(m -> assertThat(m.toByteArray()).isEqualTo(payload), 1)).isOne();
            leases.forEach(a.leases()::release);
            buffers.forEach(MemfdBuffer::close);
        }
    }

    @Test
    void a64MiBPayloadCrossesThroughAMemfd() {
        try (Segment a = Segment.open(options, "a")) {
            Channel channel = Channel.declare(a, "video", small);
            Subscription sub = channel.subscribe("player", true);
            MemorySegment big = MemorySegment.ofArray(new long[8 << 20]); // 64 MiB
            for (long i = 0; i < big.byteSize(); i += 4096) {
                big.set(ValueLayout.JAVA_LONG, i, i * 7);
            }
            assertThat(channel.send(big, 0, big.byteSize())).isEqualTo(SendOutcome.SENT);
            AtomicInteger checked = new AtomicInteger();
            assertThat(sub.take(m -> {
                assertThat(m.length()).isEqualTo(64L << 20);
                assertThat(m.frameType()).isEqualTo(RingDescriptor.MEMFD_REF);
                assertThat(m.buffer().mismatch(big)).isEqualTo(-1);
                checked.incrementAndGet();
            }, 1, Duration.ofSeconds(10))).isEqualTo(1);
            assertThat(checked).hasValue(1);
            assertThat(channel.send(bytes(8, 1))).isEqualTo(SendOutcome.SENT); // reclaims the memfd
            assertThat(a.leases().leases()).isEmpty();
        }
    }

    /**
     * A memfd reference is followed through {@code /proc/<pid>/fd/<fd>}: when the process at the
     * lease's pid is no longer the one that registered it (its sender died before recovery dropped
     * the lease, and the pid went to another process), the descriptor the open found is not the
     * sender's. The group loses the message (counted) instead of handing out a foreign file.
     */
    @Test
    void aMemfdPayloadWhoseSendersPidNowNamesAnotherProcessIsLostNotRead() throws Exception {
        try (Segment a = Segment.open(options, "a")) {
            Channel channel = Channel.declare(a, "blobs", small);
            Subscription sub = channel.subscribe("readers", true);
            byte[] payload = bytes(3 * 4096, 5);
            assertThat(channel.send(payload)).isEqualTo(SendOutcome.SENT);
            assertThat(a.leases().leases()).hasSize(1);
            LeaseTable.Lease lease = a.leases().leases().getFirst();
            java.lang.reflect.Field field = LeaseTable.class.getDeclaredField("memory");
            field.setAccessible(true);
            MemorySegment table = (MemorySegment) field.get(a.leases());
            // The start time of "the process now at that pid": another one than the lease's.
            table.set(ValueLayout.JAVA_LONG, (long) lease.index() * LeaseDescriptor.LENGTH
                    + LeaseDescriptor.START_TIME_OFFSET, lease.startTime() + 1);

            List<byte[]> read = new ArrayList<>();
            sub.poll(m -> read.add(m.toByteArray()), 1);
            assertThat(read).isEmpty();
            assertThat(channel.stats().groups().getFirst().lost()).isEqualTo(1);

            assertThat(channel.send(payload)).isEqualTo(SendOutcome.SENT); // a lease of the live sender
            sub.poll(m -> read.add(m.toByteArray()), 1);
            assertThat(read).containsExactly(payload);
        }
    }

    @Test
    void sequencesWrapTheirTagsAndTheRingLapsManyTimes() {
        long start = (1L << 48) - 40;
        try (Segment a = Segment.open(options, "a")) {
            Channel channel = Channel.declare(a, "wrap", small.withInitialSequence(start));
            Subscription one = channel.subscribe("one", true);
            Subscription two = channel.subscribe("two", true);
            List<Long> sequences = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                assertThat(channel.send(bytes(300, i))).isEqualTo(SendOutcome.SENT); // pool slots too
                int index = i;
                assertThat(one.poll(m -> {
                    assertThat(m.toByteArray()).isEqualTo(bytes(300, index));
                    sequences.add(m.sequence());
                }, 1)).isEqualTo(1);
                assertThat(two.poll(m -> { }, 1)).isEqualTo(1);
            }
            assertThat(sequences.getFirst()).isEqualTo(start);
            assertThat(sequences.getLast()).isEqualTo(start + 199);
            assertThat(a.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
        }
    }

    @Test
    void threadsOfOneProcessSendConcurrentlyWithoutLossOrDuplicates() throws Exception {
        try (Segment a = Segment.open(options, "a")) {
            Channel channel = Channel.declare(a, "mp", ChannelOptions.defaults().withCapacity(64).withSlotSize(128));
            Subscription sub = channel.subscribe("all", true);
            int producers = 3;
            int each = 20_000;
            List<Thread> threads = new ArrayList<>();
            for (int p = 0; p < producers; p++) {
                int id = p;
                threads.add(Thread.ofPlatform().start(() -> {
                    MemorySegment buffer = MemorySegment.ofArray(new long[64]);
                    for (int i = 0; i < each; i++) {
                        buffer.set(ValueLayout.JAVA_INT, 0, id);
                        buffer.set(ValueLayout.JAVA_INT, 4, i);
                        int length = i % 7 == 0 ? 200 : 8;
                        if (channel.send(buffer, 0, length) != SendOutcome.SENT) {
                            throw new AssertionError("send failed");
                        }
                    }
                }));
            }
            int[] last = {-1, -1, -1};
            ConcurrentHashMap<Long, Boolean> seen = new ConcurrentHashMap<>();
            int total = 0;
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (total < producers * each && System.nanoTime() < deadline) {
                total += sub.poll(m -> {
                    int id = m.buffer().get(ValueLayout.JAVA_INT, m.offset());
                    int i = m.buffer().get(ValueLayout.JAVA_INT, m.offset() + 4);
                    assertThat(i).as(() -> "per-producer order " + channel.stats() + " " + m.sequence() + " "
                            + a.counters().get(dev.shm.core.counters.SegmentCounters.STALE_FREES_REJECTED))
                            .isEqualTo(last[id] + 1);
                    last[id] = i;
                    assertThat(seen.put(((long) id << 32) | i, true)).isNull();
                }, 256);
            }
            for (Thread t : threads) {
                t.join(10_000);
            }
            assertThat(total).isEqualTo(producers * each);
            assertThat(a.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
        }
    }

    @Test
    void aSecondDeclarationWithAnotherLayoutIsRefusedNamingBothValues() {
        try (Segment a = Segment.open(options, "a")) {
            Channel.declare(a, "orders", small);
            assertThatThrownBy(() -> Channel.declare(a, "orders", small.withCapacity(32)))
                    .isInstanceOf(SegmentException.class)
                    .hasMessageContaining("capacity=16").hasMessageContaining("capacity=32");
        }
    }

    @Test
    void theDescriptorIsValidatedWithTheSeedsCases() {
        MemorySegment ring = MemorySegment.ofArray(new long[(int) RingDescriptor.length(8, 128, 2) / 8]);
        RingDescriptor.format(ring, 8, 128, 2, 0, 0, new int[] {-1, -1, -1, -1});
        RingDescriptor.validate(ring, "ok", 8, 128, 2, 0);
        assertThatThrownBy(() -> RingDescriptor.validate(ring, "r", 8, 64, 2, 0))
                .isInstanceOf(ChannelException.class).hasMessageContaining("element size mismatch")
                .extracting(e -> ((ChannelException) e).reason()).isEqualTo(ChannelException.Reason.ELEMENT_SIZE_MISMATCH);
        assertThatThrownBy(() -> RingDescriptor.validate(ring, "r", 16, 128, 2, 0))
                .extracting(e -> ((ChannelException) e).reason()).isEqualTo(ChannelException.Reason.CAPACITY_MISMATCH);
        assertThatThrownBy(() -> RingDescriptor.validate(ring.asSlice(0, 100), "r", 8, 128, 2, 0))
                .extracting(e -> ((ChannelException) e).reason()).isEqualTo(ChannelException.Reason.TRUNCATED_HEADER);
        assertThatThrownBy(() -> RingDescriptor.validate(ring.asSlice(0, ring.byteSize() - 1), "r", 8, 128, 2, 0))
                .extracting(e -> ((ChannelException) e).reason()).isEqualTo(ChannelException.Reason.TRUNCATED_PAYLOAD);
        MemorySegment foreign = MemorySegment.ofArray(new long[512]);
        assertThatThrownBy(() -> RingDescriptor.validate(foreign, "r", 8, 128, 2, 0))
                .extracting(e -> ((ChannelException) e).reason()).isEqualTo(ChannelException.Reason.BAD_MAGIC);
    }

    @Test
    void freeSlotArithmeticMatchesTheSeed() {
        // disruptor-mp: free = highestReadByConsumers - (producer - size)
        assertThat(Ring.freeSlots(8, 7, 0)).isEqualTo(1);
        assertThat(Ring.freeSlots(8, 8, 0)).isZero();
        assertThat(Ring.freeSlots(8, 0, 0)).isEqualTo(8);
        assertThat(Ring.freeSlots(8, 3, -1)).isEqualTo(4);
    }

    @Test
    void anyChannelOfTheSegmentCanBeInspectedWithoutDeclaringIt() {
        try (Segment a = Segment.open(options, "a"); Segment b = Segment.open(options, "b")) {
            Channel orders = Channel.declare(a, "orders", small);
            Subscription billing = orders.subscribe("billing", true);
            for (int i = 0; i < 3; i++) {
                assertThat(orders.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
            }
            billing.poll(m -> { }, 1);
            dev.shm.core.segment.Directory.Entry entry = b.directory().entries().getFirst();
            Channel.Stats seen = Channel.inspect(b, entry);
            assertThat(seen).isEqualTo(orders.stats());
            assertThat(seen.occupancy()).isEqualTo(2);
            assertThat(seen.groups()).singleElement().satisfies(g -> assertThat(g.lag()).isEqualTo(2));
        }
    }

    @Test
    void aSingleProducerFreesThePoolSlotsOfItsPreviousLapWhenNoGroupDid() {
        // No group: nobody but the producer's reuse of a ring slot frees the pool slot its last lap
        // named. Inline and pool payloads alternate irregularly, so that a slot changes kind.
        try (Segment a = Segment.open(options, "a")) {
            Channel orders = Channel.declare(a, "orders", small.withSingleProducer(true));
            for (int i = 0; i < 5 * small.capacity(); i++) {
                int length = i % 3 == 0 || i % 7 == 0 ? 300 : 20;
                assertThat(orders.send(bytes(length, i))).as("send %d", i).isEqualTo(SendOutcome.SENT);
                long held = a.slotPool().stats().stream().mapToLong(c -> c.total() - c.free()).sum();
                assertThat(held).as("pool slots held after send %d", i).isLessThanOrEqualTo(small.capacity());
            }
            long held = a.slotPool().stats().stream().mapToLong(c -> c.total() - c.free()).sum();
            long expected = java.util.stream.IntStream.range(4 * small.capacity(), 5 * small.capacity())
                    .filter(i -> i % 3 == 0 || i % 7 == 0).count();
            assertThat(held).as("exactly the last lap's pool payloads").isEqualTo(expected);
        }
    }

    @ParameterizedTest
    @EnumSource(SubscriptionMode.class)
    void twoGroupsThatFinishAPoolPayloadAtTheSameMomentFreeItsSlotWithoutWaitingForTheNextLap(SubscriptionMode mode)
            throws Exception {
        // Each group's last finisher frees the pool slot, and each decides by reading the other's
        // progress right after storing its own: without a fence between the two, both can read the
        // other's old value and leave the slot to the ring slot's reuse, a lap later. Two members, one
        // per group (exclusive: it moves its group's done; shared: it writes a DONE claim word), take
        // the same messages one at a time in lockstep, round after round; after each round every pool
        // slot must be free, with no later send to free it. (Without the fence, the exclusive case
        // fails within a few dozen rounds here: its done word, which the other member keeps reading,
        // waits in the store buffer for the line. The shared case's DONE goes to a line the member
        // just took with its claim, and has not failed.)
        SegmentOptions pooled = options.withSlotClasses(List.of(new SlotClass(256, 512)));
        int perRound = 500;
        int roundCount = 200;
        try (Segment a = Segment.open(pooled, "a")) {
            Channel orders = Channel.declare(a, "orders", ChannelOptions.defaults().withCapacity(512).withSlotSize(64));
            Subscription[] members = {orders.subscribe("audit", true, mode), orders.subscribe("billing", true, mode)};
            MemorySegment payload = MemorySegment.ofArray(bytes(200, 7));
            // steps[i]: the messages member i took so far. Within a round the two members spin (one
            // core each); between rounds they block while this thread sends the next round.
            AtomicLongArray steps = new AtomicLongArray(2);
            Semaphore roundStart = new Semaphore(0);
            Semaphore roundEnd = new Semaphore(0);
            long deadline = System.nanoTime() + 60_000_000_000L;
            AtomicReference<Throwable> failure = new AtomicReference<>();
            List<Thread> threads = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                int me = i;
                threads.add(Thread.ofPlatform().daemon().start(() -> {
                    try {
                        long k = 0;
                        for (int r = 0; r < roundCount; r++) {
                            if (!roundStart.tryAcquire(10, TimeUnit.SECONDS)) {
                                return;
                            }
                            for (long end = k + perRound; k < end; k++) {
                                // Take message k once the other member took message k - 1 too.
                                while (steps.get(1 - me) < k && System.nanoTime() < deadline) {
                                    Thread.onSpinWait();
                                }
                                while (members[me].poll(m -> { }, 1) == 0 && System.nanoTime() < deadline) {
                                    Thread.onSpinWait();
                                }
                                steps.incrementAndGet(me);
                            }
                            roundEnd.release();
                        }
                    } catch (Throwable e) {
                        failure.set(e);
                        roundEnd.release();
                    }
                }));
            }
            try {
                for (int r = 0; r < roundCount; r++) {
                    for (int i = 0; i < perRound; i++) {
                        assertThat(orders.send(payload, 0, 200)).isEqualTo(SendOutcome.SENT);
                    }
                    roundStart.release(2);
                    assertThat(roundEnd.tryAcquire(2, 20, TimeUnit.SECONDS)).isTrue();
                    assertThat(failure.get()).isNull();
                    long end = (long) (r + 1) * perRound;
                    assertThat(steps.get(0)).as("messages taken by audit").isEqualTo(end);
                    assertThat(steps.get(1)).as("messages taken by billing").isEqualTo(end);
                    int round = r;
                    assertThat(a.slotPool().stats()).as("round %d", round)
                            .allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
                }
            } finally {
                for (Thread t : threads) {
                    t.interrupt(); // a member still waiting for a round (the test failed) stops at once
                    t.join(30_000);
                }
            }
        }
    }

    @Test
    void aProducerTakesOverAPreviousLapMarkedWritingByALivePeerOnceARequiredGroupFinishedIt() throws Exception {
        // A required group that was there when the lap was sent finished it, so it was published: a
        // WRITING mark of it, here naming this very (live) process, is damage. The producer that comes round to the slot waits
        // the liveness timeout, then takes the slot (counted corrupt) instead of spinning for good.
        try (Segment a = Segment.open(options, "a")) {
            Channel orders = Channel.declare(a, "orders", small);
            Subscription billing = orders.subscribe("billing", true);
            Ring ring = ChannelProcessesTest.ring(orders);
            for (int i = 0; i < small.capacity(); i++) {
                assertThat(orders.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
            }
            assertThat(drain(billing)).hasSize(small.capacity());
            long wrap = ring.cursor() - small.capacity();
            ring.memory.set(ValueLayout.JAVA_LONG, ring.slot(wrap), RingDescriptor.word(wrap, a.peerId(),
                    RingDescriptor.WRITING));
            long started = System.nanoTime();
            assertThat(orders.send(MemorySegment.ofArray(bytes(20, 99)), 0, 20, 30, TimeUnit.SECONDS))
                    .isEqualTo(SendOutcome.SENT);
            assertThat(Duration.ofNanos(System.nanoTime() - started)).as("waited for the liveness timeout first")
                    .isGreaterThanOrEqualTo(options.livenessTimeout());
            assertThat(orders.stats().corrupt()).isEqualTo(1);
            assertThat(drain(billing)).singleElement().satisfies(m -> assertThat(m).isEqualTo(bytes(20, 99)));
        }
    }

    @Test
    void aProducerWaitsForAWriterOfAMessageThatOnlyGroupsJoinedAfterItHaveGonePast() throws Exception {
        // A group that joins starts at the cursor, which may be past a sequence another producer has
        // claimed and still writes: that group's done says nothing of it, and the producer that comes
        // round to its slot waits for the writer (past the liveness timeout), not takes the slot.
        try (Segment a = Segment.open(options, "a")) {
            Channel orders = Channel.declare(a, "orders", small);
            Ring ring = ChannelProcessesTest.ring(orders);
            for (int i = 0; i < small.capacity(); i++) {
                assertThat(orders.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
            }
            long wrap = ring.cursor() - small.capacity();
            long published = ring.header(ring.slot(wrap));
            // A producer of this process still writing the oldest message, as far as the slot says.
            ring.memory.set(ValueLayout.JAVA_LONG, ring.slot(wrap), RingDescriptor.word(wrap, a.peerId(),
                    RingDescriptor.WRITING));
            Subscription late = orders.subscribe("late", true);
            AtomicReference<SendOutcome> outcome = new AtomicReference<>();
            Thread sender = Thread.ofPlatform().start(() ->
                    outcome.set(orders.send(MemorySegment.ofArray(bytes(20, 99)), 0, 20, 30, TimeUnit.SECONDS)));
            sender.join(options.livenessTimeout().plusMillis(500));
            assertThat(sender.isAlive()).as("still waiting for the writer after the liveness timeout").isTrue();
            assertThat(orders.stats().corrupt()).isZero();
            Ring.LONG.setVolatile(ring.memory, ring.slot(wrap), published); // the writer publishes
            sender.join(10_000);
            assertThat(outcome.get()).isEqualTo(SendOutcome.SENT);
            assertThat(drain(late)).singleElement().satisfies(m -> assertThat(m).isEqualTo(bytes(20, 99)));
            assertThat(orders.stats().corrupt()).isZero();
        }
    }

    @Test
    void aProducerTakesOverTheReleaseOfAPoolPayloadWhoseFreerIsNoAttachedPeer() throws Exception {
        // Recovery finishes a dead freer's release before the peer's entry empties, so a word naming
        // a peer that is not attached was damaged: the producer that reuses the ring slot frees the
        // pool slot itself (counted corrupt) instead of waiting for good.
        lapOverAReleaseNaming(a -> options.maxPeers() - 1);
    }

    @Test
    void aProducerTakesOverAReleaseThatNamesALivePeerForLongerThanTheLivenessTimeout() throws Exception {
        // A live peer's release is a few stores: a word that names one (here this very process) for
        // the liveness timeout was damaged. The producer that reuses the ring slot waits that long,
        // then frees the pool slot itself (counted corrupt) instead of spinning for good.
        assertThat(lapOverAReleaseNaming(Segment::peerId)).as("waited for the liveness timeout first")
                .isGreaterThanOrEqualTo(options.livenessTimeout());
    }

    /**
     * Sends a pool payload, has its release word say that {@code freer} is freeing it, lets the
     * group read it, then sends a lap of messages over its ring slot: the producer that reuses the
     * slot frees the pool slot, counted corrupt. Returns how long that lap took.
     */
    private Duration lapOverAReleaseNaming(java.util.function.ToIntFunction<Segment> freer)
            throws ReflectiveOperationException {
        try (Segment a = Segment.open(options, "a")) {
            Channel orders = Channel.declare(a, "orders", small);
            Subscription billing = orders.subscribe("billing", true);
            Ring ring = ChannelProcessesTest.ring(orders);
            assertThat(orders.send(bytes(300, 1))).isEqualTo(SendOutcome.SENT);
            long sequence = ring.cursor() - 1;
            long slot = ring.slot(sequence);
            long ref = ring.memory.get(ValueLayout.JAVA_LONG, slot + RingDescriptor.SLOT_BODY_OFFSET);
            ring.memory.set(ValueLayout.JAVA_LONG, ring.releaseWord(sequence),
                    RingDescriptor.word(sequence, freer.applyAsInt(a), RingDescriptor.RELEASING));
            assertThat(drain(billing)).hasSize(1);
            assertThat(a.slotPool().isCurrent(ref)).as("the word says another peer frees it").isTrue();
            long started = System.nanoTime();
            for (int i = 0; i < small.capacity(); i++) {
                assertThat(orders.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
                assertThat(drain(billing)).hasSize(1);
            }
            Duration took = Duration.ofNanos(System.nanoTime() - started);
            assertThat(a.slotPool().isCurrent(ref)).as("freed by the producer that reused the ring slot").isFalse();
            assertThat(a.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
            assertThat(orders.stats().corrupt()).isEqualTo(1);
            return took;
        }
    }

    /**
     * A release that stops between winning the word and reading the reference beside it (here: a hook
     * there) may be taken over past the liveness timeout, finished by the taker, and the entry taken
     * by a later lap's pool send before it goes on: the reference it then reads is that lap's. It
     * checks that the word is still its own, and frees nothing.
     */
    @Test
    void aReleaseTakenOverBeforeItReadsTheReferenceFreesNothing() throws Exception {
        try (Segment segment = Segment.open(options, "a");
             Channel channel = Channel.declare(segment, "orders", small)) {
            Ring ring = ChannelProcessesTest.ring(channel);
            var pool = segment.slotPool();
            assertThat(channel.send(bytes(300, 1))).isEqualTo(SendOutcome.SENT); // sequence 0; no group frees it
            long releaseAt = ring.releaseWord(0);
            long first = ring.memory.get(ValueLayout.JAVA_LONG, releaseAt + RingDescriptor.RELEASE_REF_OFFSET);
            long later = pool.allocate(300); // the later lap's payload, handed to the ring
            assertThat(pool.transfer(later, dev.shm.core.pool.SlotPoolDescriptor.NO_PEER)).isTrue();
            ring.releaseWonHook = () -> {
                ring.releaseWonHook = null;
                assertThat(pool.release(first)).as("the taker frees the first lap's payload").isZero();
                ring.memory.set(ValueLayout.JAVA_LONG, releaseAt, RingDescriptor.word(0, RingDescriptor.NO_PEER,
                        RingDescriptor.RELEASED));
                ring.memory.set(ValueLayout.JAVA_LONG, releaseAt + RingDescriptor.RELEASE_REF_OFFSET, later);
                ring.memory.set(ValueLayout.JAVA_LONG, releaseAt, RingDescriptor.word(small.capacity(),
                        RingDescriptor.NO_PEER, RingDescriptor.PENDING));
            };
            assertThat(ring.release(ring.slot(0), RingDescriptor.word(0, RingDescriptor.NO_PEER, RingDescriptor.PENDING),
                    false)).as("won").isTrue();
            assertThat(pool.isCurrent(later)).as("the later lap's payload stays").isTrue();
            assertThat(ring.memory.get(ValueLayout.JAVA_LONG, releaseAt)).as("its word too")
                    .isEqualTo(RingDescriptor.word(small.capacity(), RingDescriptor.NO_PEER, RingDescriptor.PENDING));
            assertThat(channel.stats().corrupt()).isZero();
            assertThat(pool.release(later)).isZero();
        }
    }

    /**
     * A recovery (of any peer) frees the pool payloads of the last lap that every required group is
     * done with. With no required group that must read it (here an optional group alone), a pool send
     * its producer has not published yet is such a message by the groups, and its release word is
     * already pending: recovery must leave it to the groups that read it, not free a payload its
     * producer still holds (counted corrupt, and leaked) or is about to publish.
     */
    @Test
    void aRecoveryWhileAPoolSendIsUnpublishedFreesNothingOfIt() throws Exception {
        try (Segment segment = Segment.open(options, "a");
             Channel channel = Channel.declare(segment, "orders", small);
             Subscription audit = channel.subscribe("audit", false)) {
            Ring ring = ChannelProcessesTest.ring(channel);
            boolean[] ran = new boolean[1];
            channel.beforePoolPublish = () -> {
                ran[0] = true;
                ring.recover(3); // peer 3: nobody attached, nothing of it in the ring
            };
            assertThat(channel.send(bytes(300, 1))).isEqualTo(SendOutcome.SENT);
            assertThat(ran[0]).as("the hook ran").isTrue();
            channel.beforePoolPublish = null;
            assertThat(drain(audit)).containsExactly(bytes(300, 1));
            assertThat(channel.stats().corrupt()).isZero();
            assertThat(channel.stats().groups().getFirst().lost()).isZero();
            long inUse = segment.slotPool().stats().stream().mapToLong(c -> c.total() - c.free()).sum();
            assertThat(inUse).as("freed once the group read it").isZero();
        }
    }

    @Test
    void aReleaseThatComesLateNeverWritesIntoTheNextLapsInlineBytes() throws Exception {
        // A group frees a pool payload after it moved its done on past the message: a producer may
        // have reused the ring slot by then (freeing the payload itself) and written an inline
        // message there. Until layout version 8 the release word sat in the SLOT_REF's body, where
        // those bytes could read as the word pending again (a 17-byte payload whose byte 16 is 1 did,
        // in the channel soak): the late release won it, and its compare-and-set wrote into the
        // published message (and counted its first bytes, taken for a reference, as corrupt).
        try (Segment a = Segment.open(options, "a")) {
            Channel orders = Channel.declare(a, "orders", small);
            Subscription billing = orders.subscribe("billing", true);
            Ring ring = ChannelProcessesTest.ring(orders);
            assertThat(orders.send(bytes(300, 1))).isEqualTo(SendOutcome.SENT);
            long sequence = ring.cursor() - 1;
            assertThat(drain(billing)).hasSize(1);
            for (int i = 0; i < small.capacity() - 1; i++) {
                assertThat(orders.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
                assertThat(drain(billing)).hasSize(1);
            }
            byte[] lookalike = bytes(17, 5);
            lookalike[16] = (byte) RingDescriptor.PENDING;
            assertThat(orders.send(lookalike)).isEqualTo(SendOutcome.SENT);
            assertThat(ring.slot(ring.cursor() - 1)).isEqualTo(ring.slot(sequence));

            ring.releaseIfDone(sequence); // the late one
            assertThat(drain(billing)).containsExactly(lookalike);
            assertThat(orders.stats().corrupt()).isZero();
            assertThat(a.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
        }
    }

    @Test
    void anExclusiveMemberWalkingDoneWordsNeverMovesDoneBackBehindARecoveryThatMovedItOn() throws Exception {
        // Below the cursor it saw at its join, an exclusive member moves the group's done over the
        // DONE words that members before it left; recovery of any peer moves done over them too
        // (advanceDone), in one step. A store of the member's own next sequence after that step took
        // done back, behind what producers may already have read (and reused). Short runs, many
        // rounds: the two meet when both start on one run.
        ChannelOptions big = ChannelOptions.defaults().withCapacity(1024).withSlotSize(64);
        try (Segment a = Segment.open(options, "a")) {
            Channel orders = Channel.declare(a, "orders", big);
            Ring ring = ChannelProcessesTest.ring(orders);
            int g = 0;
            AtomicBoolean stop = new AtomicBoolean();
            AtomicLong round = new AtomicLong(-1); // the round the recovery thread works on; -1 between rounds
            AtomicLong backwards = new AtomicLong();
            Thread recovery = Thread.ofPlatform().start(() -> {
                long current = -1;
                long highest = 0;
                while (!stop.get()) {
                    long r = round.get();
                    if (r < 0) {
                        Thread.onSpinWait();
                        continue;
                    }
                    long seen = ring.done(g);
                    if (r != current) {
                        current = r;
                        highest = seen;
                    } else if (seen < highest) {
                        backwards.incrementAndGet();
                    }
                    highest = Math.max(highest, seen);
                    ring.advanceDone(g);
                }
            });
            try {
                for (int r = 0; r < 3000; r++) {
                    Subscription before = orders.subscribe("billing", true);
                    int sent = 8;
                    for (int i = 0; i < sent; i++) {
                        assertThat(orders.send(bytes(16, i))).isEqualTo(SendOutcome.SENT);
                    }
                    assertThat(drain(before)).hasSize(sent); // every claim word of the run DONE
                    before.close();
                    long end = ring.done(g);
                    // Done held back over them, as members finishing out of order leave it.
                    Ring.LONG.setVolatile(ring.memory, ring.group(g) + RingDescriptor.GROUP_DONE_OFFSET, end - sent);
                    Subscription exclusive = orders.subscribe("billing", true, SubscriptionMode.EXCLUSIVE);
                    round.set(r);
                    assertThat(drain(exclusive)).as("nothing but DONE words").isEmpty();
                    round.set(-1);
                    assertThat(ring.done(g)).isEqualTo(end);
                    exclusive.close();
                }
            } finally {
                stop.set(true);
                recovery.join(10_000);
            }
            assertThat(backwards.get()).as("done seen moving back").isZero();
        }
    }

    @Test
    void aProducerThatDiesBetweenItsClaimAndTheReuseOfItsSlotHasThePreviousLapsPoolPayloadFreed() throws Exception {
        // No group: nobody frees a pool payload but the producer that reuses its ring slot. That
        // producer claims the sequence, marks the slot and dies before it frees the previous lap's
        // payload; the skip its recovery writes must free it, since nothing would once the slot's
        // type is reset.
        try (Segment a = Segment.open(options, "a")) {
            Channel orders = Channel.declare(a, "orders", small);
            Ring ring = ChannelProcessesTest.ring(orders);
            long first = ring.cursor();
            assertThat(orders.send(bytes(300, 0))).isEqualTo(SendOutcome.SENT);
            long ref = ring.memory.get(ValueLayout.JAVA_LONG, ring.slot(first) + RingDescriptor.SLOT_BODY_OFFSET);
            for (int i = 1; i < small.capacity(); i++) {
                assertThat(orders.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
            }
            assertThat(a.slotPool().isCurrent(ref)).as("no group, nobody frees it yet").isTrue();

            int dead = options.maxPeers() - 1;
            long claimed = ring.cursor();
            long slot = ring.slot(claimed);
            assertThat(Ring.LONG.compareAndSet(ring.memory, (long) RingDescriptor.CURSOR_OFFSET, claimed, claimed + 1))
                    .isTrue();
            assertThat(Ring.LONG.compareAndSet(ring.memory, slot, ring.header(slot),
                    RingDescriptor.word(claimed, dead, RingDescriptor.WRITING))).isTrue();
            ring.recover(dead);
            assertThat(orders.stats().skips()).isEqualTo(1);
            assertThat(a.slotPool().isCurrent(ref)).as("freed as the hole was filled").isFalse();
            assertThat(a.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
        }
    }

    private static List<String> counterLabels(Segment segment) {
        List<String> labels = new ArrayList<>();
        segment.counters().forEach((id, type, owner, label, value) -> labels.add(label));
        return labels;
    }

    @Test
    void countersLeftByADeclarerOrAJoinerThatDiedBeforeRecordingThemAreFreedWhenTheirEntryIsTaken() throws Exception {
        // A process killed after it allocated a structure's counters and before the structure
        // recorded them (the directory entry still initializing, the group entry still empty) leaves
        // records that nothing names. The next declaration into that directory entry, and the next
        // join into that group entry, free them before they allocate their own.
        try (Segment a = Segment.open(options, "a")) {
            Channel orders = Channel.declare(a, "orders", small);
            int ordersEntry = a.directory().lookup("orders").orElseThrow();
            int nextEntry = ordersEntry + 1;
            for (String label : new String[] {" full-waits", " drops", " skips", " corrupt"}) {
                a.counters().allocate(Ring.TYPE_CHANNEL, nextEntry, "gone" + label);
            }
            a.counters().allocate(Ring.TYPE_GROUP, Ring.groupCounterOwner(ordersEntry, 0), "orders/gone redelivered");
            a.counters().allocate(Ring.TYPE_GROUP, Ring.groupCounterOwner(ordersEntry, 0), "orders/gone lost");
            int before = counterLabels(a).size();

            Subscription billing = orders.subscribe("billing", true);
            Channel audit = Channel.declare(a, "audit", small);
            assertThat(a.directory().lookup("audit")).hasValue(nextEntry);

            List<String> labels = counterLabels(a);
            assertThat(labels).noneMatch(l -> l.contains("gone"));
            assertThat(labels).contains("orders/billing redelivered", "orders/billing lost", "audit full-waits",
                    "audit corrupt");
            assertThat(labels).as("6 records freed, 6 allocated").hasSize(before);
            // The group's counters are the ones it names: a lost message counts in its record.
            Ring ring = ChannelProcessesTest.ring(orders);
            ring.groupCount(0, RingDescriptor.GROUP_LOST_OFFSET);
            assertThat(ring.groupCounter(0, RingDescriptor.GROUP_LOST_OFFSET)).isEqualTo(1);
            billing.close();
            audit.close();
        }
    }

    /**
     * A declarer that dies (or fails) after it appended its ring, while it formats it, leaves the
     * extent named in its directory entry: the next declaration into that entry, of a ring of the
     * same length, takes it (wiped of the half-done format) instead of appending another, so the
     * segment does not lose that space; one of another length appends its own.
     */
    @Test
    void aRingLeftByADeclarerThatDiedWhileItFormattedItIsTakenByTheNextDeclaration() throws Exception {
        try (Segment a = Segment.open(options, "a")) {
            long length = RingDescriptor.length(small.capacity(), small.slotSize(), small.maxGroups());
            long[] first = failedDeclaration(a, "gone", length);
            long size = a.currentSize();
            Channel audit = Channel.declare(a, "audit", small.withCapacity(32));
            int auditEntry = a.directory().lookup("audit").orElseThrow();
            assertThat(auditEntry).as("in the failed declaration's entry").isEqualTo((int) first[0]);
            assertThat(a.currentSize()).as("a ring of another length appends its own").isGreaterThan(size);
            assertThat(a.directory().entry(auditEntry).structureOffset()).isNotEqualTo(first[1]);
            audit.close();

            long[] left = failedDeclaration(a, "gone", length);
            size = a.currentSize();
            Channel orders = Channel.declare(a, "orders", small);
            int entry = a.directory().lookup("orders").orElseThrow();
            assertThat(entry).isEqualTo((int) left[0]);
            assertThat(a.directory().entry(entry).structureOffset()).isEqualTo(left[1]);
            assertThat(a.currentSize()).as("no extent appended").isEqualTo(size);
            Subscription billing = orders.subscribe("billing", true);
            for (int i = 0; i < 3 * small.capacity(); i++) {
                assertThat(orders.send(bytes(40, i))).isEqualTo(SendOutcome.SENT);
                assertThat(drain(billing)).containsExactly(bytes(40, i));
            }
            assertThat(orders.stats().corrupt()).isZero();
            billing.close();
            orders.close();

            // A record without its declaration's epoch (a damaged word) is not taken for one.
            long[] damaged = failedDeclaration(a, "gone", length);
            java.lang.reflect.Field field = Directory.class.getDeclaredField("memory");
            field.setAccessible(true);
            ((MemorySegment) field.get(a.directory())).set(ValueLayout.JAVA_LONG,
                    damaged[0] * DirectoryDescriptor.LENGTH + DirectoryDescriptor.STRUCTURE_LENGTH_OFFSET, length);
            size = a.currentSize();
            Channel.declare(a, "billing", small).close();
            assertThat(a.directory().entry(a.directory().lookup("billing").orElseThrow()).structureOffset())
                    .isNotEqualTo(damaged[1]);
            assertThat(a.currentSize()).isGreaterThan(size);
        }
    }

    /**
     * A declaration that appends and names a ring, writes part of it and fails: as a declarer killed
     * there. Returns its entry and the ring's offset.
     */
    private static long[] failedDeclaration(Segment a, String name, long length) {
        long[] left = new long[2];
        assertThatThrownBy(() -> a.directory().declare(name, DirectoryDescriptor.CHANNEL, new String[] {"capacity"},
                new long[] {1}, entry -> a.extents().withExtentLock(() -> {
                    left[0] = entry;
                    left[1] = a.extents().append(length);
                    a.directory().recordStructure(entry, left[1], length);
                    a.extents().map(left[1], length).fill((byte) 0x5A); // a format, part-way
                    throw new IllegalStateException("the declarer dies here");
                }))).hasMessageContaining("dies here");
        return left;
    }

    @Test
    void aPoolPayloadFinishedWhileAnotherGroupJoinsIsFreedWhenTheJoinEnds() throws Exception {
        // The finisher leaves the release to later while a group is joining (it cannot tell yet
        // whether the group needs the message); the join's end decides it.
        try (Segment a = Segment.open(options, "a")) {
            Channel orders = Channel.declare(a, "orders", small);
            Subscription billing = orders.subscribe("billing", true);
            Ring ring = ChannelProcessesTest.ring(orders);
            long first = ring.cursor();
            assertThat(orders.send(bytes(300, 0))).isEqualTo(SendOutcome.SENT);
            long ref = ring.memory.get(ValueLayout.JAVA_LONG, ring.slot(first) + RingDescriptor.SLOT_BODY_OFFSET);
            // Group entry 1 half-way through a join, as a subscribing process leaves it when it dies there.
            Ring.LONG.setVolatile(ring.memory, ring.group(1) + RingDescriptor.GROUP_STATE_OFFSET,
                    Ring.groupWord(1, a.peerId(), RingDescriptor.GROUP_JOINING));
            assertThat(drain(billing)).hasSize(1);
            assertThat(a.slotPool().isCurrent(ref)).as("left for later while a group joins").isTrue();
            orders.subscribe("audit", true).close(); // a join finishes the half-done one first
            assertThat(a.slotPool().isCurrent(ref)).as("freed when the join ended").isFalse();
        }
    }

    /**
     * A single producer publishes before it moves the cursor. A group that joins in between, after
     * the other groups finished that message and freed its pool slot (they read the groups before it
     * joined), starts past it instead of at the cursor, where it would find the payload gone and
     * count it lost.
     */
    @Test
    void aGroupThatJoinsBeforeASingleProducerMovesItsCursorStartsPastWhatItPublished() throws Exception {
        try (Segment a = Segment.open(options, "a")) {
            Channel orders = Channel.declare(a, "orders", small.withSingleProducer(true));
            Subscription billing = orders.subscribe("billing", true);
            Ring ring = ChannelProcessesTest.ring(orders);
            long sequence = ring.cursor();
            assertThat(orders.send(bytes(300, 1))).isEqualTo(SendOutcome.SENT);
            long ref = ring.memory.get(ValueLayout.JAVA_LONG, ring.slot(sequence) + RingDescriptor.SLOT_BODY_OFFSET);
            assertThat(drain(billing)).singleElement().isEqualTo(bytes(300, 1));
            assertThat(a.slotPool().isCurrent(ref)).as("freed by the only group").isFalse();
            // The producer's state between its publication and its cursor store.
            Ring.LONG.setVolatile(ring.memory, (long) RingDescriptor.CURSOR_OFFSET, sequence);

            Subscription audit = orders.subscribe("audit", true);
            Ring.LONG.setVolatile(ring.memory, (long) RingDescriptor.CURSOR_OFFSET, sequence + 1); // the producer's store
            assertThat(drain(audit)).as("published before the group joined").isEmpty();
            assertThat(orders.send(bytes(20, 2))).isEqualTo(SendOutcome.SENT);
            assertThat(drain(audit)).singleElement().isEqualTo(bytes(20, 2));
            assertThat(drain(billing)).singleElement().isEqualTo(bytes(20, 2));
            Channel.GroupStats stats = orders.stats().groups().stream().filter(group -> group.name().equals("audit"))
                    .findFirst().orElseThrow();
            assertThat(stats.start()).isEqualTo(sequence + 1);
            assertThat(stats.lost()).isZero();
            assertThat(orders.stats().corrupt()).isZero();
        }
    }

    @Test
    void aSendWhoseSourceFailsAfterTheClaimLeavesASkipNotAStuckSlot() {
        for (boolean singleProducer : new boolean[] {false, true}) {
            try (Segment a = Segment.open(options, "a")) {
                Channel orders = Channel.declare(a, singleProducer ? "sp" : "mp", small.withSingleProducer(singleProducer));
                Subscription billing = orders.subscribe("billing", true);
                // A lap and one more first: a single producer then writes its own slots on its
                // steady-state path (the room it read when the lap ended covers the next lap).
                for (int i = 0; i <= small.capacity(); i++) {
                    assertThat(orders.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
                    assertThat(drain(billing)).hasSize(1);
                }
                Arena arena = Arena.ofConfined();
                MemorySegment closed = arena.allocate(20);
                arena.close();
                assertThatThrownBy(() -> orders.send(closed, 0, 20)).isInstanceOf(IllegalStateException.class);
                assertThat(orders.send(bytes(20, 1))).isEqualTo(SendOutcome.SENT);
                List<byte[]> got = new ArrayList<>();
                billing.poll(m -> got.add(m.buffer().asSlice(m.offset(), m.length()).toArray(ValueLayout.JAVA_BYTE)), 10);
                assertThat(got).as("the message after the failed send, at once").containsExactly(bytes(20, 1));
                assertThat(orders.stats().skips()).isEqualTo(1);
                assertThat(orders.stats().groups().getFirst().lag()).isZero();
            }
        }
    }
}
