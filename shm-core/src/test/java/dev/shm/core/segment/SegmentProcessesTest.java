package dev.shm.core.segment;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.ShmTimeoutException;
import dev.shm.core.counters.SegmentCounters;
import dev.shm.core.lane.Lane;
import dev.shm.core.lane.LaneDescriptor;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.memory.MemfdBuffer;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.pool.SlotPoolDescriptor;
import dev.shm.core.testing.ChildJvm;
import dev.shm.core.testing.ShmDirectory;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.function.IntSupplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The segment across real processes: child JVMs attach, race, churn, grow, stall and get killed. */
class SegmentProcessesTest {

    /** Kill-test rounds; the {@code soak} profile raises it to 1000. */
    private static final int KILL_ITERATIONS = Integer.getInteger("shm.test.killIterations", 20);
    private static final Duration LINE = Duration.ofSeconds(60);

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private Path directory;
    private SegmentOptions options;

    @BeforeEach
    void options() {
        directory = shm.directory("segments");
        options = TestSegments.options(directory, "shared");
    }

    private ChildJvm child(String scenario, Object... args) {
        List<String> all = new ArrayList<>(List.of(scenario, directory.toString(), options.name()));
        for (Object arg : args) {
            all.add(String.valueOf(arg));
        }
        return ChildJvm.start(SegmentChild.class, all.toArray(String[]::new));
    }

    private static void closeAll(List<ChildJvm> children) {
        children.forEach(ChildJvm::close);
    }

    /** Four children attach and detach 40 times each, all at once, and exit cleanly. */
    private void attachAndDetachInFourChildren() {
        List<ChildJvm> children = new ArrayList<>();
        try {
            for (int i = 0; i < 4; i++) {
                children.add(child("attach-detach", 40));
            }
            children.forEach(c -> c.awaitLine("READY", LINE));
            children.forEach(c -> c.send("GO"));
            for (ChildJvm c : children) {
                c.awaitLine("DONE", LINE);
                assertThat(c.awaitExit(LINE)).as(c.output()).isZero();
            }
        } finally {
            closeAll(children);
        }
    }

    @Test
    void childrenAttachAndDetachConcurrentlyWhileAnObserverStays() {
        try (Segment observer = Segment.open(options, "observer")) {
            attachAndDetachInFourChildren();
            assertThat(observer.peers()).allSatisfy(peer -> {
                if (peer.id() == observer.peerId()) {
                    assertThat(peer.state()).isEqualTo(PeerState.ATTACHED);
                } else {
                    assertThat(peer.state()).as("entry %d", peer.id()).isEqualTo(PeerState.EMPTY);
                    assertThat(peer.pid()).isZero();
                }
            });
            assertPoolFull(observer);
            assertThat(observer.counters().get(SegmentCounters.PEERS_RECOVERED)).as("nobody died").isZero();
            assertThat(observer.counters().get(SegmentCounters.STALE_FREES_REJECTED)).isZero();
        }
        assertThat(Files.exists(options.path())).isFalse();
    }

