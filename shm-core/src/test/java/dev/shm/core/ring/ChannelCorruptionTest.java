package dev.shm.core.ring;

import static dev.shm.core.ring.RingDescriptor.*;
import static org.assertj.core.api.Assertions.assertThat;

import dev.shm.core.counters.SegmentCounters;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentOptions;
import dev.shm.core.segment.TestSegments;
import dev.shm.core.testing.ShmDirectory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Damaged slot headers, claim words and payload references, written into the shared mapping as a
 * stray or hostile process would: each is rejected and counted; the group and the producers move
 * on; nothing crashes or hangs.
 */
class ChannelCorruptionTest {

    private static final Duration LIVENESS = Duration.ofMillis(200);
    private static final Duration BOUND = Duration.ofSeconds(10);

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private SegmentOptions options;
    private final ChannelOptions small = ChannelOptions.defaults().withCapacity(16).withSlotSize(128)
            .withSendTimeout(Duration.ofSeconds(5));

    @BeforeEach
    void options() {
        options = TestSegments.options(shm.directory("rings"), "bus").withLiveness(Duration.ofMillis(20), LIVENESS);
    }

    private static byte[] bytes(int length, int seed) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) {
            b[i] = (byte) (seed * 31 + i);
        }
        return b;
    }

    /** Receives within a bounded time until {@code count} messages arrived. */
    private static List<byte[]> receive(Subscription subscription, int count) {
        List<byte[]> received = new ArrayList<>();
        long deadline = System.nanoTime() + BOUND.toNanos();
        while (received.size() < count && System.nanoTime() < deadline) {
            subscription.take(m -> received.add(m.toByteArray()), count - received.size(), Duration.ofMillis(50));
        }
        return received;
    }

    /** Sends a whole lap of messages through {@code channel}, and has {@code subscription} read them all. */
    private void sendAndReadALap(Channel channel, Subscription subscription) {
        for (int i = 0; i < small.capacity(); i++) {
            assertThat(channel.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
        }
        assertThat(receive(subscription, small.capacity())).hasSize(small.capacity());
    }

    /**
     * Sends a damaged message (length {@code length}, sequence 0) between two good ones, damages it
     * with {@code damage}, and checks that the group receives exactly the good ones, that the
     * damage is counted, and that the channel still works and holds no pool slot at the end.
     */
    private void damaged(int length, BiConsumer<Ring, Long> damage, boolean stallsUntilLiveness) throws Exception {
        try (Segment segment = Segment.open(options, "a");
             Channel channel = Channel.declare(segment, "orders", small);
             Subscription subscription = channel.subscribe("billing", true)) {
            Ring ring = ChannelProcessesTest.ring(channel);
            assertThat(channel.send(bytes(length, 1))).isEqualTo(SendOutcome.SENT);
            assertThat(channel.send(bytes(20, 2))).isEqualTo(SendOutcome.SENT);
            damage.accept(ring, ring.slot(0));

            if (stallsUntilLiveness) {
                assertThat(subscription.poll(m -> { }, 10)).as("a damaged header holds the group").isZero();
            }
            List<byte[]> received = receive(subscription, 1);
            assertThat(received).as("only the good message").hasSize(1);
            assertThat(received.getFirst()).isEqualTo(bytes(20, 2));
            Channel.Stats stats = channel.stats();
            // Counted where it was met: by the group, and for a slot reference also by its release.
            long corrupt = stats.corrupt();
            assertThat(corrupt).as("counted").isBetween(1L, 2L);
            assertThat(stats.groups().getFirst().lag()).isZero();
            assertThat(segment.counters().get(SegmentCounters.CORRUPT_FRAMES_REJECTED)).isEqualTo(corrupt);

            for (int i = 0; i < 3 * small.capacity(); i++) { // around the ring, over the damaged slot
                assertThat(channel.send(bytes(20 + i % 40, i))).isEqualTo(SendOutcome.SENT);
                List<byte[]> next = receive(subscription, 1);
                assertThat(next).hasSize(1);
                assertThat(next.getFirst()).isEqualTo(bytes(20 + i % 40, i));
            }
            assertThat(channel.stats().corrupt()).as("nothing more once the damage is passed").isEqualTo(corrupt);
            long inUse = segment.slotPool().stats().stream().mapToLong(c -> c.total() - c.free()).sum();
            assertThat(inUse).as("pool slots still in use").isZero();
        }
    }

    private static void header(Ring ring, long slot, long word) {
        Ring.LONG.setVolatile(ring.memory, slot, word);
    }

    @Test
    void aHeaderOfNoLapIsReplacedByASkipAfterTheLivenessTimeout() throws Exception {
        damaged(20, (ring, slot) -> header(ring, slot, 0x1234_5678_9ABC_DEF0L), true);
    }

    @Test
    void aHeaderWithAnUnknownStateIsReplacedByASkipAfterTheLivenessTimeout() throws Exception {
        damaged(20, (ring, slot) -> header(ring, slot, word(0, 0, 0x5A)), true);
    }

    @Test
    void aSlotWrittenByAPeerThatIsNotAttachedIsReplacedByASkipAfterTheLivenessTimeout() throws Exception {
        damaged(20, (ring, slot) -> header(ring, slot, word(0, 7, WRITING)), true); // peer 7: an empty entry
    }

    @Test
    void aWriterIdBeyondThePeerTableIsDamageToo() throws Exception {
        damaged(20, (ring, slot) -> header(ring, slot, word(0, 200, WRITING)), true);
    }

    @Test
    void anInlineLengthOutOfRangeIsRejected() throws Exception {
        damaged(20, (ring, slot) -> ring.memory.set(ValueLayout.JAVA_INT, slot + SLOT_LENGTH_OFFSET, -1), false);
        damaged(20, (ring, slot) -> ring.memory.set(ValueLayout.JAVA_INT, slot + SLOT_LENGTH_OFFSET,
                ring.inlineCapacity() + 1), false);
    }

    @Test
    void anExclusiveMemberPastItsFirstMessagesRejectsADamagedInlineFrame() throws Exception {
        // Its steady state (a position of its own, past the sequences an earlier member may have
        // claimed) takes inline frames on a path of its own: damage there is rejected the same way.
        List<BiConsumer<Ring, Long>> damages = List.of(
                (ring, slot) -> ring.memory.set(ValueLayout.JAVA_INT, slot + SLOT_LENGTH_OFFSET, -1),
                (ring, slot) -> ring.memory.set(ValueLayout.JAVA_INT, slot + SLOT_LENGTH_OFFSET, ring.inlineCapacity() + 1),
                (ring, slot) -> ring.memory.set(ValueLayout.JAVA_INT, slot + SLOT_TYPE_OFFSET, 77));
        for (boolean singleProducer : new boolean[] {false, true}) {
            for (BiConsumer<Ring, Long> damage : damages) {
                try (Segment segment = Segment.open(options, "a");
                     Channel channel = Channel.declare(segment, "orders", small.withSingleProducer(singleProducer));
                     Subscription subscription = channel.subscribe("billing", true, SubscriptionMode.EXCLUSIVE)) {
                    Ring ring = ChannelProcessesTest.ring(channel);
                    for (int i = 0; i < 3; i++) {
                        assertThat(channel.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
                        assertThat(receive(subscription, 1)).containsExactly(bytes(20, i));
                    }
                    long damagedAt = channel.stats().cursor();
                    assertThat(channel.send(bytes(20, 99))).isEqualTo(SendOutcome.SENT);
                    assertThat(channel.send(bytes(20, 3))).isEqualTo(SendOutcome.SENT);
                    damage.accept(ring, ring.slot(damagedAt));
                    assertThat(receive(subscription, 1)).as("only the good message").containsExactly(bytes(20, 3));
                    assertThat(channel.stats().corrupt()).isEqualTo(1);
                    for (int i = 4; i < 2 * small.capacity(); i++) { // around the ring, over the damaged slot
                        assertThat(channel.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
                        assertThat(receive(subscription, 1)).containsExactly(bytes(20, i));
                    }
                    assertThat(channel.stats().corrupt()).isEqualTo(1);
                    assertThat(channel.stats().groups().getFirst().lag()).isZero();
                }
            }
        }
    }

    /**
     * A header put back to the previous lap, or marked as written by a peer that is not attached, at a
     * sequence the producer has published, on every receiving path: the group waits the liveness
     * timeout, then the slot becomes a skip. From several producers the old lap below the cursor is
     * a producer that died between its claim and its mark (a skip); a single producer marks its slot
     * before it moves the cursor, so there it is damage (counted as corrupt), as is the absent writer.
     */
    @Test
    void aHeaderDamagedToLookUnwrittenOrBeingWrittenIsReplacedAfterTheLivenessTimeoutOnEveryPath() throws Exception {
        for (boolean single : new boolean[] {false, true}) {
            for (SubscriptionMode mode : SubscriptionMode.values()) {
                for (boolean rewound : new boolean[] {false, true}) {
                    String what = (single ? "single producer, " : "several producers, ") + mode + ", "
                            + (rewound ? "the previous lap" : "an absent writer");
                    try (Segment segment = Segment.open(options, "a");
                         Channel channel = Channel.declare(segment, "orders", small.withSingleProducer(single));
                         Subscription subscription = channel.subscribe("billing", true, mode)) {
                        Ring ring = ChannelProcessesTest.ring(channel);
                        for (int i = 0; i < 3; i++) { // past an exclusive member's first messages
                            assertThat(channel.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
                            assertThat(receive(subscription, 1)).containsExactly(bytes(20, i));
                        }
                        long damagedAt = channel.stats().cursor();
                        long slot = ring.slot(damagedAt);
                        long previousLap = ring.header(slot);
                        assertThat(channel.send(bytes(20, 99))).isEqualTo(SendOutcome.SENT);
                        assertThat(channel.send(bytes(20, 3))).isEqualTo(SendOutcome.SENT);
                        header(ring, slot, rewound ? previousLap : word(damagedAt, 7, WRITING));

                        assertThat(subscription.poll(m -> { }, 10)).as(what + ": holds the group").isZero();
                        assertThat(receive(subscription, 1)).as(what).containsExactly(bytes(20, 3));
                        boolean skip = rewound && !single;
                        assertThat(channel.stats().skips()).as(what).isEqualTo(skip ? 1 : 0);
                        assertThat(channel.stats().corrupt()).as(what).isEqualTo(skip ? 0 : 1);
                        for (int i = 4; i < 2 * small.capacity(); i++) { // around the ring, over the damaged slot
                            assertThat(channel.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
                            assertThat(receive(subscription, 1)).containsExactly(bytes(20, i));
                        }
                        assertThat(channel.stats().groups().getFirst().lag()).isZero();
                    }
                }
            }
        }
    }

    @Test
    void anUnknownPayloadTypeIsRejected() throws Exception {
        damaged(20, (ring, slot) -> ring.memory.set(ValueLayout.JAVA_INT, slot + SLOT_TYPE_OFFSET, 77), false);
    }

    @Test
    void aClaimWordOfALaterLapOrInNoStateIsRejected() throws Exception {
        damaged(20, (ring, slot) -> Ring.LONG.setVolatile(ring.memory, ring.claim(0, 0), word(5, NO_PEER, DONE)), false);
        damaged(20, (ring, slot) -> Ring.LONG.setVolatile(ring.memory, ring.claim(0, 0), word(0, NO_PEER, 9)), false);
    }

    /** The body's reference is damaged: the message is rejected, and its release frees the pool slot by the entry's copy. */
    @Test
    void aSlotReferenceNamingNoSlotIsRejected() throws Exception {
        for (long ref : new long[] {-1L, Long.MAX_VALUE, 0x00FF_0000_0000_0000L}) {
            damaged(300, (ring, slot) -> ring.memory.set(ValueLayout.JAVA_LONG, slot + SLOT_BODY_OFFSET, ref), false);
        }
    }

    /**
     * The release entry's reference is damaged: the message is delivered (it is read by the body's
     * reference), its release is counted corrupt and frees nothing, and the pool slot that nothing
     * names any more stays allocated.
     */
    @Test
    void aReleaseEntryReferenceNamingNoSlotIsCountedAndFreesNothing() throws Exception {
        for (long ref : new long[] {-1L, Long.MAX_VALUE, 0x00FF_0000_0000_0000L}) {
            try (Segment segment = Segment.open(options, "a");
                 Channel channel = Channel.declare(segment, "orders", small);
                 Subscription subscription = channel.subscribe("billing", true)) {
                Ring ring = ChannelProcessesTest.ring(channel);
                assertThat(channel.send(bytes(300, 1))).isEqualTo(SendOutcome.SENT);
                ring.memory.set(ValueLayout.JAVA_LONG, ring.releaseWord(0) + RingDescriptor.RELEASE_REF_OFFSET, ref);

                assertThat(receive(subscription, 1)).containsExactly(bytes(300, 1));
                assertThat(channel.stats().corrupt()).as("counted by the release").isEqualTo(1);
                for (int i = 0; i < 2 * small.capacity(); i++) { // around the ring, over the damaged entry
                    assertThat(channel.send(bytes(20 + i % 300, i))).isEqualTo(SendOutcome.SENT);
                    assertThat(receive(subscription, 1)).containsExactly(bytes(20 + i % 300, i));
                }
                assertThat(channel.stats().corrupt()).isEqualTo(1);
                long inUse = segment.slotPool().stats().stream().mapToLong(c -> c.total() - c.free()).sum();
                assertThat(inUse).as("only the pool slot whose reference was damaged").isEqualTo(1);
            }
        }
    }

    /**
     * A pool send whose slot is taken between its stores and its publication (only damage does that
     * to a live producer: here a skip written over its slot) sends the payload again under the next
     * sequence: from its own pool slot when nobody won the frame's release word, from a new copy when
     * someone did (who frees the pool slot, at once or later). Delivered once, and no pool slot is
     * left allocated.
     */
    @Test
    void aPoolSendWhoseSlotIsTakenBeforeItsPublicationSendsThePayloadAgain() throws Exception {
        for (String word : new String[] {"left", "won and freed", "won, freed later"}) {
            try (Segment segment = Segment.open(options, "a");
                 Channel channel = Channel.declare(segment, "orders", small);
                 Subscription subscription = channel.subscribe("billing", true)) {
                Ring ring = ChannelProcessesTest.ring(channel);
                assertThat(channel.send(bytes(300, 0))).isEqualTo(SendOutcome.SENT);
                assertThat(receive(subscription, 1)).containsExactly(bytes(300, 0));
                long sequence = channel.stats().cursor();
                long slot = ring.slot(sequence);
                long pending = word(sequence, NO_PEER, PENDING);
                long releasing = word(sequence, 3, RELEASING); // peer 3: nobody attached
                boolean[] ran = new boolean[1];
                channel.beforePoolPublish = () -> {
                    channel.beforePoolPublish = null; // the first attempt only
                    ran[0] = true;
                    assertThat(ring.fillSkip(sequence, ring.header(slot))).isTrue();
                    if (word.equals("won and freed")) {
                        assertThat(ring.release(slot, pending, false)).isTrue();
                    } else if (word.equals("won, freed later")) {
                        assertThat(Ring.LONG.compareAndSet(ring.memory, ring.releaseWord(sequence), pending, releasing))
                                .isTrue();
                    }
                };
                assertThat(channel.send(bytes(300, 1))).isEqualTo(SendOutcome.SENT);
                assertThat(ran[0]).as("the hook ran").isTrue();
                assertThat(channel.stats().cursor()).as("sent again under the next sequence").isEqualTo(sequence + 2);
                if (word.equals("won, freed later")) {
                    assertThat(ring.release(slot, releasing, false)).isTrue();
                }
                assertThat(receive(subscription, 1)).as(word).containsExactly(bytes(300, 1));
                assertThat(subscription.poll(m -> { }, 10)).as("once").isZero();
                long inUse = segment.slotPool().stats().stream().mapToLong(c -> c.total() - c.free()).sum();
                assertThat(inUse).as(word + ": pool slots still in use").isZero();
                assertThat(channel.stats().corrupt()).as(word).isZero();
            }
        }
    }

    /**
     * A release word that says {@code RELEASING} with another slot's sequence: a release would address
     * that slot's entry, so a producer that waited for it to end would wait for good. The producer
     * that reaches the slot replaces it, counted, and frees nothing by its reference. Beside it, the
     * same word of an earlier lap of this slot, naming a peer that is gone: its release is finished
     * (counted too), by the reference its entry kept, which the group had freed already. With several
     * producers and with one.
     */
    @Test
    void aReleaseWordNamingAnotherSlotsSequenceIsReplacedNotWaitedOn() throws Exception {
        for (long tag : new long[] {5, -small.capacity()}) { // another slot's; an earlier lap of this one
            for (int peer : new int[] {NO_PEER, 3}) { // no such peer; a peer not attached
                releasingWordMet(tag, peer, false);
                releasingWordMet(tag, peer, true);
            }
        }
    }

    private void releasingWordMet(long tag, int peer, boolean single) throws Exception {
        String what = "tag " + tag + ", peer " + peer + (single ? ", single producer" : "");
        try (Segment segment = Segment.open(options, "a");
             Channel channel = Channel.declare(segment, "orders", small.withSingleProducer(single));
             Subscription subscription = channel.subscribe("billing", true)) {
            Ring ring = ChannelProcessesTest.ring(channel);
            assertThat(channel.send(bytes(300, 0))).isEqualTo(SendOutcome.SENT); // sequence 0, a pool slot
            assertThat(receive(subscription, 1)).containsExactly(bytes(300, 0));
            Ring.LONG.setVolatile(ring.memory, ring.releaseWord(0), word(tag, peer, RELEASING));
            for (int i = 1; i < small.capacity(); i++) {
                assertThat(channel.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
                assertThat(receive(subscription, 1)).containsExactly(bytes(20, i));
            }
            java.util.concurrent.CompletableFuture<SendOutcome> reuse = java.util.concurrent.CompletableFuture
                    .supplyAsync(() -> channel.send(bytes(300, 16)));
            assertThat(reuse.get(BOUND.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS))
                    .as(what + ": the send into slot 0 goes on").isEqualTo(SendOutcome.SENT);
            assertThat(receive(subscription, 1)).as(what).containsExactly(bytes(300, 16));
            assertThat(channel.stats().corrupt()).as(what).isEqualTo(1);
            long inUse = segment.slotPool().stats().stream().mapToLong(c -> c.total() - c.free()).sum();
            assertThat(inUse).as(what + ": pool slots still in use").isZero();
        }
    }

    @Test
    void aSlotReferenceLongerThanItsSlotIsRejectedAndTheSlotStillFreed() throws Exception {
        damaged(300, (ring, slot) -> ring.memory.set(ValueLayout.JAVA_LONG, slot + SLOT_BODY_OFFSET + 8, 1L << 40), false);
        damaged(300, (ring, slot) -> ring.memory.set(ValueLayout.JAVA_LONG, slot + SLOT_BODY_OFFSET + 8, -5L), false);
    }

    @Test
    void aMemfdReferenceOutOfTheLeaseTableOrLongerThanItsBufferIsRejected() throws Exception {
        damaged(10_000, (ring, slot) -> ring.memory.set(ValueLayout.JAVA_INT, slot + SLOT_BODY_OFFSET, -1), false);
        damaged(10_000, (ring, slot) -> ring.memory.set(ValueLayout.JAVA_INT, slot + SLOT_BODY_OFFSET, 1 << 30), false);
        damaged(10_000, (ring, slot) -> ring.memory.set(ValueLayout.JAVA_LONG, slot + SLOT_BODY_OFFSET + 8, 1L << 40), false);
    }

    @Test
    @SuppressWarnings("try") // the first producer is closed inside its try block: another takes over
    void aProducerTakesADamagedSlotAfterTheLivenessTimeoutInsteadOfHanging() throws Exception {
        // Multiple producers; and a single producer that did not write the slot's previous lap (a
        // producer that took over the channel): both read the header and wait before taking it.
        for (boolean singleProducer : new boolean[] {false, true}) {
            try (Segment segment = Segment.open(options, "a");
                 Channel first = Channel.declare(segment, singleProducer ? "sp" : "mp",
                         small.withSingleProducer(singleProducer));
                 Subscription subscription = first.subscribe("billing", true)) {
                sendAndReadALap(first, subscription);
                first.close();
                Channel channel = Channel.declare(segment, singleProducer ? "sp" : "mp",
                        small.withSingleProducer(singleProducer));
                Ring ring = ChannelProcessesTest.ring(channel);
                header(ring, ring.slot(small.capacity()), 0x0BAD_0BAD_0BAD_0BADL); // the slot the next send needs

                long start = System.nanoTime();
                assertThat(channel.send(bytes(30, 99))).isEqualTo(SendOutcome.SENT);
                assertThat(Duration.ofNanos(System.nanoTime() - start)).as("waited for the liveness timeout")
                        .isGreaterThanOrEqualTo(LIVENESS);
                List<byte[]> received = receive(subscription, 1);
                assertThat(received).hasSize(1);
                assertThat(received.getFirst()).isEqualTo(bytes(30, 99));
                assertThat(channel.stats().corrupt()).isEqualTo(1);
                assertThat(channel.send(bytes(31, 100))).isEqualTo(SendOutcome.SENT);
                assertThat(receive(subscription, 1)).hasSize(1);
                channel.close();
            }
        }
    }

    /**
     * Without a required group a producer may lap a slow writer, so a previous lap's {@code WRITING}
     * mark naming a live peer (here damage naming this very process) holds the slot for as long as
     * that peer lives. Each send still ends as on a full ring: a blocking one at its timeout, a
     * {@code FAIL} one at once with {@code FULL}, a {@code DROP} one at once, counted.
     */
    @Test
    @org.junit.jupiter.api.Timeout(30)
    @SuppressWarnings("try") // the first producer is closed inside its try block: another takes over
    void aPreviousLapsWriterMarkNamingALivePeerEndsEachSendByItsBackpressure() throws Exception {
        for (boolean singleProducer : new boolean[] {false, true}) {
            String name = singleProducer ? "sp" : "mp";
            ChannelOptions declared = small.withSingleProducer(singleProducer);
            try (Segment segment = Segment.open(options, "a");
                 Channel first = Channel.declare(segment, name, declared);
                 Subscription audit = first.subscribe("audit", false)) {
                sendAndReadALap(first, audit);
                first.close(); // the next producers did not write the previous lap: they read its headers
                Ring ring = ChannelProcessesTest.ring(first);
                header(ring, ring.slot(small.capacity()), word(0, segment.peerId(), WRITING));

                try (Channel blocking = Channel.declare(segment, name, declared);
                     Channel failing = Channel.declare(segment, name, declared.withBackpressure(Backpressure.FAIL));
                     Channel dropping = Channel.declare(segment, name, declared.withBackpressure(Backpressure.DROP))) {
                    long start = System.nanoTime();
                    MemorySegment payload = MemorySegment.ofArray(bytes(30, 99));
                    assertThat(blocking.send(payload, 0, 30, 150, java.util.concurrent.TimeUnit.MILLISECONDS))
                            .isEqualTo(SendOutcome.TIMEOUT);
                    Duration waited = Duration.ofNanos(System.nanoTime() - start);
                    assertThat(waited).as("waited for its timeout, not for good")
                            .isBetween(Duration.ofMillis(150), Duration.ofSeconds(5));
                    start = System.nanoTime();
                    assertThat(failing.send(bytes(30, 99))).isEqualTo(SendOutcome.FULL);
                    assertThat(dropping.send(bytes(30, 99))).isEqualTo(SendOutcome.DROPPED);
                    assertThat(Duration.ofNanos(System.nanoTime() - start)).as("no wait").isLessThan(LIVENESS);
                    Channel.Stats stats = blocking.stats();
                    assertThat(stats.drops()).isEqualTo(1);
                    assertThat(stats.fullWaits()).isEqualTo(1);
                    assertThat(stats.corrupt()).as("a live peer's mark is not taken for damage").isZero();
                    assertThat(stats.cursor()).as("nothing claimed").isEqualTo(small.capacity());

                    // The peer's mark is finished (as its writer would publish it): the slot is free again.
                    header(ring, ring.slot(small.capacity()), word(0, segment.peerId(), PUBLISHED));
                    assertThat(failing.send(bytes(31, 100))).isEqualTo(SendOutcome.SENT);
                    assertThat(receive(audit, 1)).containsExactly(bytes(31, 100));
                }
            }
        }
    }

    /**
     * A producer takes a damaged header after the liveness timeout even when no one send lasts that
     * long: the wait is counted across sends, from the first that found the header in its way.
     */
    @Test
    @SuppressWarnings("try") // the first producer is closed inside its try block: another takes over
    void aDamagedHeaderIsTakenAfterTheLivenessTimeoutAcrossSendsThatEachEndSooner() throws Exception {
        for (boolean singleProducer : new boolean[] {false, true}) {
            String name = singleProducer ? "sp" : "mp";
            ChannelOptions declared = small.withSingleProducer(singleProducer);
            try (Segment segment = Segment.open(options, "a");
                 Channel first = Channel.declare(segment, name, declared);
                 Subscription subscription = first.subscribe("billing", true)) {
                sendAndReadALap(first, subscription);
                first.close();
                Ring ring = ChannelProcessesTest.ring(first);
                header(ring, ring.slot(small.capacity()), word(0, 7, WRITING)); // peer 7: an empty entry

                try (Channel failing = Channel.declare(segment, name, declared.withBackpressure(Backpressure.FAIL))) {
                    long start = System.nanoTime();
                    assertThat(failing.send(bytes(30, 99))).as("held: refused at once").isEqualTo(SendOutcome.FULL);
                    int refused = 1;
                    SendOutcome outcome = SendOutcome.FULL;
                    long lastSend = 0;
                    while (outcome == SendOutcome.FULL && System.nanoTime() - start < BOUND.toNanos()) {
                        java.util.concurrent.locks.LockSupport.parkNanos(5_000_000);
                        long sendStart = System.nanoTime();
                        outcome = failing.send(bytes(30, 99));
                        lastSend = System.nanoTime() - sendStart;
                        refused += outcome == SendOutcome.FULL ? 1 : 0;
                    }
                    assertThat(outcome).isEqualTo(SendOutcome.SENT);
                    // The header judged damaged before the claim is taken at once after it (several
                    // producers), not after a second liveness timeout.
                    assertThat(Duration.ofNanos(lastSend)).as("the send that took the slot").isLessThan(LIVENESS);
                    assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(LIVENESS);
                    assertThat(refused).as("sends refused before the timeout").isGreaterThan(1);
                    assertThat(receive(subscription, 1)).containsExactly(bytes(30, 99));
                    assertThat(failing.stats().corrupt()).isEqualTo(1);
                }
            }
        }
    }

    /**
     * An optional group's done damaged past the cursor: a member polls nothing (it did not run on past
     * the cursor, counting every sequence lost, for good), and reads again from there once the
     * producers get there.
     */
    @Test
    @org.junit.jupiter.api.Timeout(30)
    void anOptionalGroupsDoneDamagedPastTheCursorWaitsThereInsteadOfRunningOn() throws Exception {
        try (Segment segment = Segment.open(options, "a");
             Channel channel = Channel.declare(segment, "orders", small);
             Subscription audit = channel.subscribe("audit", false, SubscriptionMode.SHARED)) {
            for (int i = 0; i < 3; i++) {
                assertThat(channel.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
            }
            assertThat(receive(audit, 3)).hasSize(3);
            Ring ring = ChannelProcessesTest.ring(channel);
            assertThat(ring.groupName(0)).isEqualTo("audit");
            long damagedDone = ring.cursor() + 20;
            Ring.LONG.setVolatile(ring.memory, ring.group(0) + GROUP_DONE_OFFSET, damagedDone);

            assertThat(audit.poll(m -> { }, 10)).isZero();
            assertThat(channel.stats().groups().getFirst().lost()).as("nothing counted lost past the cursor")
                    .isLessThanOrEqualTo(small.capacity());
            List<Long> sequences = new ArrayList<>();
            for (int i = 0; i < 30; i++) {
                assertThat(channel.send(bytes(20, 100 + i))).isEqualTo(SendOutcome.SENT);
            }
            long deadline = System.nanoTime() + BOUND.toNanos();
            while (sequences.size() < 10 && System.nanoTime() < deadline) {
                audit.poll(m -> sequences.add(m.sequence()), 30);
            }
            assertThat(sequences).as("read again from the damaged done on")
                    .containsExactlyElementsOf(java.util.stream.LongStream.range(damagedDone, damagedDone + 10).boxed()
                            .toList());
        }
    }

    /**
     * A required group's next and done damaged two laps behind: its member finds a later lap in the
     * slot, which producers could only write once the group was done with it, so the group's
     * position is the damage. It moves on to the oldest message in the ring (counted; its claim words
     * there say it handled them, so none is handed out again) and its done with it, so producers go
     * on; the later lap's messages, which another required group still needs, stay intact (before,
     * the member took their headers for damage and replaced them with skips, one a liveness timeout).
     */
    @Test
    @org.junit.jupiter.api.Timeout(30)
    void aRequiredGroupDamagedALapBehindMovesOnAndDestroysNoMessage() throws Exception {
        try (Segment segment = Segment.open(options, "a");
             Channel channel = Channel.declare(segment, "orders", small);
             Subscription billing = channel.subscribe("billing", true, SubscriptionMode.SHARED);
             Subscription audit = channel.subscribe("audit", true, SubscriptionMode.SHARED)) {
            int capacity = small.capacity();
            for (int i = 0; i < 3 * capacity; i++) {
                assertThat(channel.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
                if (i < 2 * capacity) {
                    assertThat(receive(audit, 1)).hasSize(1);
                }
                assertThat(receive(billing, 1)).hasSize(1);
            }
            // audit stands at two laps, the third unread; billing read everything, and is set two laps back.
            Ring ring = ChannelProcessesTest.ring(channel);
            assertThat(ring.groupName(0)).isEqualTo("billing");
            Ring.LONG.setVolatile(ring.memory, ring.group(0) + GROUP_NEXT_OFFSET, (long) capacity);
            Ring.LONG.setVolatile(ring.memory, ring.group(0) + GROUP_DONE_OFFSET, (long) capacity);

            List<Long> billed = new ArrayList<>();
            long deadline = System.nanoTime() + 3 * LIVENESS.toNanos(); // billing alone, past the liveness timeout
            while (System.nanoTime() < deadline) {
                billing.poll(m -> billed.add(m.sequence()), 64);
            }
            assertThat(billed).as("the third lap's claim words say billing handled it").isEmpty();
            assertThat(ring.done(0)).as("moved on to the oldest message in the ring").isEqualTo(3L * capacity);
            List<Long> audited = new ArrayList<>();
            deadline = System.nanoTime() + BOUND.toNanos();
            while (System.nanoTime() < deadline && audited.size() < capacity) {
                audit.poll(m -> audited.add(m.sequence()), 64);
            }
            List<Long> thirdLap = java.util.stream.LongStream.range(2L * capacity, 3L * capacity).boxed().toList();
            assertThat(audited).as("the other group's messages are intact").isEqualTo(thirdLap);
            assertThat(channel.stats().corrupt()).isEqualTo(1);
            assertThat(channel.send(bytes(20, 99))).isEqualTo(SendOutcome.SENT);
            assertThat(receive(billing, 1)).containsExactly(bytes(20, 99));
            assertThat(receive(audit, 1)).containsExactly(bytes(20, 99));
        }
    }

    /**
     * A required group's done damaged behind while its member stands at the cursor: producers find no
     * room and the member nothing to read, for good. The member's empty polls see the damage (behind
     * its own position, for an exclusive member; a lap behind the cursor, for a shared one), count it
     * and move done up; producers go on, and no message is handed out twice.
     */
    @Test
    @org.junit.jupiter.api.Timeout(30)
    @SuppressWarnings("try") // the first producer is closed inside its try block: another takes over
    void aRequiredGroupsDoneDamagedBehindItsCaughtUpMemberIsMovedUp() throws Exception {
        // done set back below a lap behind the cursor, and exactly a lap behind it (a full ring, as a
        // slow member's message at done makes it too, so only the claim words can tell)
        for (long damagedDone : new long[] {1, 3}) {
        for (SubscriptionMode mode : SubscriptionMode.values()) {
            for (boolean singleProducer : new boolean[] {false, true}) {
                ChannelOptions declared = small.withSingleProducer(singleProducer);
                try (Segment segment = Segment.open(options, "a");
                     Channel first = Channel.declare(segment, "orders", declared);
                     Subscription billing = first.subscribe("billing", true, mode)) {
                    int capacity = small.capacity();
                    for (int i = 0; i < capacity + 3; i++) {
                        assertThat(first.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
                        assertThat(receive(billing, 1)).hasSize(1);
                    }
                    first.close();
                    Ring ring = ChannelProcessesTest.ring(first);
                    assertThat(ring.cursor() - damagedDone).isGreaterThanOrEqualTo(capacity);
                    Ring.LONG.setVolatile(ring.memory, ring.group(0) + GROUP_DONE_OFFSET, damagedDone);

                    try (Channel channel = Channel.declare(segment, "orders", declared.withBackpressure(Backpressure.FAIL))) {
                        assertThat(channel.send(bytes(20, 98))).as("no room").isEqualTo(SendOutcome.FULL);
                        List<byte[]> received = new ArrayList<>();
                        SendOutcome outcome = SendOutcome.FULL;
                        long deadline = System.nanoTime() + BOUND.toNanos();
                        while (outcome != SendOutcome.SENT && System.nanoTime() < deadline) {
                            billing.poll(m -> received.add(m.toByteArray()), 8); // empty polls, which look
                            outcome = channel.send(bytes(20, 99));
                        }
                        assertThat(outcome).as(mode + ", single producer " + singleProducer + ", done " + damagedDone)
                                .isEqualTo(SendOutcome.SENT);
                        assertThat(received).as("nothing handed out again").isEmpty();
                        assertThat(receive(billing, 1)).containsExactly(bytes(20, 99));
                        // A shared group's done exactly a lap back is a full ring to look at: the claim
                        // words move it on, uncounted (a member between its DONE and its move of done
                        // looks the same for an instant).
                        boolean counted = mode == SubscriptionMode.EXCLUSIVE || damagedDone < 3;
                        assertThat(channel.stats().corrupt()).isEqualTo(counted ? 1 : 0);
                        assertThat(ring.done(0)).isEqualTo(capacity + 4);
                    }
                }
            }
        }
        }
    }

    /**
     * A name read from shared memory is untrusted text that reaches logs, stats and the CLI: control
     * characters (a line break that forges a log line, a terminal escape) are replaced; and the
     * library refuses to store names with them, so that nothing it wrote reads back otherwise.
     */
    @Test
    @SuppressWarnings("try") // the subscription only makes the group exist
    void controlCharactersInNamesAreRefusedAndReplacedWhenRead() throws Exception {
        try (Segment segment = Segment.open(options, "a");
             Channel channel = Channel.declare(segment, "orders", small);
             Subscription audit = channel.subscribe("audit", false)) {
            org.assertj.core.api.Assertions.assertThatIllegalArgumentException()
                    .isThrownBy(() -> channel.subscribe("au\ndit", false)).withMessageContaining("control character");
            org.assertj.core.api.Assertions.assertThatIllegalArgumentException()
                    .isThrownBy(() -> Channel.declare(segment, "ord\u001Bers", small))
                    .withMessageContaining("control character");
            assertThat(RingDescriptor.isGroupName("caf\u00E9")).isTrue();
            assertThat(RingDescriptor.isGroupName("caf\u0085")).isFalse();

            Ring ring = ChannelProcessesTest.ring(channel);
            byte[] forged = "a\nWARNING: forged\u001B[2J".getBytes(java.nio.charset.StandardCharsets.UTF_8);
            MemorySegment.copy(forged, 0, ring.memory, ValueLayout.JAVA_BYTE, ring.group(0) + GROUP_NAME_OFFSET,
                    forged.length);
            ring.memory.set(ValueLayout.JAVA_INT, ring.group(0) + GROUP_NAME_LENGTH_OFFSET, forged.length);
            assertThat(channel.stats().groups().getFirst().name()).isEqualTo("a\uFFFDWARNING: forged\uFFFD[2J");
        }
    }

    @Test
    void aSingleProducerOverwritesADamagedHeaderOfALapItPublishedItself() throws Exception {
        // The producer published the previous lap and every group is done with it: the slot is its
        // own, so it neither reads the header nor waits for it.
        try (Segment segment = Segment.open(options, "a");
             Channel channel = Channel.declare(segment, "sp", small.withSingleProducer(true));
             Subscription subscription = channel.subscribe("billing", true)) {
            sendAndReadALap(channel, subscription);
            Ring ring = ChannelProcessesTest.ring(channel);
            header(ring, ring.slot(small.capacity()), 0x0BAD_0BAD_0BAD_0BADL);

            long start = System.nanoTime();
            assertThat(channel.send(bytes(30, 99))).isEqualTo(SendOutcome.SENT);
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(LIVENESS);
            assertThat(receive(subscription, 1)).containsExactly(bytes(30, 99));
            assertThat(channel.stats().corrupt()).isZero();
        }
    }

    /**
     * A producer marks a slot before it writes the slot's type, so a slot being written when its
     * producer died may still carry the previous lap's {@code SLOT_REF} type and reference. Recovery
     * frees a pool slot only for a reference of the slot's own lap (its release word pending for
     * that sequence): here the stale reference names the pool slot of a message still in the ring.
     */
    @Test
    void recoveryFreesNoPoolSlotThatASlotsPreviousLapNamed() throws Exception {
        int dead = 3; // a peer id nobody attached
        for (boolean single : new boolean[] {true, false}) {
            try (Segment segment = Segment.open(options, "a");
                 Channel channel = Channel.declare(segment, single ? "single" : "multi", small.withSingleProducer(single));
                 Subscription subscription = channel.subscribe("billing", true)) {
                Ring ring = ChannelProcessesTest.ring(channel);
                assertThat(channel.send(bytes(200, 1))).isEqualTo(SendOutcome.SENT); // sequence 0, a pool slot
                long held = ring.memory.get(ValueLayout.JAVA_LONG, ring.slot(0) + SLOT_BODY_OFFSET);
                assertThat(segment.slotPool().isCurrent(held)).isTrue();

                // Sequence 1, as a producer leaves it that died right after its mark: the previous lap's
                // type and body (a reference to the slot sequence 0 holds, released long ago).
                long slot = ring.slot(1);
                ring.memory.set(ValueLayout.JAVA_INT, slot + SLOT_TYPE_OFFSET, SLOT_REF);
                ring.memory.set(ValueLayout.JAVA_LONG, slot + SLOT_BODY_OFFSET, held);
                ring.memory.set(ValueLayout.JAVA_LONG, slot + SLOT_BODY_OFFSET + 8, 200L);
                ring.memory.set(ValueLayout.JAVA_LONG, ring.releaseWord(1) + RELEASE_REF_OFFSET, held);
                ring.memory.set(ValueLayout.JAVA_LONG, ring.releaseWord(1), word(1 - small.capacity(), NO_PEER, RELEASED));
                Ring.LONG.setVolatile(ring.memory, slot, word(1, dead, WRITING));
                if (!single) {
                    Ring.LONG.setVolatile(ring.memory, (long) CURSOR_OFFSET, 2L); // it had claimed sequence 1
                }
                ring.recover(dead);

                assertThat(segment.slotPool().isCurrent(held)).as("the message's pool slot is still its own").isTrue();
                assertThat(receive(subscription, 1)).containsExactly(bytes(200, 1));
                assertThat(channel.send(bytes(20, 2))).isEqualTo(SendOutcome.SENT);
                assertThat(receive(subscription, 1)).containsExactly(bytes(20, 2));
                long inUse = segment.slotPool().stats().stream().mapToLong(c -> c.total() - c.free()).sum();
                assertThat(inUse).as("every pool slot back").isZero();
            }
        }
    }
    /**
     * No damage, although it looks like it: a producer claims a sequence (several producers) and
     * stalls past the liveness timeout before it marks the slot; the group fills the sequence with a
     * skip, the ring goes on for a lap, and the slot holds a later lap's unread message when the
     * producer resumes. It claims another sequence: the later lap's message stays, nothing is counted
     * corrupt, and the group receives every message of the lap in order.
     */
    @Test
    void aProducerThatStalledAfterItsClaimTakesNothingFromTheLapsThatWentOnMeanwhile() throws Exception {
        try (Segment segment = Segment.open(options, "a");
             Channel channel = Channel.declare(segment, "orders", small);
             Subscription subscription = channel.subscribe("billing", true)) {
            Ring ring = ChannelProcessesTest.ring(channel);
            assertThat(ring.singleProducer).isFalse();
            long claimed = ring.cursor();
            assertThat(Ring.LONG.compareAndSet(ring.memory, (long) CURSOR_OFFSET, claimed, claimed + 1)).isTrue();

            long deadline = System.nanoTime() + BOUND.toNanos();
            while (channel.stats().skips() == 0 && System.nanoTime() < deadline) {
                subscription.take(m -> { }, 1, Duration.ofMillis(20));
            }
            assertThat(channel.stats().skips()).as("the group fills the stalled claim with a skip").isEqualTo(1);
            while (channel.stats().groups().getFirst().done() <= claimed && System.nanoTime() < deadline) {
                subscription.poll(m -> { }, 1); // the poll that filled it may have ended there
            }
            assertThat(channel.stats().groups().getFirst().done()).isEqualTo(claimed + 1);

            int capacity = small.capacity();
            for (int i = 0; i < capacity; i++) {
                assertThat(channel.send(bytes(20, i))).isEqualTo(SendOutcome.SENT);
            }
            long slot = ring.slot(claimed);
            long laterLap = ring.header(slot);
            assertThat(tag(laterLap)).isEqualTo(claimed + capacity);
            assertThat(state(laterLap)).isEqualTo(PUBLISHED);

            assertThat(channel.takeClaimed(claimed, false, 0)).as("the stalled producer claims another sequence")
                    .isEqualTo(Channel.SKIPPED_MEANWHILE);
            assertThat(ring.header(slot)).isEqualTo(laterLap);
            assertThat(channel.stats().corrupt()).isZero();
            List<byte[]> received = receive(subscription, capacity);
            assertThat(received).hasSize(capacity);
            for (int i = 0; i < capacity; i++) {
                assertThat(received.get(i)).as("message %d", i).isEqualTo(bytes(20, i));
            }
            assertThat(channel.send(bytes(20, 99))).isEqualTo(SendOutcome.SENT);
            assertThat(receive(subscription, 1)).singleElement().isEqualTo(bytes(20, 99));
            assertThat(channel.stats().corrupt()).isZero();
        }
    }
}
