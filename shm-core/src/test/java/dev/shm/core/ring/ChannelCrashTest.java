package dev.shm.core.ring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.segment.Liveness;
import dev.shm.core.segment.PeerState;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.TestSegments;
import dev.shm.core.testing.ChildJvm;
import dev.shm.core.testing.ShmDirectory;
import java.io.RandomAccessFile;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Producers and consumers of a channel die by SIGKILL at random moments mid-stream; the delivery
 * contract must hold: nothing reported sent is lost, a message reaches a group twice only flagged
 * redelivered, and the slot pool comes back full.
 */
class ChannelCrashTest {

    /** Kill rounds; the {@code soak} profile raises it to 1000. */
    private static final int ROUNDS = Integer.getInteger("shm.test.channelKillRounds", 12);
    /** Messages per producer process: enough that a producer is mid-stream when it is killed. */
    private static final int QUOTA = 16_384;
    private static final Duration LINE = Duration.ofSeconds(60);
    private static final int LARGEST_CLASS = 4096;
    /** How long a billing member works on each message, so that a kill lands mid-message. */
    private static final long WORK_MICROS = 150;
    private static final java.lang.invoke.VarHandle BUSY = ValueLayout.JAVA_LONG.varHandle();

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private Path directory;
    private final List<ChildJvm> children = new ArrayList<>();

    private ChildJvm child(String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.add(1, directory.toString());
        // The never-killed consumer lives as long as the whole test.
        long life = 120 + 3L * ROUNDS;
        ChildJvm child = ChildJvm.builder(ChannelChild.class).jvmArgs("-Dshm.child.lifeSeconds=" + life)
                .args(all.toArray(String[]::new)).start();
        children.add(child);
        return child;
    }

