package dev.shm.core.segment;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.ShmException;
import dev.shm.core.counters.SegmentCounters;
import dev.shm.core.internal.Processes;
import dev.shm.core.lane.Lane;
import dev.shm.core.lane.LaneDescriptor;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.memory.MemfdBuffer;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.pool.SlotPoolDescriptor;
import dev.shm.core.segment.SegmentException.Reason;
import dev.shm.core.testing.ShmDirectory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class SegmentTest {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private SegmentOptions options;

    @BeforeEach
    void options() {
        options = TestSegments.options(shm.directory("segments"), "orders");
    }

    @Test
    void firstOpenCreatesTheFileAndASecondAttachesAsAnotherPeer() throws Exception {
        try (Segment first = Segment.open(options, "orders-service");
             Segment second = Segment.open(options, "billing")) {
            assertThat(first.isCreator()).isTrue();
            assertThat(second.isCreator()).isFalse();
            assertThat(first.peerId()).isNotEqualTo(second.peerId());
            assertThat(Files.exists(options.path())).isTrue();
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(options.path())))
                    .isEqualTo("rw-------");
            assertThat(first.header().layout().maxPeers()).isEqualTo(options.maxPeers());
            assertThat(first.header().creatorPid()).isEqualTo(Processes.pid());

            PeerInfo billing = first.peer(second.peerId());
            assertThat(billing.state()).isEqualTo(PeerState.ATTACHED);
            assertThat(billing.name()).isEqualTo("billing");
            assertThat(billing.pid()).isEqualTo(Processes.pid());
            assertThat(billing.liveness()).isEqualTo(Liveness.ALIVE);
            assertThat(first.peers()).filteredOn(p -> p.state() == PeerState.ATTACHED).hasSize(2);
            assertThat(first.peer(second.peerId()).epoch()).isEqualTo(second.epoch());
        }
        assertThat(Files.exists(options.path())).as("the last peer out removes the file").isFalse();
    }

    @Test
    void detachEmptiesTheEntryAndTheCreatorSaysGoodbye() {
        try (Segment other = Segment.open(options, "other")) {
            Segment creatorless = Segment.open(options, "second");
            int id = creatorless.peerId();
            creatorless.close();
            assertThat(other.peer(id).state()).isEqualTo(PeerState.EMPTY);
            assertThat(other.isHostGoodbye()).isFalse();
        }
        Segment creator = Segment.open(options, "creator");
        try (Segment guest = Segment.open(options, "guest")) {
            assertThat(guest.isHostGoodbye()).isFalse();
            creator.close();
            assertThat(guest.isHostGoodbye()).isTrue();
            assertThat(Files.exists(options.path())).as("a peer is still attached").isTrue();
        }
    }

    @Test
    void longNamesAreCutAtACharacterBoundary() {
        try (Segment segment = Segment.open(options, "é".repeat(20))) {
            assertThat(segment.peer(segment.peerId()).name()).isEqualTo("é".repeat(12));
        }
    }

    @Test
    void attachWithOtherParametersFailsNamingBothValues() {
        try (Segment _ = Segment.open(options, "first")) {
            SegmentOptions other = options.withMaxPeers(4).withSlotClasses(List.of(new SlotClass(512, 8)));
            assertThatThrownBy(() -> Segment.open(other, "second"))
                    .isInstanceOfSatisfying(SegmentException.class,
                            e -> assertThat(e.reason()).isEqualTo(Reason.PARAMETER_MISMATCH))
                    .hasMessage("segment orders (" + options.path() + ") exists with maxPeers=8, slotClasses=2 classes;"
                            + " this process requires maxPeers=4, slotClasses=1 classes: use the same segment settings"
                            + " in every process, or remove the file once no process uses it");
        }
    }

    @Test
    void aFullPeerTableIsRefusedClearly() {
        List<Segment> segments = new ArrayList<>();
        try {
            for (int i = 0; i < options.maxPeers(); i++) {
                segments.add(Segment.open(options, "peer-" + i));
            }
            assertThatThrownBy(() -> Segment.open(options, "one-too-many"))
                    .isInstanceOfSatisfying(SegmentException.class,
                            e -> assertThat(e.reason()).isEqualTo(Reason.PEER_TABLE_FULL))
                    .hasMessageContaining("the peer table of " + options.path() + " is full: all 8 entries are in use");
        } finally {
            segments.forEach(Segment::close);
        }
    }

    @Test
    void aFullDirectorySaysSoApartFromAFullSegment() {
        try (Segment segment = Segment.open(options, "declarer")) {
            Directory directory = segment.directory();
            for (int i = 0; i < SegmentOptions.DEFAULT_MAX_DIRECTORY_ENTRIES; i++) {
                directory.declare("service-" + i, DirectoryDescriptor.SERVICE, new String[0], new long[0],
                        index -> new long[] {0, 0});
            }
            assertThatThrownBy(() -> directory.declare("one-too-many", DirectoryDescriptor.SERVICE, new String[0],
                    new long[0], index -> new long[] {0, 0}))
                    .isInstanceOfSatisfying(SegmentException.class,
                            e -> assertThat(e.reason()).isEqualTo(Reason.DIRECTORY_FULL))
                    .hasMessageContaining("is full: 256 channels and services");
        }
    }

    @Test
    void reservedEntryIsClaimedOrReleased() {
        try (Segment parent = Segment.open(options, "parent")) {
            int reserved = parent.reservePeer();
            assertThat(parent.peer(reserved).state()).isEqualTo(PeerState.RESERVED);
            assertThat(parent.peer(reserved).actor()).isEqualTo(parent.peerId());
            assertThat(parent.peer(reserved).liveness()).isEqualTo(Liveness.ALIVE);
            try (Segment child = Segment.claim(options, reserved, "child")) {
                assertThat(child.peerId()).isEqualTo(reserved);
                assertThat(parent.peer(reserved).state()).isEqualTo(PeerState.ATTACHED);
                assertThatThrownBy(() -> Segment.claim(options, reserved, "again"))
                        .isInstanceOfSatisfying(SegmentException.class,
                                e -> assertThat(e.reason()).isEqualTo(Reason.BAD_PEER))
                        .hasMessageContaining("is ATTACHED, not RESERVED");
            }
            int another = parent.reservePeer();
            assertThat(parent.releaseReservedPeer(another)).isTrue();
            assertThat(parent.peer(another).state()).isEqualTo(PeerState.EMPTY);
            assertThatThrownBy(() -> Segment.claim(options, 99, "x"))
                    .isInstanceOfSatisfying(SegmentException.class, e -> assertThat(e.reason()).isEqualTo(Reason.BAD_PEER));
        }
    }

    @Test
    void slotPoolAllocatesFromTheSmallestFittingClassAndFallsThrough() {
        try (Segment segment = Segment.open(options, "pool")) {
            SlotPool pool = segment.slotPool();
            assertThat(pool.classCount()).isEqualTo(2);
            long small = pool.allocate(100);
            assertThat(pool.capacityOf(small)).isEqualTo(256);
            assertThat(pool.ownerOf(small)).isEqualTo(segment.peerId());
            assertThat(pool.allocate(257)).satisfies(ref -> assertThat(pool.capacityOf(ref)).isEqualTo(4096));
            assertThat(pool.allocate(4097)).isEqualTo(SlotPool.TOO_LARGE);

            MemorySegment bytes = pool.data(small);
            bytes.set(ValueLayout.JAVA_LONG, 0, 77);
            assertThat(pool.data(small).get(ValueLayout.JAVA_LONG, 0)).isEqualTo(77);

            assertThat(pool.free(small)).isTrue();
            long before = segment.counters().get(SegmentCounters.STALE_FREES_REJECTED);
            assertThat(pool.free(small)).as("double free").isFalse();
            assertThat(segment.counters().get(SegmentCounters.STALE_FREES_REJECTED)).isEqualTo(before + 1);
            assertThat(pool.isCurrent(small)).isFalse();
            long again = pool.allocate(100);
            assertThat(again).isNotEqualTo(small).as("a new generation");
            assertThat(pool.free(small)).as("stale reference to a reused slot").isFalse();
            assertThat(pool.free(again)).isTrue();
            assertThat(pool.free(-5)).isFalse();
            assertThat(pool.free(Long.MAX_VALUE)).isFalse();
        }
    }

    @Test
    void aSharedSlotIsFreedByItsLastRelease() {
        try (Segment owner = Segment.open(options, "owner");
             Segment reader = Segment.open(options, "reader")) {
            SlotPool pool = owner.slotPool();
            long ref = pool.allocate(100);
            assertThat(pool.referencesOf(ref)).isEqualTo(1);
            assertThat(pool.retain(ref)).isTrue();
            assertThat(pool.retain(ref)).isTrue();
            assertThat(reader.slotPool().referencesOf(ref)).isEqualTo(3);
            assertThat(pool.free(ref)).as("others still reference it").isFalse();
            assertThat(reader.slotPool().release(ref)).isEqualTo(2);
            assertThat(reader.slotPool().release(ref)).isEqualTo(1);
            assertThat(pool.isCurrent(ref)).isTrue();
            assertThat(pool.ownerOf(ref)).isEqualTo(owner.peerId());
            assertThat(pool.free(ref)).as("the owner's is the last reference").isTrue();
            assertThat(pool.retain(ref)).as("stale").isFalse();
            assertThat(pool.referencesOf(ref)).isZero();

            long other = pool.allocate(100);
            assertThat(pool.retain(other)).isTrue();
            assertThat(pool.release(other)).isEqualTo(1);
            assertThat(reader.slotPool().release(other)).as("any holder may drop the last one").isZero();
            assertThat(pool.release(other)).isEqualTo(-1);

            long handed = pool.allocate(100);
            assertThat(pool.retain(handed)).isTrue();
            assertThat(pool.transfer(handed, reader.peerId())).isTrue();
            assertThat(pool.referencesOf(handed)).as("a transfer keeps the other references").isEqualTo(2);
            assertThat(reader.slotPool().release(handed)).as("the new owner gives up its reference").isEqualTo(1);
            assertThat(pool.ownerOf(handed)).as("so the slot has no owner whose death would free it")
                    .isEqualTo(SlotPoolDescriptor.NO_PEER);
            assertThat(pool.release(handed)).isZero();

            // The count lives in the segment: at its most, a retain is refused with the library's
            // exception (a damaged word looks the same), not a JDK one a caller would not expect.
            long busy = pool.allocate(100);
            int retained = 0;
            while (retained < SlotPoolDescriptor.MAX_REFS && pool.retain(busy)) {
                retained++;
            }
            assertThat(retained).isEqualTo(SlotPoolDescriptor.MAX_REFS);
            assertThatThrownBy(() -> pool.retain(busy)).isInstanceOf(ShmException.class)
                    .hasMessageContaining("holds 65535 extra references already");
            assertThat(reader.slotPool().referencesOf(busy)).isEqualTo(SlotPoolDescriptor.MAX_REFS + 1);
            for (int left = SlotPoolDescriptor.MAX_REFS; left >= 0; left--) {
                assertThat(pool.release(busy)).isEqualTo(left);
            }
            assertThat(pool.stats().getFirst().free()).isEqualTo(pool.stats().getFirst().total());
        }
    }

    @Test
    void exhaustedClassesFallThroughThenGrowThenReportExhausted() {
        SegmentOptions tight = options.withSize(2L << 20);
        try (Segment segment = Segment.open(tight, "pool")) {
            SlotPool pool = segment.slotPool();
            List<Long> refs = new ArrayList<>();
            for (int i = 0; i < 64; i++) {
                refs.add(pool.allocate(200));
            }
            assertThat(refs).allSatisfy(ref -> assertThat(pool.capacityOf(ref)).isEqualTo(256));
            long fellThrough = pool.allocate(200);
            assertThat(pool.capacityOf(fellThrough)).as("falls through to the larger class").isEqualTo(4096);
            refs.add(fellThrough);
            long ref;
            while ((ref = pool.allocate(200)) >= 0) {
                refs.add(ref);
            }
            assertThat(ref).isEqualTo(SlotPool.EXHAUSTED);
            assertThat(pool.stats().getFirst().extents()).as("the small class grew").isGreaterThan(1);
            assertThat(segment.counters().get(SegmentCounters.ALLOCATIONS_EXHAUSTED)).isPositive();
            assertThat(segment.counters().get(SegmentCounters.EXTENTS_ADDED)).isPositive();
            assertThat(segment.currentSize()).isLessThanOrEqualTo(tight.size());
            refs.forEach(r -> assertThat(pool.free(r)).isTrue());
            for (SlotPool.ClassStats stats : pool.stats()) {
                assertThat(stats.free()).isEqualTo(stats.total());
                assertThat(pool.freeListLength(stats.classIndex())).isEqualTo(stats.total());
            }
        }
    }

    @Test
    void transferHandsASlotToAnotherPeer() {
        try (Segment a = Segment.open(options, "a");
             Segment b = Segment.open(options, "b")) {
            long ref = a.slotPool().allocate(10);
            assertThat(b.slotPool().transfer(ref, b.peerId())).isTrue();
            assertThat(a.slotPool().ownerOf(ref)).isEqualTo(b.peerId());
            assertThat(a.slotPool().free(ref)).as("no longer a's").isFalse();
            assertThat(b.slotPool().free(ref)).isTrue();
            assertThat(b.slotPool().transfer(ref, a.peerId())).as("stale").isFalse();
        }
    }

    @Test
    void lanesCarryInlineSlotAndMemfdFramesAcrossAWrap() {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            int service = provider.directory().declare("pricing", DirectoryDescriptor.SERVICE, new String[0],
                    new long[0], index -> new long[] {0, 0});
            assertThat(provider.directory().provide(service)).isTrue();
            LaneTable.LanePair pair = client.lanes().open(service, provider.peerId());
            assertThat(pair).isNotNull();
            LaneTable.LanePair served = provider.lanes().lanesOf(service).getFirst();
            assertThat(served.index()).isEqualTo(pair.index());
            assertThat(served.client()).isEqualTo(client.peerId());

            List<String> received = new ArrayList<>();
            Lane.FrameHandler collect = (type, payload) -> {
                switch (type) {
                    case LaneDescriptor.INLINE -> received.add(new String(payload.toArray(ValueLayout.JAVA_BYTE),
                            StandardCharsets.UTF_8));
                    case LaneDescriptor.SLOT_REF -> {
                        long ref = Lane.slotRef(payload);
                        assertThat(provider.slotPool().transfer(ref, provider.peerId())).isTrue();
                        received.add("slot:" + provider.slotPool().data(ref).get(ValueLayout.JAVA_LONG, 0));
                        assertThat(provider.slotPool().free(ref)).isTrue();
                    }
                    case LaneDescriptor.MEMFD_REF -> received.add("memfd:" + Lane.memfdLease(payload) + "/"
                            + Lane.memfdLength(payload));
                    default -> throw new AssertionError(type);
                }
            };
            // Enough rounds of frames to wrap the 4 KiB lane many times.
            for (int round = 0; round < 200; round++) {
                byte[] text = ("request-" + round).getBytes(StandardCharsets.UTF_8);
                assertThat(pair.toService().offerInline(MemorySegment.ofArray(text), 0, text.length)).isEqualTo(Lane.OK);
                long ref = client.slotPool().allocate(8);
                client.slotPool().data(ref).set(ValueLayout.JAVA_LONG, 0, round);
                assertThat(pair.toService().offerSlot(ref, 8)).isEqualTo(Lane.OK);
                assertThat(pair.toService().offerMemfd(3, 1, 0, round)).isEqualTo(Lane.OK);
                assertThat(served.toService().poll(collect, 10)).isEqualTo(3);
                assertThat(received).containsExactly("request-" + round, "slot:" + round, "memfd:3/" + round);
                received.clear();
            }
            assertThat(pair.toService().offerInline(MemorySegment.ofArray(new byte[2000]), 0, 2000))
                    .isEqualTo(Lane.TOO_LARGE);
            int frames = 0;
            while (pair.toService().offerInline(MemorySegment.ofArray(new byte[100]), 0, 100) == Lane.OK) {
                frames++;
            }
            assertThat(frames).isBetween(30, 40);
            assertThat(pair.toService().offerInline(MemorySegment.ofArray(new byte[100]), 0, 100)).isEqualTo(Lane.FULL);
            assertThat(served.toService().poll((t, p) -> { }, 1000)).isEqualTo(frames);
            assertThat(client.slotPool().ownedBy(client.peerId())).isZero();

            client.lanes().close(pair);
            assertThat(pair.toService().offerInline(MemorySegment.ofArray(new byte[1]), 0, 1)).isEqualTo(Lane.RESET);
            assertThat(served.toService().poll((t, p) -> { }, 1)).isEqualTo(Lane.RESET);
        }
    }

    @Test
    void directoryDeclaresOnceAndRefusesOtherParameters() {
        try (Segment a = Segment.open(options, "a");
             Segment b = Segment.open(options, "b")) {
            String[] names = {"capacity", "slotSize"};
            int index = a.directory().declare("orders", DirectoryDescriptor.CHANNEL, names, new long[] {1024, 512},
                    i -> new long[] {0, 0});
            assertThat(b.directory().declare("orders", DirectoryDescriptor.CHANNEL, names, new long[] {1024, 512},
                    i -> { throw new AssertionError("declared twice"); })).isEqualTo(index);
            assertThat(b.directory().lookup("orders")).hasValue(index);
            assertThat(b.directory().lookup("missing")).isEmpty();
            assertThatThrownBy(() -> b.directory().declare("orders", DirectoryDescriptor.CHANNEL, names,
                    new long[] {4096, 512}, i -> new long[] {0, 0}))
                    .isInstanceOfSatisfying(SegmentException.class,
                            e -> assertThat(e.reason()).isEqualTo(Reason.PARAMETER_MISMATCH))
                    .hasMessage("channel 'orders' of segment " + options.path() + " is declared with capacity=1024, "
                            + "slotSize=512; this process declares channel with capacity=4096, slotSize=512: declare it "
                            + "alike in every process");
            assertThat(a.directory().entries()).extracting(Directory.Entry::name).containsExactly("orders");
        }
    }

    @Test
    void leasesNameMemfdsByGeneration() {
        try (Segment a = Segment.open(options, "a");
             Segment b = Segment.open(options, "b");
             MemfdBuffer buffer = MemfdBuffer.create("frames", 8192)) {
            buffer.putLong(0, 99);
            LeaseTable.Lease lease = a.leases().register(buffer);
            LeaseTable.Lease found = b.leases().lookup(lease.index(), lease.generation());
            assertThat(found).isEqualTo(lease);
            try (MemfdBuffer opened = MemfdBuffer.open(found.pid(), found.fd(), found.size())) {
                assertThat(opened.getLong(0)).isEqualTo(99);
            }
            assertThat(b.leases().lookup(lease.index(), lease.generation() + 1)).isNull();
            assertThat(b.leases().lookup(-1, 0)).isNull();
            a.leases().release(lease);
            assertThat(b.leases().lookup(lease.index(), lease.generation())).isNull();
        }
    }

    @Test
    void inspectorReadsALiveSegmentWithoutJoiningIt() {
        try (Segment segment = Segment.open(options, "watched");
             SegmentInspector inspector = SegmentInspector.open(options.path())) {
            segment.slotPool().allocate(10);
            assertThat(inspector.peers()).filteredOn(p -> p.state() == PeerState.ATTACHED)
                    .singleElement().satisfies(p -> {
                        assertThat(p.name()).isEqualTo("watched");
                        assertThat(p.liveness()).isEqualTo(Liveness.ALIVE);
                    });
            assertThat(inspector.slotPool().getFirst().allocated()).isEqualTo(1);
            assertThat(inspector.isStale()).isFalse();
            assertThat(inspector.counters().capacity()).isEqualTo(options.maxCounters());
        }
    }

    @Test
    void optionsRefuseNonsense() {
        assertThatThrownBy(() -> SegmentOptions.named("a/b")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> options.withMaxPeers(0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> options.withMaxPeers(255)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> options.withLiveness(Duration.ofSeconds(2), Duration.ofSeconds(1)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("must be longer than");
        assertThatThrownBy(() -> new SlotClass(100, 1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> options.withSlotClasses(List.of(new SlotClass(512, 1), new SlotClass(256, 1))))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("ascend");
        assertThatThrownBy(() -> Segment.open(options.withSize(8192), "x"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("cannot hold its tables");
        assertThat(Files.exists(options.path())).isFalse();
        assertThat(Path.of("/dev/shm/orders.shm")).isEqualTo(SegmentOptions.named("orders").path());
    }
}
