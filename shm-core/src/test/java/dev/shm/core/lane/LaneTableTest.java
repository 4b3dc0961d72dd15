package dev.shm.core.lane;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.segment.DirectoryDescriptor;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentOptions;
import dev.shm.core.segment.TestSegments;
import dev.shm.core.testing.ShmDirectory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Releasing a lane pair: one releaser at a time, whoever comes second (a client's close racing the
 * recovery of its provider, or two survivors), and recovery finishes the release of a releaser that
 * died part-way.
 */
class LaneTableTest {

    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private SegmentOptions options;

    @BeforeEach
    void options() {
        options = TestSegments.options(shm.directory("lanes"), "orders");
    }

    private static int service(Segment provider) {
        int service = provider.directory().declare("pricing", DirectoryDescriptor.SERVICE, new String[0], new long[0],
                index -> new long[] {0, 0});
        assertThat(provider.directory().provide(service)).isTrue();
        return service;
    }

    private static MemorySegment table(LaneTable lanes) throws ReflectiveOperationException {
        java.lang.reflect.Field field = LaneTable.class.getDeclaredField("table");
        field.setAccessible(true);
        return (MemorySegment) field.get(lanes);
    }

    private static long word(LaneTable lanes, int index) throws ReflectiveOperationException {
        return (long) LONG.getVolatile(table(lanes), (long) index * LaneDescriptor.ENTRY_LENGTH);
    }

    private static int offer(Lane lane, String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        return lane.offerInline(MemorySegment.ofArray(bytes), 0, bytes.length);
    }