    private ChildJvm producer(int id) {
        Path progress = directory.resolve("producer-" + id + ".sent");
        try {
            try (RandomAccessFile file = new RandomAccessFile(progress.toFile(), "rw")) {
                file.setLength(8);
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return child("stream", Integer.toString(id), Integer.toString(QUOTA), progress.toString());
    }

    private long sent(int producer) throws Exception {
        byte[] bytes = Files.readAllBytes(directory.resolve("producer-" + producer + ".sent"));
        return ByteBuffer.wrap(bytes).order(ByteOrder.nativeOrder()).getLong(0);
    }

    private int consumers;

    /** A consumer, and the mapped word that says when it is inside its handler. */
    private record Consumer(ChildJvm jvm, MemorySegment busy) {
    }

    private Consumer tally(String group, Path file, int producers, long workMicros) throws Exception {
        Path busyFile = directory.resolve("consumer-" + consumers++ + ".busy");
        try (RandomAccessFile raf = new RandomAccessFile(busyFile.toFile(), "rw")) {
            raf.setLength(8);
        }
        MemorySegment busy = ChannelChild.map(busyFile);
        ChildJvm jvm = child("tally", group, file.toString(), Integer.toString(producers), Integer.toString(QUOTA),
                busyFile.toString(), Long.toString(workMicros));
        return new Consumer(jvm, busy);
    }

    @Test
    void producersAndConsumersKilledMidStreamLoseNothingAndDuplicateOnlyFlagged() throws Exception {
        directory = shm.directory("bus");
        // Incarnations, at most: two at the start, one per kill, two per round for producers that ran
        // out of messages. (The tally files are sparse: only what is counted takes memory.)
        int maxProducers = 3 * ROUNDS + 4;
        Random random = new Random();
        long seed = random.nextLong();
        random.setSeed(seed);
        Path auditFile = directory.resolve("audit.tally");
        Path billingFile = directory.resolve("billing.tally");
        for (Path file : List.of(auditFile, billingFile)) {
            try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
                raf.setLength(ChannelChild.tallySize(maxProducers, QUOTA));
            }
        }
        Set<Integer> killedProducers = new HashSet<>();
        int producerKills = 0;
        int consumerKills = 0;
        int auditKills = 0;
        try (Segment parent = Segment.open(ChannelProcessesTest.segmentOptions(directory), "test");
             Channel channel = Channel.declare(parent, ChannelChild.CHANNEL, ChannelProcessesTest.CHANNEL_OPTIONS)) {
            channel.subscribe("audit", true).close();
            channel.subscribe("billing", true).close();
            // audit's one member is exclusive (ChannelChild.EXCLUSIVE_GROUP), billing's two compete.
            Consumer audit = tally("audit", auditFile, maxProducers, WORK_MICROS);
            List<Consumer> billing = new ArrayList<>(List.of(tally("billing", billingFile, maxProducers, WORK_MICROS),
                    tally("billing", billingFile, maxProducers, WORK_MICROS)));
            audit.jvm().awaitLine("READY", LINE);
            billing.forEach(c -> c.jvm().awaitLine("READY", LINE));
            int nextProducer = 0;
            List<ChildJvm> producers = new ArrayList<>();
            List<Integer> producerIds = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                producerIds.add(nextProducer);
                producers.add(producer(nextProducer++));
            }
            producers.forEach(c -> c.awaitLine("READY", LINE));

            for (int round = 0; round < ROUNDS; round++) {
                // A producer that sent its whole quota is idle: replace it, so that the stream goes on.
                for (int i = 0; i < 2; i++) {
                    if (sent(producerIds.get(i)) >= QUOTA) {
                        ChildJvm finished = producers.get(i);
                        finished.send("STOP");
                        finished.awaitLine("DONE", LINE);
                        assertThat(finished.awaitExit(LINE)).as(finished.output()).isZero();
                        producerIds.set(i, nextProducer);
                        ChildJvm replacement = producer(nextProducer++);
                        producers.set(i, replacement);
                        replacement.awaitLine("READY", LINE);
                    }
                }
                boolean killProducer = round % 2 == 0;
                int which = random.nextInt(2);
                if (killProducer) {
                    // Wait until the victim is mid-stream: a random number of sends past where it is now.
                    int id = producerIds.get(which);
                    long target = Math.min(QUOTA, sent(id) + 1 + random.nextInt(400));
                    long deadline = System.nanoTime() + LINE.toNanos();
                    while (sent(id) < target && System.nanoTime() < deadline) {
                        Thread.onSpinWait();
                    }
                    producers.get(which).kill();
                    killedProducers.add(id);
                    producerKills++;
                    producerIds.set(which, nextProducer);
                    ChildJvm replacement = producer(nextProducer++);
                    producers.set(which, replacement);
                    replacement.awaitLine("READY", LINE);
                } else {
                    // A random moment of the stream, then the next time the victim is inside its handler.
                    // Every other consumer kill is audit's exclusive member: its replacement joins once
                    // recovery has handed the dead one's message on.
                    boolean killAudit = consumerKills % 2 == 1;
                    Thread.sleep(random.nextInt(5, 150));
                    Consumer victim = killAudit ? audit : billing.get(which);
                    long deadline = System.nanoTime() + LINE.toNanos();
                    while ((long) BUSY.getVolatile(victim.busy(), 0L) == 0 && System.nanoTime() < deadline) {
                        Thread.onSpinWait();
                    }
                    victim.jvm().kill();
                    consumerKills++;
                    Consumer replacement = tally(killAudit ? "audit" : "billing", killAudit ? auditFile : billingFile,
                            maxProducers, WORK_MICROS);
                    if (killAudit) {
                        audit = replacement;
                        auditKills++;
                    } else {
                        billing.set(which, replacement);
                    }
                    replacement.jvm().awaitLine("READY", LINE);
                }
            }

            // Stop the producers gracefully, let the consumers drain, then stop them.
            producers.forEach(c -> c.send("STOP"));
            for (ChildJvm p : producers) {
                p.awaitLine("DONE", LINE);
                assertThat(p.awaitExit(LINE)).as(p.output()).isZero();
            }
            long deadline = System.nanoTime() + LINE.toNanos();
            while (channel.stats().groups().stream().anyMatch(g -> g.lag() > 0) && System.nanoTime() < deadline) {
                Thread.sleep(10); // a bounded poll of the consumers' progress
            }
            List<ChildJvm> consumers = new ArrayList<>(billing.stream().map(Consumer::jvm).toList());
            consumers.add(audit.jvm());
            consumers.forEach(c -> c.send("STOP"));
            for (ChildJvm c : consumers) {
                c.awaitLine("DONE", LINE);
                assertThat(c.awaitExit(LINE)).as(c.output()).isZero();
            }

            Channel.Stats stats = channel.stats();
            String context = "seed=" + seed + " producerKills=" + producerKills + " consumerKills=" + consumerKills
                    + " (audit " + auditKills + ") " + stats;
            System.out.println("channel kill test: " + context);
            assertThat(stats.groups()).as(context).allSatisfy(g -> assertThat(g.lag()).isZero());
            Channel.GroupStats auditStats = group(stats, "audit");
            Channel.GroupStats billingStats = group(stats, "billing");

            MemorySegment auditTally = MemorySegment.ofArray(Files.readAllBytes(auditFile));
            MemorySegment billingTally = MemorySegment.ofArray(Files.readAllBytes(billingFile));
            assertThat(auditTally.get(ValueLayout.JAVA_INT_UNALIGNED, ChannelChild.TALLY_BAD)).as(context).isZero();
            assertThat(billingTally.get(ValueLayout.JAVA_INT_UNALIGNED, ChannelChild.TALLY_BAD)).as(context).isZero();
            assertThat(auditTally.get(ValueLayout.JAVA_INT_UNALIGNED, ChannelChild.TALLY_DISORDER))
                    .as("per-producer order in the single-member group (each incarnation); " + context).isZero();

            long sentTotal = 0;
            long billingRedelivered = 0;
            long auditRedelivered = 0;
            long memfdLost = 0;
            for (int p = 0; p < nextProducer; p++) {
                long sent = sent(p);
                sentTotal += sent;
                boolean killed = killedProducers.contains(p);
                for (int index = 0; index < QUOTA; index++) {
                    long at = ChannelChild.TALLY_COUNTS + 8L * ((long) p * QUOTA + index);
                    int auditOnce = auditTally.get(ValueLayout.JAVA_INT_UNALIGNED, at);
                    int auditAgain = auditTally.get(ValueLayout.JAVA_INT_UNALIGNED, at + 4);
                    int billingOnce = billingTally.get(ValueLayout.JAVA_INT_UNALIGNED, at);
                    int billingAgain = billingTally.get(ValueLayout.JAVA_INT_UNALIGNED, at + 4);
                    String what = "producer " + p + (killed ? " (killed)" : "") + " message " + index + " of " + sent
                            + " sent; " + context;
                    assertThat(auditOnce).as("audit unflagged, " + what).isLessThanOrEqualTo(1);
                    assertThat(billingOnce).as("billing unflagged, " + what).isLessThanOrEqualTo(1);
                    billingRedelivered += billingAgain;
                    auditRedelivered += auditAgain;
                    if (index >= sent) {
                        continue; // not reported sent (its producer died): at most once, as checked above
                    }
                    boolean memfd = ChannelChild.lengthOf(index) > LARGEST_CLASS;
                    if (killed && memfd && (auditOnce + auditAgain == 0 || billingOnce + billingAgain == 0)) {
                        memfdLost++; // the documented limit: a memfd payload dies with its sender
                        continue;
                    }
                    assertThat(auditOnce + auditAgain).as("audit lost, " + what).isPositive();
                    assertThat(billingOnce + billingAgain).as("billing lost, " + what).isPositive();
                }
            }
            assertThat(billingRedelivered).as("flagged deliveries are counted redeliveries; " + context)
                    .isLessThanOrEqualTo(billingStats.redeliveries());
            assertThat(auditRedelivered).as("audit's flagged deliveries are counted redeliveries; " + context)
                    .isLessThanOrEqualTo(auditStats.redeliveries());
            if (auditKills > 0) {
                // The exclusive member died inside its handler: its message went to its replacement.
                assertThat(auditStats.redeliveries()).as(context).isPositive();
                assertThat(auditRedelivered).as(context).isPositive();
            }
            // Consumers die inside their handler (a message takes WORK_MICROS), so the dead member's
            // message comes back to the group: at least one such redelivery is all but certain.
            assertThat(billingStats.redeliveries()).as(context).isPositive();
            assertThat(billingRedelivered).as(context).isPositive();
            assertThat(auditStats.lost() + billingStats.lost()).as(context).isGreaterThanOrEqualTo(memfdLost);
            assertThat(sentTotal).as("messages reported sent").isGreaterThan(ROUNDS * 8L);
            assertThat(stats.published()).as(context).isGreaterThanOrEqualTo(sentTotal);
            assertThat(parent.slotPool().stats()).as(context).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
            assertThat(parent.leases().leases()).as(context).isEmpty();
            // Last, so that a count of damage (which logs why) comes with the delivery checks' verdict.
            assertThat(stats.corrupt()).as(() -> context + corruptReasons()).isZero();
        } finally {
            children.forEach(ChildJvm::close);
        }
    }