    @Test
    void childrenCreateAttachAndRemoveTheSegmentConcurrently() {
        attachAndDetachInFourChildren();
        assertThat(Files.exists(options.path())).as("the last one out removed it").isFalse();
        try (Stream<Path> files = Files.list(directory)) {
            assertThat(files).as("no temporary files left").isEmpty();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    void childrenCreatingAtOnceEndWithOneSegment() {
        List<ChildJvm> children = new ArrayList<>();
        try {
            for (int i = 0; i < 5; i++) {
                children.add(child("create-race"));
            }
            children.forEach(c -> c.awaitLine("READY", LINE));
            children.forEach(c -> c.send("GO"));
            List<String[]> reports = new ArrayList<>();
            for (ChildJvm c : children) {
                reports.add(c.awaitLine("ATTACHED", LINE).split(" "));
            }
            assertThat(reports).filteredOn(r -> r[0].equals("true")).as("creators").hasSize(1);
            assertThat(reports).extracting(r -> r[1]).as("inodes").containsOnly(reports.getFirst()[1]);
            assertThat(reports).extracting(r -> r[2]).as("peer ids").doesNotHaveDuplicates();
            try (SegmentInspector inspector = SegmentInspector.open(options.path())) {
                assertThat(inspector.peers()).filteredOn(p -> p.state() == PeerState.ATTACHED).hasSize(5);
            }
            children.forEach(c -> c.send("EXIT"));
            for (ChildJvm c : children) {
                assertThat(c.awaitExit(LINE)).as(c.output()).isZero();
            }
        } finally {
            closeAll(children);
        }
        assertThat(Files.exists(options.path())).isFalse();
    }

    /**
     * A child holding slots, lane frames (inline and slot references) and a memfd lease is killed
     * with SIGKILL at random moments — during its start and attach, or while it churns — and the
     * parent's monitor must recover everything, every time.
     */
    @Test
    void killedChildrenAreRecoveredCompletelyEveryTime() {
        SplittableRandom random = new SplittableRandom();
        try (Segment parent = Segment.open(options, "parent")) {
            int sink = parent.directory().declare("sink", DirectoryDescriptor.SERVICE, new String[0], new long[0],
                    index -> new long[] {0, 0});
            assertThat(parent.directory().provide(sink)).isTrue();
            ChildJvm next = child("hold", random.nextLong());
            int killedHolding = 0;
            for (int round = 0; round < KILL_ITERATIONS; round++) {
                ChildJvm current = next;
                next = round + 1 < KILL_ITERATIONS ? child("hold", random.nextLong()) : null;
                long recoveredBefore = parent.counters().get(SegmentCounters.PEERS_RECOVERED);
                long reclaimedBefore = parent.counters().get(SegmentCounters.SLOTS_RECLAIMED);
                long lanesBefore = parent.counters().get(SegmentCounters.LANES_RESET);
                long leasesBefore = parent.counters().get(SegmentCounters.LEASES_DROPPED);
                try (current) {
                    current.awaitLine("READY", LINE);
                    current.send("GO");
                    boolean duringAttach = round % 4 == 3;
                    int peer = -1;
                    if (!duringAttach) {
                        peer = Integer.parseInt(current.awaitLine("HOLDING", LINE).split(" ")[0]);
                    }
                    // A random moment: while attaching and taking resources, or while churning them.
                    pause(random.nextInt(duringAttach ? 300 : 50));
                    current.kill();
                    awaitTrue("the killed child's entry is recovered", () -> onlyParentAttached(parent));
                    assertPoolFull(parent);
                    assertThat(parent.lanes().lanes()).extracting(LaneTable.LaneInfo::state).containsOnly("EMPTY");
                    assertThat(parent.leases().leases()).isEmpty();
                    if (!duringAttach) {
                        killedHolding++;
                        assertThat(parent.peer(peer).state()).isEqualTo(PeerState.EMPTY);
                        assertThat(parent.counters().get(SegmentCounters.PEERS_RECOVERED)).isEqualTo(recoveredBefore + 1);
                        // How many it held at the kill varies as it churns; the five slots it sent first
                        // are still in the lane, since the parent never reads it.
                        assertThat(parent.counters().get(SegmentCounters.SLOTS_RECLAIMED))
                                .as("slots reclaimed").isGreaterThanOrEqualTo(reclaimedBefore + 5);
                        assertThat(parent.slotPool().stats().stream().mapToLong(SlotPool.ClassStats::reclaimed).sum())
                                .as("reclaimed per class adds up to the segment's count")
                                .isEqualTo(parent.counters().get(SegmentCounters.SLOTS_RECLAIMED));
                        assertThat(parent.counters().get(SegmentCounters.LANES_RESET)).isEqualTo(lanesBefore + 1);
                        assertThat(parent.counters().get(SegmentCounters.LEASES_DROPPED)).isEqualTo(leasesBefore + 1);
                    }
                    assertThat(parent.monitorFailure()).isNull();
                } catch (AssertionError | RuntimeException e) {
                    if (next != null) {
                        next.close();
                    }
                    throw e;
                }
            }
            assertThat(killedHolding).isGreaterThanOrEqualTo(KILL_ITERATIONS / 2);
            // The entries are reusable: a full table's worth of peers attaches again.
            List<Segment> again = new ArrayList<>();
            try {
                for (int i = 1; i < options.maxPeers(); i++) {
                    again.add(Segment.open(options, "again-" + i));
                }
            } finally {
                again.forEach(Segment::close);
            }
        }
    }

    @Test
    void aStoppedChildIsReportedStalledNotRecoveredAndCarriesOnAfterContinue() {
        try (Segment parent = Segment.open(options, "parent");
             ChildJvm staller = child("stall")) {
            int peer = Integer.parseInt(staller.awaitLine("READY", LINE));
            assertThat(parent.slotPool().ownedBy(peer)).isEqualTo(5);
            long stallsBefore = parent.counters().get(SegmentCounters.STALLS_DETECTED);
            staller.signal("STOP");
            try {
                awaitTrue("the stopped child is reported stalled", () -> parent.peer(peer).liveness() == Liveness.STALLED
                        && parent.counters().get(SegmentCounters.STALLS_DETECTED) == stallsBefore + 1);
                // Several more monitor rounds: stalled is reported once and never taken for dead.
                long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(500);
                while (System.nanoTime() < until) {
                    PeerInfo info = parent.peer(peer);
                    assertThat(info.state()).isEqualTo(PeerState.ATTACHED);
                    assertThat(info.liveness()).isEqualTo(Liveness.STALLED);
                    assertThat(parent.slotPool().ownedBy(peer)).isEqualTo(5);
                    pause(20);
                }
                assertThat(parent.counters().get(SegmentCounters.STALLS_DETECTED)).isEqualTo(stallsBefore + 1);
                assertThat(parent.counters().get(SegmentCounters.PEERS_RECOVERED)).isZero();
                try (SegmentInspector inspector = SegmentInspector.open(options.path())) {
                    assertThat(inspector.peers().get(peer).liveness()).isEqualTo(Liveness.STALLED);
                }
            } finally {
                staller.signal("CONT");
            }
            awaitTrue("the continued child is alive again", () -> parent.peer(peer).liveness() == Liveness.ALIVE);
            staller.send("CHECK");
            staller.awaitLine("INTACT", LINE);
            assertThat(staller.awaitExit(LINE)).as(staller.output()).isZero();
            assertThat(parent.peer(peer).state()).isEqualTo(PeerState.EMPTY);
            assertPoolFull(parent);
        }
    }

    /**
     * The monitor trusts a fresh heartbeat without looking at the peer's lock; a heartbeat from the
     * future (another clock) is never fresh. A child is stopped, its heartbeat set an hour ahead,
     * then killed: its lock is gone, and the monitor must still find that out.
     */
    @Test
    void aKilledPeerIsRecoveredEvenWhenItsHeartbeatLiesInTheFuture() throws ReflectiveOperationException {
        try (Segment parent = Segment.open(options, "parent");
             ChildJvm staller = child("stall")) {
            int peer = Integer.parseInt(staller.awaitLine("READY", LINE));
            staller.signal("STOP"); // its monitor writes no more heartbeats
            setHeartbeat(parent, peer, System.nanoTime() + TimeUnit.HOURS.toNanos(1));
            staller.kill();
            awaitTrue("the killed child is recovered", () -> onlyParentAttached(parent));
            assertThat(parent.counters().get(SegmentCounters.PEERS_RECOVERED)).isEqualTo(1);
            assertPoolFull(parent);
        }
    }

    /**
     * A process stopped (SIGSTOP) while it holds one of the segment's file locks holds up the others
     * only up to the lock patience (here 500 ms, the system property the tests shorten it with): a
     * declaration that needs the lock fails with a {@link ShmTimeoutException} that says why, instead
     * of waiting in the kernel for as long as the holder stays stopped. Once it goes on and lets go,
     * the declaration succeeds.
     */
    @Test
    void aLockHeldByAStoppedProcessFailsItsWaitersAfterThePatience() {
        try (Segment parent = Segment.open(options, "parent");
             ChildJvm locker = child("hold-directory-lock")) {
            locker.awaitLine("LOCKED", LINE);
            locker.signal("STOP");
            String previous = System.setProperty("shm.lockPatienceMillis", "500");
            try {
                assertThatThrownBy(() -> parent.directory().declare("late", DirectoryDescriptor.SERVICE, new String[0],
                        new long[0], index -> new long[] {0, 0}))
                        .isInstanceOf(ShmTimeoutException.class)
                        .hasMessageContaining("timed out after 500 ms")
                        .hasMessageContaining("lock on byte " + SegmentDescriptor.DIRECTORY_LOCK)
                        .hasMessageContaining("SIGSTOP");
            } finally {
                if (previous == null) {
                    System.clearProperty("shm.lockPatienceMillis");
                } else {
                    System.setProperty("shm.lockPatienceMillis", previous);
                }
            }
            locker.signal("CONT");
            locker.send("RELEASE");
            locker.awaitLine("RELEASED", LINE);
            assertThat(parent.directory().declare("late", DirectoryDescriptor.SERVICE, new String[0], new long[0],
                    index -> new long[] {0, 0})).isNotNegative();
            locker.send("EXIT");
            assertThat(locker.awaitExit(LINE)).isZero();
        }
    }

    /**
     * A step of a recovery that meets damage (here the lane table entry of the killed child's pair
     * states an impossible capacity) is counted, and the other steps still run at once: the child's
     * pool slots, memfd lease and entry are freed in the same round, and the monitor records no
     * failure. (Before, the round failed and was tried again; with damage that stays, it would fail
     * every time and free nothing.)
     */
    @Test
    void aRecoveryStepThatMeetsDamageIsCountedAndTheOtherStepsStillRun() throws IOException {
        try (Segment parent = Segment.open(options, "parent")) {
            int sink = parent.directory().declare("sink", DirectoryDescriptor.SERVICE, new String[0], new long[0],
                    index -> new long[] {0, 0});
            assertThat(parent.directory().provide(sink)).isTrue();
            try (ChildJvm holder = child("hold", 1L)) {
                holder.awaitLine("READY", LINE);
                holder.send("GO");
                int peer = Integer.parseInt(holder.awaitLine("HOLDING", LINE).split(" ")[0]);
                int lane = parent.lanes().lanes().stream().filter(l -> l.client() == peer).findFirst().orElseThrow()
                        .index();
                try (FileChannel file = FileChannel.open(options.path(), StandardOpenOption.READ,
                        StandardOpenOption.WRITE)) {
                    ByteBuffer word = ByteBuffer.allocate(8).order(ByteOrder.nativeOrder());
                    file.read(word, SegmentDescriptor.LANE_TABLE_OFFSET_OFFSET);
                    long table = word.flip().getLong();
                    file.write(ByteBuffer.allocate(4).order(ByteOrder.nativeOrder()).putInt(0, 3),
                            table + (long) lane * LaneDescriptor.ENTRY_LENGTH + LaneDescriptor.CAPACITY_OFFSET);
                }
                long corruptBefore = parent.counters().get(SegmentCounters.CORRUPT_FRAMES_REJECTED);
                holder.kill();
                awaitTrue("the killed child is recovered", () -> onlyParentAttached(parent));
                assertThat(parent.counters().get(SegmentCounters.CORRUPT_FRAMES_REJECTED)).as("the damaged lane")
                        .isGreaterThan(corruptBefore);
                assertThat(parent.counters().get(SegmentCounters.PEERS_RECOVERED)).isEqualTo(1);
                assertPoolFull(parent);
                assertThat(parent.leases().leases()).as("its memfd lease").isEmpty();
                assertThat(parent.monitorFailure()).as("a round that failed").isNull();
            }
        }
    }

    /**
     * A reservation names its reserver as actor, and counts as alive while that peer's process runs.
     * Once the reserver is dead and recovered, its id is free, and the next process to attach takes
     * it: the reservation must not look alive for as long as that unrelated process lives. (The
     * parent's monitor is slowed to a round a minute so that the walk-in attaches between the two
     * recoveries, as it may between two rounds, where one round would recover both.)
     */
    @Test
    void aReservationOfAKilledPeerIsRecoveredEvenOnceItsIdIsTakenAgain() {
        SegmentOptions slow = options.withLiveness(Duration.ofMinutes(1), Duration.ofMinutes(2));
        try (Segment parent = Segment.open(slow, "parent");
             ChildJvm reserver = child("reserve-slow")) {
            String[] ids = reserver.awaitLine("RESERVED", LINE).split(" ");
            int dead = Integer.parseInt(ids[0]);
            int reserved = Integer.parseInt(ids[1]);
            assertThat(parent.peer(reserved).liveness()).isEqualTo(Liveness.ALIVE);
            reserver.kill();
            assertThat(parent.recover(dead)).as("the reserver recovered").isTrue();
            assertThat(parent.peer(reserved).state()).as("not yet looked at").isEqualTo(PeerState.RESERVED);
            try (Segment walkIn = Segment.open(slow, "walk-in")) {
                assertThat(walkIn.peerId()).as("the dead reserver's id, taken again").isEqualTo(dead);
                // Dead, or already recovered by the walk-in's own monitor, whose first round runs at once.
                assertThat(parent.peer(reserved).liveness()).as("the reservation of a dead peer")
                        .isIn(Liveness.DEAD, Liveness.NONE);
                parent.recoverDeadPeers();
                awaitTrue("the reservation is recovered", () -> parent.peer(reserved).state() == PeerState.EMPTY);
            }
        }
    }

    /** The same for a reserver that detached cleanly, leaving a reservation nobody claimed. */
    @Test
    void aReservationOfADetachedPeerIsRecoveredEvenOnceItsIdIsTakenAgain() {
        int reserverId;
        int reserved;
        try (Segment reserver = Segment.open(options, "reserver")) {
            reserverId = reserver.peerId();
            reserved = reserver.reservePeer();
        }
        try (Segment walkIn = Segment.open(options, "walk-in")) {
            assertThat(walkIn.peerId()).as("the reserver's id, taken again").isEqualTo(reserverId);
            awaitTrue("the reservation nobody claimed is recovered",
                    () -> walkIn.peer(reserved).state() == PeerState.EMPTY);
        }
    }

    /**
     * A recovery that fails part-way (a participant throws; here an {@code Error}, as a class that
     * cannot be loaded for want of a descriptor would) is given up, not left RECOVERING by a live
     * recoverer that nobody takes over: the monitor records the failure, carries on with the other
     * peers, and recovers the failing one completely once its recovery can run, counting nothing
     * twice.
     */
    @Test
    void aRecoveryThatFailsPartWayIsTriedAgainAndTheMonitorCarriesOn() {
        try (Segment parent = Segment.open(options, "parent");
             ChildJvm first = child("stall");
             ChildJvm second = child("stall")) {
            int a = Integer.parseInt(first.awaitLine("READY", LINE));
            int b = Integer.parseInt(second.awaitLine("READY", LINE));
            int failing = Math.min(a, b); // looked at first in each round
            AtomicBoolean fail = new AtomicBoolean(true);
            AtomicInteger failures = new AtomicInteger();
            parent.addRecoveryParticipant(dead -> {
                if (dead == failing && fail.get()) {
                    failures.incrementAndGet();
                    throw new NoClassDefFoundError("a class that cannot be loaded now");
                }
            });
            first.kill();
            second.kill();
            int other = Math.max(a, b);
            awaitTrue("the other killed child is recovered while the first one's recovery fails",
                    () -> parent.peer(other).state() == PeerState.EMPTY && failures.get() >= 2);
            assertThat(parent.peer(failing).state()).as("given up, to be claimed again").isEqualTo(PeerState.ATTACHED);
            assertThat(parent.peer(failing).liveness()).isEqualTo(Liveness.DEAD);
            assertThat(parent.monitorFailure()).hasMessageContaining("failed a round")
                    .hasRootCauseMessage("a class that cannot be loaded now");

            fail.set(false);
            awaitTrue("the failing child is recovered once its recovery can run", () -> onlyParentAttached(parent));
            assertThat(parent.counters().get(SegmentCounters.PEERS_RECOVERED)).isEqualTo(2);
            assertThat(parent.counters().get(SegmentCounters.SLOTS_RECLAIMED))
                    .as("five slots each, counted once though the first recovery ran more than once").isEqualTo(10);
            assertPoolFull(parent);
        }
    }

    private static void setHeartbeat(Segment segment, int peer, long value) throws ReflectiveOperationException {
        java.lang.reflect.Field memoryField = Segment.class.getDeclaredField("memory");
        memoryField.setAccessible(true);
        PeerTable peers = ((SegmentMemory) memoryField.get(segment)).peers;
        java.lang.reflect.Field tableMemory = PeerTable.class.getDeclaredField("memory");
        tableMemory.setAccessible(true);
        java.lang.reflect.Method entry = PeerTable.class.getDeclaredMethod("entry", int.class);
        entry.setAccessible(true);
        long at = (long) entry.invoke(peers, peer) + PeerDescriptor.HEARTBEAT_OFFSET;
        ((MemorySegment) tableMemory.get(peers)).set(ValueLayout.JAVA_LONG, at, value);
    }

    /**
     * Two processes with four threads each allocate and free, marking each slot with its holder and
     * checking the mark before freeing: a slot handed out twice shows as a changed mark. The child is
     * stopped and continued (SIGSTOP, SIGCONT) at random moments meanwhile.
     */
    @Test
    void twoProcessesAllocateAndFreeConcurrentlyWithoutDoubleAllocationOrLeak() throws InterruptedException {
        int threads = 4;
        int iterations = 200_000;
        try (Segment parent = Segment.open(options, "parent");
             ChildJvm churner = child("churn", threads, iterations)) {
            churner.awaitLine("READY", LINE);
            churner.send("GO");
            AtomicLong violations = new AtomicLong();
            AtomicLong allocations = new AtomicLong();
            List<Thread> workers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int thread = t;
                workers.add(Thread.ofPlatform().start(() -> SegmentChild.churnLoop(parent.slotPool(), thread,
                        iterations, violations, allocations)));
            }
            // Freeze the child now and then, mid-operation: its half-done pops and pushes must be
            // finished by the parent's threads (helping), and its stale helpers harmless when it resumes.
            SplittableRandom random = new SplittableRandom();
            for (int stop = 0; stop < 10 && workers.stream().anyMatch(Thread::isAlive); stop++) {
                churner.signal("STOP");
                pause(random.nextInt(1, 20));
                churner.signal("CONT");
                pause(random.nextInt(1, 20));
            }
            for (Thread worker : workers) {
                worker.join();
            }
            String[] childResult = churner.awaitLine("DONE", LINE).split(" ");
            assertThat(violations.get()).as("double allocations or refused frees seen by the parent").isZero();
            assertThat(Long.parseLong(childResult[0])).as("... seen by the child").isZero();
            assertThat(allocations.get()).isGreaterThan(iterations);
            assertThat(Long.parseLong(childResult[1])).isGreaterThan(iterations);
            churner.send("EXIT");
            assertThat(churner.awaitExit(LINE)).as(churner.output()).isZero();
            assertPoolFull(parent);
            assertThat(parent.counters().get(SegmentCounters.STALE_FREES_REJECTED)).isZero();
            assertThat(parent.counters().get(SegmentCounters.PEERS_RECOVERED)).isZero();
        }
    }

    @Test
    void slotsAddedByAnotherProcessAreSeenAndUsed() {
        try (Segment parent = Segment.open(options, "parent");
             ChildJvm grower = child("grow", 64)) {
            SlotPool pool = parent.slotPool();
            String[] grew = grower.awaitLine("GREW", LINE).split(" ");
            assertThat(Long.parseLong(grew[0])).isEqualTo(128);
            assertThat(pool.stats().getFirst().total()).isEqualTo(128);
            long extentsBefore = parent.counters().get(SegmentCounters.EXTENTS_ADDED);
            List<Long> refs = new ArrayList<>();
            Set<Integer> indexes = new HashSet<>();
            for (int i = 0; i < 128; i++) {
                long ref = pool.allocateFromClass(0);
                assertThat(ref).as("allocation %d", i).isNotNegative();
                pool.data(ref).set(ValueLayout.JAVA_LONG, 0, i);
                refs.add(ref);
                indexes.add(SlotPoolDescriptor.refIndex(ref));
            }
            assertThat(indexes).hasSize(128).anyMatch(index -> index >= 64);
            for (int i = 0; i < refs.size(); i++) {
                assertThat(pool.data(refs.get(i)).get(ValueLayout.JAVA_LONG, 0)).isEqualTo(i);
                assertThat(pool.free(refs.get(i))).isTrue();
            }
            assertThat(parent.counters().get(SegmentCounters.EXTENTS_ADDED)).as("the parent grew nothing itself")
                    .isEqualTo(extentsBefore);
            grower.send("EXIT");
            assertThat(grower.awaitExit(LINE)).as(grower.output()).isZero();
            assertPoolFull(parent);
        }
    }

    /**
     * A lane pair between two processes carries inline frames, slot references and memfd references
     * both ways across many wraps; a stale slot or lease reference is refused by the reader.
     */
    @Test
    void lanesCarryEveryFrameKindBetweenProcessesAndRefuseStaleReferences() {
        try (Segment client = Segment.open(options, "client");
             ChildJvm server = child("serve");
             MemfdBuffer buffer = MemfdBuffer.create("big-request", 4096)) {
            server.awaitLine("READY", LINE);
            int service = client.directory().lookup("echo").orElseThrow();
            LaneTable.LanePair pair = client.lanes().open(service, client.directory().entry(service).provider());
            LeaseTable.Lease registered = client.leases().register(buffer);
            SlotPool pool = client.slotPool();
            List<String> expected = new ArrayList<>();
            List<String> replies = new ArrayList<>();
            for (int round = 0; round < 300; round++) {
                byte[] text = ("request-" + round).getBytes(StandardCharsets.UTF_8);
                offer(() -> pair.toService().offerInline(MemorySegment.ofArray(text), 0, text.length), pair, replies);
                expected.add("inline:request-" + round);
                long ref = pool.allocate(200);
                pool.data(ref).set(ValueLayout.JAVA_LONG, 0, round);
                offer(() -> pair.toService().offerSlot(ref, 200), pair, replies);
                expected.add("slot:" + round + "/200");
                int at = 8 * round; // a fresh place each round: the server may lag many rounds behind
                buffer.putLong(at, round);
                offer(() -> pair.toService().offerMemfd(registered.index(), registered.generation(), at, 8), pair,
                        replies);
                expected.add("memfd:" + round + "/8");
            }
            long freed = pool.allocate(10);
            assertThat(pool.free(freed)).isTrue();
            offer(() -> pair.toService().offerSlot(freed, 10), pair, replies);
            expected.add("stale-slot");
            offer(() -> pair.toService().offerMemfd(registered.index(), registered.generation() + 1, 0, 8), pair,
                    replies);
            expected.add("stale-lease");
            byte[] bye = "bye".getBytes(StandardCharsets.UTF_8);
            offer(() -> pair.toService().offerInline(MemorySegment.ofArray(bye), 0, bye.length), pair, replies);
            expected.add("inline:bye");
            awaitTrue("every reply", () -> {
                drain(pair, replies);
                return replies.size() >= expected.size();
            });
            assertThat(replies).containsExactlyElementsOf(expected);
            server.awaitLine("SERVED", LINE);
            server.send("EXIT");
            assertThat(server.awaitExit(LINE)).as(server.output()).isZero();
            assertThat(pair.toClient().poll((type, payload) -> { }, 1)).as("its leaving reset the lanes")
                    .isEqualTo(Lane.RESET);
            assertThat(pool.ownedBy(client.peerId())).as("the server claimed and freed every slot").isZero();
            assertThat(client.counters().get(SegmentCounters.CORRUPT_FRAMES_REJECTED)).isZero();
            client.leases().release(registered);
            assertPoolFull(client);
        }
    }

    private static void offer(IntSupplier offer, LaneTable.LanePair pair, List<String> replies) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        int outcome;
        while ((outcome = offer.getAsInt()) == Lane.FULL) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("the lane stayed full for 10 s");
            }
            drain(pair, replies);
            Thread.onSpinWait();
        }
        assertThat(outcome).isEqualTo(Lane.OK);
    }

    private static void drain(LaneTable.LanePair pair, List<String> replies) {
        int polled = pair.toClient().poll((type, payload) -> replies.add(
                new String(payload.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8)), 64);
        assertThat(polled).isNotNegative();
    }

    /**
     * The owner of a shared slot dies: recovery frees its unshared slots but drops only its own
     * reference to the shared one, which stays readable until the other holders release it.
     */
    @Test
    void aSharedSlotOutlivesItsKilledOwnerUntilTheLastRelease() {
        try (Segment parent = Segment.open(options, "parent")) {
            SlotPool pool = parent.slotPool();
            long shared;
            long unshared;
            try (ChildJvm sharer = child("share")) {
                String[] refs = sharer.awaitLine("SHARED", LINE).split(" ");
                shared = Long.parseLong(refs[0]);
                unshared = Long.parseLong(refs[1]);
                assertThat(pool.referencesOf(shared)).isEqualTo(3);
                sharer.kill();
            }
            awaitTrue("the killed owner is recovered", () -> onlyParentAttached(parent));
            assertThat(pool.isCurrent(unshared)).as("its unshared slot was freed").isFalse();
            assertThat(pool.referencesOf(shared)).as("the owner's reference went with it").isEqualTo(2);
            assertThat(pool.ownerOf(shared)).isEqualTo(SlotPoolDescriptor.NO_PEER);
            assertThat(pool.data(shared).get(ValueLayout.JAVA_LONG, 0)).isEqualTo(77);
            assertThat(pool.free(shared)).as("free refuses a slot others reference").isFalse();
            assertThat(pool.release(shared)).isEqualTo(1);
            assertThat(pool.release(shared)).as("the last release frees it").isZero();
            assertThat(pool.isCurrent(shared)).isFalse();
            assertThat(pool.release(shared)).as("a release too many").isEqualTo(-1);
            assertPoolFull(parent);
        }
    }

    @Test
    void aStaleSegmentIsRecoveredAndReusedByDefault() throws Exception {
        leaveStaleSegment();
        Object inode = Files.getAttribute(options.path(), "unix:ino");
        try (Segment segment = Segment.open(options, "heir")) {
            assertThat(segment.isCreator()).isFalse();
            assertThat(Files.getAttribute(options.path(), "unix:ino")).isEqualTo(inode);
            assertThat(segment.directory().lookup("kept")).as("the directory survives").isPresent();
            assertThat(segment.counters().get(SegmentCounters.PEERS_RECOVERED)).isEqualTo(1);
            assertThat(segment.counters().get(SegmentCounters.SLOTS_RECLAIMED)).isEqualTo(1);
            assertThat(segment.peers()).filteredOn(p -> p.state() != PeerState.EMPTY).hasSize(1);
            assertPoolFull(segment);
        }
    }

    @Test
    void aStaleSegmentIsRecreatedWhenAskedTo() throws Exception {
        leaveStaleSegment();
        Object inode = Files.getAttribute(options.path(), "unix:ino");
        try (Segment segment = Segment.open(options.withStalePolicy(StalePolicy.RECREATE), "heir")) {
            assertThat(segment.isCreator()).isTrue();
            assertThat(Files.getAttribute(options.path(), "unix:ino")).isNotEqualTo(inode);
            assertThat(segment.directory().lookup("kept")).isEmpty();
            assertThat(segment.counters().get(SegmentCounters.PEERS_RECOVERED)).isZero();
        }
    }

    /** A child attaches, declares a channel, takes a slot and is killed: nobody else was there. */
    private void leaveStaleSegment() {
        try (ChildJvm squatter = child("squat")) {
            squatter.awaitLine("READY", LINE);
            squatter.kill();
        }
        try (SegmentInspector inspector = SegmentInspector.open(options.path())) {
            assertThat(inspector.isStale()).isTrue();
            assertThat(inspector.peers()).filteredOn(p -> p.state() == PeerState.ATTACHED).singleElement()
                    .satisfies(p -> assertThat(p.liveness()).isEqualTo(Liveness.DEAD));
        }
    }

    // ---------------------------------------------------------------- helpers

    private static boolean onlyParentAttached(Segment parent) {
        for (PeerInfo peer : parent.peers()) {
            if (peer.id() != parent.peerId() && peer.state() != PeerState.EMPTY) {
                return false;
            }
        }
        return true;
    }

    static void assertPoolFull(Segment segment) {
        for (SlotPool.ClassStats stats : segment.slotPool().stats()) {
            assertThat(stats.free()).as("free slots of class %d", stats.classIndex()).isEqualTo(stats.total());
            assertThat(stats.allocated()).isZero();
            assertThat(segment.slotPool().freeListLength(stats.classIndex())).as("free list of class %d",
                    stats.classIndex()).isEqualTo(stats.total());
        }
    }

    /** Polls until {@code condition} holds, for at most ten seconds. */
    private static void awaitTrue(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("not within 10 s: " + what);
            }
            pause(5);
        }
    }

    private static void pause(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }
}