    /**
     * A second releaser that read the pair's state before the first one released it, and gets to
     * work only after a new client opened the entry again, leaves the new pair alone: its requests
     * still reach the provider.
     */
    @Test
    void aSlowSecondReleaserLeavesAPairThatWasReleasedAndOpenedAgain() throws Exception {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            int service = service(provider);
            LaneTable.LanePair first = client.lanes().open(service, provider.peerId());
            long seen = word(provider.lanes(), first.index()); // what the slow releaser read: ACTIVE

            client.lanes().close(first); // the first releaser
            LaneTable.LanePair second = client.lanes().open(service, provider.peerId());
            assertThat(second.index()).isEqualTo(first.index());
            assertThat(offer(second.toService(), "request")).isEqualTo(Lane.OK);

            assertThat(provider.lanes().release(first.index(), seen, true, LaneTable.NO_PEER, System.nanoTime())).as("the slow releaser's turn").isFalse();

            List<String> received = new ArrayList<>();
            LaneTable.LanePair served = provider.lanes().lanesOf(service).getFirst();
            assertThat(served.toService().poll((type, payload) -> received.add(
                    new String(payload.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8)), 10)).isEqualTo(1);
            assertThat(received).containsExactly("request");
            assertThat(offer(second.toService(), "again")).isEqualTo(Lane.OK);
        }
    }

    /**
     * A frame whose handler throws stays in the lane, and so do the frames behind it: the exception
     * passes out of the poll, and the next poll hands the frame out again. The frames handled before
     * it in the same poll are consumed.
     */
    @Test
    void aFrameWhoseHandlerThrowsStaysInTheLaneForTheNextPoll() throws Exception {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            LaneTable.LanePair pair = client.lanes().open(service(provider), provider.peerId());
            Lane lane = pair.toService();
            for (String text : List.of("one", "two", "three")) {
                assertThat(offer(lane, text)).isEqualTo(Lane.OK);
            }
            List<String> read = new ArrayList<>();
            Lane.FrameHandler refusesTwo = (type, payload) -> {
                String text = new String(payload.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
                if (text.equals("two")) {
                    throw new IllegalStateException("not now");
                }
                read.add(text);
            };
            assertThatThrownBy(() -> lane.poll(refusesTwo, 16)).hasMessage("not now");
            assertThatThrownBy(() -> lane.poll(refusesTwo, 16)).hasMessage("not now");
            assertThat(read).containsExactly("one");
            assertThat(lane.hasFrames()).isTrue();
            assertThat(lane.poll((type, payload) -> read.add(
                    new String(payload.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8)), 16)).isEqualTo(2);
            assertThat(read).containsExactly("one", "two", "three");
            assertThat(offer(lane, "four")).as("the lane's in-flight word was let go").isEqualTo(Lane.OK);
            client.lanes().close(pair); // no in-flight reader to wait for
        }
    }

    /**
     * A releaser that died after taking the entry leaves it {@code RELEASING} with its id: its
     * recovery finishes the release, freeing the slot an unread frame references.
     */
    @Test
    void recoveryOfADeadReleaserFinishesItsRelease() throws Exception {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            int service = service(provider);
            LaneTable.LanePair pair = client.lanes().open(service, provider.peerId());
            long ref = client.slotPool().allocate(100);
            assertThat(pair.toService().offerSlot(ref, 100)).isEqualTo(Lane.OK);
            assertThat(client.slotPool().ownedBy(client.peerId())).isEqualTo(1);

            int dead = 9; // a peer id nobody attached: the releaser that died
            long active = word(client.lanes(), pair.index());
            LONG.setVolatile(table(client.lanes()), (long) pair.index() * LaneDescriptor.ENTRY_LENGTH,
                    LaneDescriptor.releasingState(active, dead));
            assertThat(client.lanes().lanes().getFirst().state()).isEqualTo("RELEASING");
            assertThat(client.lanes().recover(8, false)).as("the recovery of a peer that is not the releaser")
                    .isZero();

            assertThat(provider.lanes().recover(dead, true)).isEqualTo(1);
            LaneTable.LaneInfo info = client.lanes().lanes().getFirst();
            assertThat(info.state()).isEqualTo("EMPTY");
            assertThat(info.epoch()).isEqualTo(LaneDescriptor.entryEpoch(active) + 1);
            assertThat(client.slotPool().ownedBy(client.peerId())).as("the unread frame's slot is freed").isZero();
            assertThat(offer(pair.toService(), "late")).as("the old pair is reset").isEqualTo(Lane.RESET);
        }
    }

    /**
     * A releaser stops the sender before it drains a lane: the frames committed before are handed
     * to the drain, and a commit after it fails with {@code RESET}, so that its sender frees what it
     * wrote instead of taking a wiped frame as sent.
     */
    @Test
    void aDrainStopsTheSenderFirstSoThatNoFrameCommittedAfterItIsWiped() throws Exception {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            int service = service(provider);
            LaneTable.LanePair pair = client.lanes().open(service, provider.peerId());
            assertThat(offer(pair.toService(), "one")).isEqualTo(Lane.OK);
            assertThat(offer(pair.toService(), "two")).isEqualTo(Lane.OK);

            List<String> drained = new ArrayList<>();
            assertThat(pair.toService().drain((type, payload) -> drained.add(
                    new String(payload.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8)))).isEqualTo(2);
            assertThat(drained).containsExactly("one", "two");
            assertThat(offer(pair.toService(), "late")).as("a commit after the drain stopped the lane")
                    .isEqualTo(Lane.RESET);
            assertThat(pair.toService().drain((type, payload) -> drained.add("again")))
                    .as("a second drain (a releaser finishing a dead one's work) finds nothing more").isZero();
            assertThat(drained).hasSize(2);
        }
    }

    /**
     * The lane's reader may still be live while a releaser drains: it had a frame in hand and releases
     * it first. The drain goes on from where the reader left the read position, to the end of what the
     * sender committed, instead of giving up there and leaving the frames after it unread (their
     * slots allocated to the sender for good).
     */
    @Test
    void aDrainGoesOnPastAFrameTheLiveReaderReleasedFirst() throws Exception {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            int service = service(provider);
            LaneTable.LanePair pair = client.lanes().open(service, provider.peerId());
            for (String text : List.of("one", "two", "three")) {
                assertThat(offer(pair.toService(), text)).isEqualTo(Lane.OK);
            }
            Lane lane = pair.toService();
            java.lang.reflect.Field field = Lane.class.getDeclaredField("memory");
            field.setAccessible(true);
            MemorySegment memory = (MemorySegment) field.get(lane);
            List<String> drained = new ArrayList<>();
            lane.drain((type, payload) -> {
                String text = new String(payload.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
                drained.add(text);
                if (text.equals("one")) { // the live reader, done with the same frame, releases it first
                    long read = (long) LONG.getVolatile(memory, (long) LaneDescriptor.READ_OFFSET);
                    assertThat(LONG.compareAndSet(memory, (long) LaneDescriptor.READ_OFFSET, read,
                            LaneDescriptor.position(lane.epoch(), LaneDescriptor.frameLength(3)))).isTrue();
                }
            });
            assertThat(drained).containsExactly("one", "two", "three");
        }
    }

    /**
     * A client closes its pair while its sending thread commits slot frames as fast as it can, 300
     * times: every slot the sender allocated is freed, by the release (a frame committed before the
     * release stopped the lane) or by the sender (a commit that failed with {@code RESET}). A release
     * that drained before it stopped the lane wiped the frames committed in between, whose slots stayed
     * allocated to the sender.
     */
    @Test
    @Timeout(60)
    void aPairClosedWhileItsSenderCommitsLeaksNoSlot() throws Exception {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            int service = service(provider);
            for (int round = 0; round < 300; round++) {
                LaneTable.LanePair pair = client.lanes().open(service, provider.peerId());
                CountDownLatch sending = new CountDownLatch(1);
                AtomicReference<Throwable> failure = new AtomicReference<>();
                Thread sender = Thread.ofPlatform().name("sender").start(() -> {
                    try {
                        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                        int sent = 0;
                        while (System.nanoTime() - deadline < 0) {
                            long ref = client.slotPool().allocate(100);
                            if (ref < 0) {
                                Thread.onSpinWait();
                                continue;
                            }
                            int rc = pair.toService().offerSlot(ref, 100);
                            if (rc != Lane.OK) {
                                client.slotPool().free(ref);
                                if (rc == Lane.RESET) {
                                    return;
                                }
                            } else if (++sent == 8) {
                                sending.countDown();
                            }
                        }
                        throw new AssertionError("the lane was never reset");
                    } catch (Throwable t) {
                        failure.set(t);
                    } finally {
                        sending.countDown();
                    }
                });
                assertThat(sending.await(10, TimeUnit.SECONDS)).isTrue();
                client.lanes().close(pair);
                sender.join(TimeUnit.SECONDS.toMillis(20));
                assertThat(sender.isAlive()).isFalse();
                assertThat(failure.get()).isNull();
                assertThat(client.slotPool().ownedBy(client.peerId())).as("slots left allocated after round %d", round)
                        .isZero();
            }
        }
    }

    private static String text(MemorySegment payload) {
        return new String(payload.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
    }

    private static Thread closing(Segment client, LaneTable.LanePair pair, AtomicReference<Throwable> failure) {
        return Thread.ofPlatform().name("releaser").start(() -> {
            try {
                client.lanes().close(pair);
            } catch (Throwable t) {
                failure.set(t);
            }
        });
    }

    /**
     * A sender granted a region before the release stopped its lane writes its frame there (and
     * {@code last}, when the grant wrapped) before its commit fails. The release waits for it before
     * it formats the lane, which from then on is the next pair's: that pair, on the same entry,
     * reads its own frames only.
     */
    @Test
    @Timeout(30)
    void aReleaseWaitsForASenderBetweenItsGrantAndItsCommitBeforeItFormatsTheLane() throws Exception {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            int service = service(provider);
            LaneTable.LanePair pair = client.lanes().open(service, provider.peerId());
            Lane lane = pair.toService();
            int frame = lane.capacity() / 8;
            byte[] filler = new byte[frame - LaneDescriptor.FRAME_HEADER_LENGTH];
            for (int i = 0; i < 6; i++) { // three quarters of the lane, read: the next large grant wraps
                assertThat(lane.offerInline(MemorySegment.ofArray(filler), 0, filler.length)).isEqualTo(Lane.OK);
            }
            assertThat(offer(lane, "")).isEqualTo(Lane.OK);
            assertThat(lane.poll((type, payload) -> { }, 16)).isEqualTo(7);

            client.lanes().quietTimeoutNanos = TimeUnit.SECONDS.toNanos(30); // no race with the bound here
            long at = lane.beginWrite(lane.capacity() / 4); // the sender, paused after its grant
            assertThat(at).as("a grant that wraps to the start").isZero();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread releaser = closing(client, pair, failure);
            releaser.join(300);
            assertThat(releaser.isAlive()).as("the release waits for the sender in flight").isTrue();

            java.lang.reflect.Field field = Lane.class.getDeclaredField("data");
            field.setAccessible(true);
            MemorySegment data = (MemorySegment) field.get(lane);
            byte[] stale = "stale".getBytes(StandardCharsets.UTF_8);
            MemorySegment.copy(MemorySegment.ofArray(stale), 0, data, at + LaneDescriptor.FRAME_HEADER_LENGTH,
                    stale.length);
            assertThat(lane.commit(at, stale.length, LaneDescriptor.INLINE)).isEqualTo(Lane.RESET);
            lane.endWrite();
            releaser.join(TimeUnit.SECONDS.toMillis(10));
            assertThat(releaser.isAlive()).isFalse();
            assertThat(failure.get()).isNull();

            LaneTable.LanePair next = client.lanes().open(service, provider.peerId());
            assertThat(next.index()).isEqualTo(pair.index());
            assertThat(next.toService().pending()).isZero();
            assertThat(offer(next.toService(), "fresh")).isEqualTo(Lane.OK);
            List<String> read = new ArrayList<>();
            assertThat(next.toService().poll((type, payload) -> read.add(text(payload)), 16)).isEqualTo(1);
            assertThat(read).containsExactly("fresh");
        }
    }

    /**
     * A reader hands out payloads in place: the release waits until its handler returned before it
     * formats the lane (whose bytes would then be the next pair's), and the reader's poll then reports
     * the reset.
     */
    @Test
    @Timeout(30)
    void aReleaseWaitsForAReaderInItsHandlerBeforeItFormatsTheLane() throws Exception {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            int service = service(provider);
            LaneTable.LanePair pair = client.lanes().open(service, provider.peerId());
            assertThat(offer(pair.toService(), "one")).isEqualTo(Lane.OK);
            CountDownLatch inHandler = new CountDownLatch(1);
            CountDownLatch handlerMayReturn = new CountDownLatch(1);
            AtomicReference<String> seen = new AtomicReference<>();
            AtomicReference<Integer> polled = new AtomicReference<>();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread reader = Thread.ofPlatform().name("reader").start(() -> {
                try {
                    polled.set(pair.toService().poll((type, payload) -> {
                        inHandler.countDown();
                        try {
                            assertThat(handlerMayReturn.await(10, TimeUnit.SECONDS)).isTrue();
                        } catch (InterruptedException e) {
                            throw new AssertionError(e);
                        }
                        seen.set(text(payload)); // the payload, read in place, after the release began
                    }, 16));
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            assertThat(inHandler.await(10, TimeUnit.SECONDS)).isTrue();
            client.lanes().quietTimeoutNanos = TimeUnit.SECONDS.toNanos(30); // no race with the bound here
            Thread releaser = closing(client, pair, failure);
            releaser.join(300);
            assertThat(releaser.isAlive()).as("the release waits for the reader in its handler").isTrue();
            handlerMayReturn.countDown();
            reader.join(TimeUnit.SECONDS.toMillis(10));
            releaser.join(TimeUnit.SECONDS.toMillis(10));
            assertThat(reader.isAlive()).isFalse();
            assertThat(releaser.isAlive()).isFalse();
            assertThat(failure.get()).isNull();
            assertThat(seen.get()).isEqualTo("one");
            assertThat(polled.get()).as("the release moved the read position first").isEqualTo(Lane.RESET);
        }
    }

    /**
     * The wait is bounded: a side of the peer being recovered is not waited for (it died holding
     * its word), and a live side that never finishes holds a release up for its bound (one second;
     * a quarter of it here).
     */
    @Test
    @Timeout(30)
    void aReleaseDoesNotWaitForADeadSideAndAtMostASecondForALiveOne() throws Exception {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            int service = service(provider);
            LaneTable.LanePair pair = client.lanes().open(service, provider.peerId());
            provider.lanes().quietTimeoutNanos = TimeUnit.SECONDS.toNanos(20);
            assertThat(pair.toService().beginWrite(64)).isZero(); // the client "dies" here
            long start = System.nanoTime();
            assertThat(provider.lanes().recover(client.peerId(), false)).isEqualTo(1);
            assertThat(System.nanoTime() - start).as("recovery of the writer does not wait for its word")
                    .isLessThan(TimeUnit.SECONDS.toNanos(10));

            LaneTable.LanePair next = client.lanes().open(service, provider.peerId());
            assertThat(next.toClient().beginWrite(64)).isZero(); // a provider stalled for good
            long bound = LaneTable.QUIET_TIMEOUT_NANOS / 4;
            client.lanes().quietTimeoutNanos = bound;
            start = System.nanoTime();
            client.lanes().close(next);
            long waited = System.nanoTime() - start;
            assertThat(waited).isGreaterThanOrEqualTo(bound).isLessThan(bound + TimeUnit.SECONDS.toNanos(5));
            assertThat(next.toClient().commit(0, 56, LaneDescriptor.INLINE)).isEqualTo(Lane.RESET);
        }
    }

    /**
     * A lane object of a pair released since (a sender that held on to it) neither replaces the
     * in-flight word of the entry's next pair nor clears it: a release of that pair still waits for
     * its own sender.
     */
    @Test
    @Timeout(30)
    void aStaleLaneLeavesTheInFlightWordOfTheNextPairAlone() throws Exception {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            int service = service(provider);
            LaneTable.LanePair first = client.lanes().open(service, provider.peerId());
            Lane stale = first.toService();
            client.lanes().close(first);
            LaneTable.LanePair second = client.lanes().open(service, provider.peerId());
            assertThat(second.index()).isEqualTo(first.index());
            assertThat(second.toService().beginWrite(64)).isZero(); // the next pair's sender, in flight

            assertThat(offer(stale, "late")).isEqualTo(Lane.RESET);
            client.lanes().quietTimeoutNanos = TimeUnit.SECONDS.toNanos(30); // no race with the bound here
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread releaser = closing(client, second, failure);
            releaser.join(300);
            assertThat(releaser.isAlive()).as("the release still waits for the next pair's sender").isTrue();
            assertThat(second.toService().commit(0, 56, LaneDescriptor.INLINE)).isEqualTo(Lane.RESET);
            second.toService().endWrite();
            releaser.join(TimeUnit.SECONDS.toMillis(10));
            assertThat(releaser.isAlive()).isFalse();
            assertThat(failure.get()).isNull();
        }
    }

    /**
     * A reader asleep on its lane's doorbell is woken by the writer's next commit, long before its
     * sleep would end; a provider asleep on its service's doorbell, by a client's ring. Both sleeps
     * are 30 s here, so only the ring can end them within the test's bound.
     */
    @Test
    @Timeout(30)
    void aSleepingReaderIsWokenByTheWritersCommitAndASleepingProviderByTheClientsRing() throws Exception {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            int service = service(provider);
            LaneTable.LanePair pair = client.lanes().open(service, provider.peerId());
            Lane replies = pair.toClient();
            assertThat(replies.hasFrames()).isFalse();
            CountDownLatch asleep = new CountDownLatch(1);
            Thread reader = Thread.ofPlatform().name("reader").start(() -> {
                asleep.countDown();
                replies.awaitFrames(TimeUnit.SECONDS.toNanos(30));
            });
            assertThat(asleep.await(10, TimeUnit.SECONDS)).isTrue();
            awaitSleeping(pair.toClient(), reader);
            assertThat(offer(provider.lanes().lanesOf(service).getFirst().toClient(), "reply")).isEqualTo(Lane.OK);
            reader.join(TimeUnit.SECONDS.toMillis(10));
            assertThat(reader.isAlive()).as("woken by the commit").isFalse();
            assertThat(replies.hasFrames()).isTrue();

            Doorbell requests = provider.directory().doorbell(service);
            Thread server = Thread.ofPlatform().name("server").start(
                    () -> requests.await(1, () -> false, TimeUnit.SECONDS.toNanos(30)));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (server.isAlive() && System.nanoTime() - deadline < 0) {
                client.directory().doorbell(service).ring(); // rung until the sleeper sleeps and wakes
                server.join(10);
            }
            assertThat(server.isAlive()).as("woken by the ring").isFalse();
        }
    }

    /** Waits (bounded) until {@code thread} has set its lane's sleeping flag. */
    private static void awaitSleeping(Lane lane, Thread thread) throws Exception {
        java.lang.reflect.Field field = Lane.class.getDeclaredField("memory");
        field.setAccessible(true);
        MemorySegment memory = (MemorySegment) field.get(lane);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while ((int) ValueLayout.JAVA_INT.varHandle().getVolatile(memory, LaneDescriptor.DOORBELL_OFFSET + 4L) == 0) {
            assertThat(thread.isAlive()).as("asleep before anything was written").isTrue();
            assertThat(System.nanoTime() - deadline).as("the reader went to sleep").isNegative();
            Thread.onSpinWait();
        }
    }
}