    @Test
    void aPeerKilledWhileFreeingAPoolPayloadHasItFreedByItsRecoveryAndTheRingSlotWaitsForIt() throws Exception {
        killedFreer(false);
    }

    /**
     * The freer's entry is being recovered (its process is dead, its recoverer alive) for longer than
     * the liveness timeout: the producer waits for that recovery, and takes nothing over meanwhile.
     */
    @Test
    void aFreerUnderRecoveryIsWaitedForPastTheLivenessTimeoutAndNotTakenOver() throws Exception {
        killedFreer(true);
    }

    private void killedFreer(boolean slowRecovery) throws Exception {
        directory = shm.directory("bus");
        try (Segment parent = Segment.open(ChannelProcessesTest.segmentOptions(directory), "test");
             Channel channel = Channel.declare(parent, ChannelChild.CHANNEL, ChannelProcessesTest.CHANNEL_OPTIONS);
             Subscription billing = channel.subscribe("billing", true)) {
            Ring ring = ChannelProcessesTest.ring(channel);
            MemorySegment pooled = MemorySegment.ofArray(new byte[300]);
            assertThat(channel.send(pooled, 0, 300)).isEqualTo(SendOutcome.SENT);
            long sequence = ring.cursor() - 1;
            long slot = ring.slot(sequence);
            long ref = ring.memory.get(ValueLayout.JAVA_LONG, slot + RingDescriptor.SLOT_BODY_OFFSET);
            assertThat(parent.slotPool().isCurrent(ref)).isTrue();

            // Another process wins the frame's release word, then dies before it frees the pool slot.
            ChildJvm releaser = child("release-and-hold", Long.toString(sequence));
            int releaserPeer = Integer.parseInt(releaser.awaitLine("RELEASING", LINE));
            assertThat(billing.poll(m -> { }, 10)).isEqualTo(1);
            assertThat(parent.slotPool().isCurrent(ref)).as("the group is done, but the release is another's").isTrue();

            // A lap later the producer reaches the ring slot while the releaser lives: it waits, and the
            // reference stays in place for the releaser's recovery.
            MemorySegment inline = MemorySegment.ofArray(new byte[20]);
            for (int i = 0; i < ChannelProcessesTest.CHANNEL_OPTIONS.capacity() - 1; i++) {
                assertThat(channel.send(inline, 0, 20)).isEqualTo(SendOutcome.SENT);
                assertThat(billing.poll(m -> { }, 10)).isEqualTo(1);
            }
            java.util.concurrent.CompletableFuture<SendOutcome> reuse = java.util.concurrent.CompletableFuture
                    .supplyAsync(() -> channel.send(inline, 0, 20));
            assertThatThrownBy(() -> reuse.get(300, java.util.concurrent.TimeUnit.MILLISECONDS))
                    .as("the send that reuses the ring slot waits for the releaser")
                    .isInstanceOf(java.util.concurrent.TimeoutException.class);
            assertThat(ring.memory.get(ValueLayout.JAVA_LONG, slot + RingDescriptor.SLOT_BODY_OFFSET)).isEqualTo(ref);
            assertThat(parent.slotPool().isCurrent(ref)).isTrue();

            if (slowRecovery) {
                AutoCloseable recovery = TestSegments.killAndHoldRecovery(parent, releaserPeer, releaser::kill, LINE);
                try {
                    assertThat(parent.peer(releaserPeer).state()).isEqualTo(PeerState.RECOVERING);
                    Duration pastLiveness = ChannelProcessesTest.segmentOptions(directory).livenessTimeout()
                            .multipliedBy(5).dividedBy(2);
                    assertThatThrownBy(() -> reuse.get(pastLiveness.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS))
                            .as("the send waits for the recovery of the freer, however long it takes")
                            .isInstanceOf(java.util.concurrent.TimeoutException.class);
                    assertThat(channel.stats().corrupt()).as("a recovery under way is no damage").isZero();
                    assertThat(parent.slotPool().isCurrent(ref)).isTrue();
                } finally {
                    recovery.close();
                }
            } else {
                releaser.kill();
            }
            assertThat(reuse.get(LINE.toSeconds(), java.util.concurrent.TimeUnit.SECONDS)).isEqualTo(SendOutcome.SENT);
            assertThat(parent.slotPool().isCurrent(ref)).as("freed by the releaser's recovery").isFalse();
            assertThat(parent.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
            assertThat(parent.slotPool().stats().getFirst().reclaimed()).as("counted as reclaimed").isEqualTo(1);
            assertThat(billing.poll(m -> { }, 10)).as("the message in the reused slot").isEqualTo(1);
            assertThat(channel.stats().corrupt()).isZero();
            assertThat(releaserPeer).isNotEqualTo(parent.peerId());
        } finally {
            children.forEach(ChildJvm::close);
        }
    }

    /** What the freer of the previous lap's payload does while the next lap's producer is recovered. */
    private enum Freer { DIED, STALLED, RUNS }

    /**
     * The next lap's producer (another process) waits on a freer that holds the previous lap's release
     * word, and dies there; its recovery makes a skip of its sequence, after which the ring goes on
     * over the slot. The freer died first, its own recovery held up: the producer's recovery finishes
     * the dead freer's release (once the slot is a skip, the next lap's producer writes its own bytes
     * where the freer's recovery would read the reference to free).
     */
    @Test
    void aDeadFreerIsFinishedByTheRecoveryOfTheProducerWaitingOnIt() throws Exception {
        producerDiesWaitingOnAFreer(Freer.DIED);
    }

    /**
     * As above, with the freer stopped (SIGSTOP) past the liveness timeout: nothing is taken from a
     * stalled peer, so the recovery leaves its word beside the skip. The ring goes on over the slot,
     * and the pool send of the lap after the skip, which needs the slot's release entry, waits for the
     * freer; the freer then dies, its own recovery frees the payload by the reference its entry kept,
     * and the send goes on.
     */
    @Test
    void aFreerStalledThroughTheRecoveryOfTheProducerWaitingOnItHasThePayloadFreedByItsOwnRecovery()
            throws Exception {
        producerDiesWaitingOnAFreer(Freer.STALLED);
    }

    /**
     * As above, with a freer that runs normally and keeps the word: the recovery waits for it half a
     * heartbeat interval at most (it runs on the monitor thread, which writes its process's heartbeat:
     * waiting up to the liveness timeout made the recovering process look stalled), then leaves the
     * word to it; the freer dies later, and its own recovery frees the payload.
     */
    @Test
    void aFreerThatRunsButKeepsTheWordIsLeftToItAndToItsOwnRecovery() throws Exception {
        producerDiesWaitingOnAFreer(Freer.RUNS);
    }

    private void producerDiesWaitingOnAFreer(Freer freer) throws Exception {
        directory = shm.directory("bus");
        int capacity = ChannelProcessesTest.CHANNEL_OPTIONS.capacity();
        try (Segment parent = Segment.open(ChannelProcessesTest.segmentOptions(directory), "test");
             Channel channel = Channel.declare(parent, ChannelChild.CHANNEL, ChannelProcessesTest.CHANNEL_OPTIONS);
             Subscription billing = channel.subscribe("billing", true)) {
            Ring ring = ChannelProcessesTest.ring(channel);
            MemorySegment pooled = MemorySegment.ofArray(new byte[300]);
            MemorySegment inline = MemorySegment.ofArray(new byte[20]);
            assertThat(channel.send(pooled, 0, 300)).isEqualTo(SendOutcome.SENT);
            long sequence = ring.cursor() - 1;
            long slot = ring.slot(sequence);
            long ref = ring.memory.get(ValueLayout.JAVA_LONG, slot + RingDescriptor.SLOT_BODY_OFFSET);
            ChildJvm releaser = child("release-and-hold", Long.toString(sequence));
            int releaserPeer = Integer.parseInt(releaser.awaitLine("RELEASING", LINE));
            assertThat(billing.poll(m -> { }, 10)).isEqualTo(1);
            for (int i = 0; i < capacity - 1; i++) {
                assertThat(channel.send(inline, 0, 20)).isEqualTo(SendOutcome.SENT);
                assertThat(billing.poll(m -> { }, 10)).isEqualTo(1);
            }
            AutoCloseable heldRecovery = null;
            if (freer == Freer.DIED) {
                // This process holds the freer's recovery (from before the other processes start, so
                // that none of them claims it first); another process recovers the producer.
                heldRecovery = TestSegments.killAndHoldRecovery(parent, releaserPeer, releaser::kill, LINE);
                child("attach").awaitLine("READY", LINE);
            } else if (freer == Freer.STALLED) {
                releaser.signal("STOP");
                long deadline = System.nanoTime() + LINE.toNanos();
                while (parent.peer(releaserPeer).liveness() != Liveness.STALLED) {
                    assertThat(System.nanoTime() - deadline).as("the freer stalls").isNegative();
                    Thread.sleep(5);
                }
            }
            try {
                // The next lap's producer claims the slot, then waits on the freer (one that runs for the
                // liveness timeout at most: it is killed at once).
                ChildJvm claimer = child("claim-and-hold", "false");
                long next = sequence + capacity;
                awaitHeader(ring, slot, next, RingDescriptor.WRITING);
                claimer.kill();
                awaitHeader(ring, slot, next, RingDescriptor.SKIP);
                if (freer == Freer.DIED) {
                    assertThat(parent.slotPool().isCurrent(ref)).as("freed by the producer's recovery").isFalse();
                } else {
                    assertThat(parent.slotPool().isCurrent(ref)).as("left to the freer").isTrue();
                }
                // The ring goes on over the slot before the dead freer's recovery runs.
                for (int i = 0; freer == Freer.DIED && i < capacity; i++) {
                    assertThat(channel.send(i % 2 == 0 ? pooled : inline, 0, i % 2 == 0 ? 300 : 20))
                            .isEqualTo(SendOutcome.SENT);
                    assertThat(billing.poll(m -> { }, 10)).isEqualTo(1);
                }
            } finally {
                if (heldRecovery != null) {
                    heldRecovery.close();
                }
            }
            if (freer == Freer.STALLED) {
                // The lap after the skip, up to the slot, then a pool send into it: it waits on the
                // stalled freer's word rather than write over its entry.
                for (int i = 0; i < capacity - 1; i++) {
                    assertThat(channel.send(inline, 0, 20)).isEqualTo(SendOutcome.SENT);
                    assertThat(billing.poll(m -> { }, 10)).isEqualTo(1);
                }
                MemorySegment later = MemorySegment.ofArray(new byte[300]);
                later.fill((byte) 7);
                java.util.concurrent.CompletableFuture<SendOutcome> reuse = java.util.concurrent.CompletableFuture
                        .supplyAsync(() -> channel.send(later, 0, 300));
                assertThatThrownBy(() -> reuse.get(300, java.util.concurrent.TimeUnit.MILLISECONDS))
                        .as("the pool send into the slot waits for the stalled freer")
                        .isInstanceOf(java.util.concurrent.TimeoutException.class);
                assertThat(parent.slotPool().isCurrent(ref)).isTrue();
                releaser.kill();
                assertThat(reuse.get(LINE.toSeconds(), java.util.concurrent.TimeUnit.SECONDS)).isEqualTo(SendOutcome.SENT);
                assertThat(ring.slot(ring.cursor() - 1)).as("the send went into the freer's slot").isEqualTo(slot);
                List<byte[]> received = new ArrayList<>();
                assertThat(billing.poll(m -> received.add(m.toByteArray()), 10)).isEqualTo(1);
                assertThat(received.getFirst()).hasSize(300).containsOnly((byte) 7);
            }
            releaser.kill();
            long deadline = System.nanoTime() + LINE.toNanos();
            while (parent.slotPool().isCurrent(ref) || parent.peer(releaserPeer).state() != PeerState.EMPTY) {
                assertThat(System.nanoTime() - deadline).as("the freer's recovery").isNegative();
                Thread.sleep(5);
            }
            assertThat(parent.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
            assertThat(parent.slotPool().stats().getFirst().reclaimed()).as("counted as reclaimed").isEqualTo(1);
            assertThat(channel.send(pooled, 0, 300)).isEqualTo(SendOutcome.SENT);
            assertThat(billing.poll(m -> { }, 10)).isEqualTo(1);
            assertThat(parent.slotPool().stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
            assertThat(channel.stats().corrupt()).isZero();
        } finally {
            children.forEach(ChildJvm::close);
        }
    }

    private static void awaitHeader(Ring ring, long slot, long sequence, int state) throws InterruptedException {
        long deadline = System.nanoTime() + LINE.toNanos();
        long h;
        while (!RingDescriptor.isTag(h = ring.header(slot), sequence) || RingDescriptor.state(h) != state) {
            assertThat(System.nanoTime() - deadline).as("sequence %d in state %d; header 0x%x", sequence, state, h)
                    .isNegative();
            Thread.sleep(2);
        }
    }

    private static Channel.GroupStats group(Channel.Stats stats, String name) {
        return stats.groups().stream().filter(g -> g.name().equals(name)).findFirst().orElseThrow();
    }

    @Test
    void aProducerKilledBetweenClaimAndPublishLeavesASkipAndStallsNobodyPastRecovery() throws Exception {
        killedClaimer(false);
    }

    @Test
    void aProducerKilledBeforeItsSlotNamesItIsSkippedAfterTheLivenessTimeout() throws Exception {
        killedClaimer(true);
    }

    private void killedClaimer(boolean unmarked) throws Exception {
        directory = shm.directory("bus");
        try (Segment parent = Segment.open(ChannelProcessesTest.segmentOptions(directory), "test");
             Channel channel = Channel.declare(parent, ChannelChild.CHANNEL, ChannelProcessesTest.CHANNEL_OPTIONS);
             Subscription subscription = channel.subscribe("billing", true)) {
            ChildJvm claimer = child("claim-and-hold", Boolean.toString(unmarked));
            long claimed = Long.parseLong(claimer.awaitLine("CLAIMED", LINE));
            MemorySegment buffer = MemorySegment.ofArray(new long[8]);
            ChannelChild.fill(buffer, 3, 1, 40);
            assertThat(channel.send(buffer, 0, 40)).isEqualTo(SendOutcome.SENT);
            assertThat(subscription.poll(m -> { }, 10)).as("the hole comes first").isZero();

            claimer.kill();
            List<Long> sequences = new ArrayList<>();
            long deadline = System.nanoTime() + LINE.toNanos();
            while (sequences.isEmpty() && System.nanoTime() < deadline) {
                subscription.take(m -> {
                    assertThat(m.buffer().get(ValueLayout.JAVA_LONG_UNALIGNED, m.offset() + 8))
                            .isEqualTo(ChannelChild.checksum(m.buffer(), m.offset(), m.length()));
                    sequences.add(m.sequence());
                }, 10, Duration.ofMillis(100));
            }
            assertThat(sequences).as("the message behind the hole").containsExactly(claimed + 1);
            Channel.Stats stats = channel.stats();
            assertThat(stats.skips()).isEqualTo(1);
            assertThat(stats.groups().getFirst().lag()).isZero();
            assertThat(stats.groups().getFirst().consumed()).as("the skip and the message").isEqualTo(2);
            assertThat(channel.send(buffer, 0, 40)).as("the ring moves on").isEqualTo(SendOutcome.SENT);
            assertThat(subscription.poll(m -> sequences.add(m.sequence()), 10)).isEqualTo(1);
            assertThat(sequences).containsExactly(claimed + 1, claimed + 2);
        }
    }

    /**
     * What each process that counted damage said about it (the ring logs every count): the lines of
     * this run's child logs, and this JVM's own went to its output.
     */
    private static String corruptReasons() {
        StringBuilder reasons = new StringBuilder("; what the children counted:");
        String mine = "-" + ProcessHandle.current().pid() + "-";
        try (var logs = Files.list(Path.of("target", "child-logs"))) {
            for (Path log : logs.filter(l -> l.getFileName().toString().contains(mine)).toList()) {
                for (String line : Files.readAllLines(log)) {
                    if (line.contains("counted in its corrupt")) {
                        reasons.append(System.lineSeparator()).append(log.getFileName()).append(": ").append(line);
                    }
                }
            }
        } catch (java.io.IOException | java.io.UncheckedIOException e) {
            reasons.append(" (the child logs cannot be read: ").append(e).append(')');
        }
        return reasons.toString();
    }
}
