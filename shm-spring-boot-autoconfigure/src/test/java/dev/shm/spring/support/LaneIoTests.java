package dev.shm.spring.support;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.lane.Lane;
import dev.shm.core.lane.LaneDescriptor;
import dev.shm.core.lane.LaneMemfds;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.segment.DirectoryDescriptor;
import dev.shm.core.segment.LeaseTable;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentOptions;
import dev.shm.core.segment.SlotClass;
import dev.shm.core.testing.ShmDirectory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.springframework.messaging.Message;
import org.springframework.messaging.support.MessageBuilder;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@link LaneIo} between two peers of one segment (two attachments in this JVM; the gateways'
 * tests in {@code PeerProcessesTest} do the same across processes): records above the largest slot
 * class travel in memfds whose leases their reader ends, and a frame's untrusted memfd reference
 * is checked.
 */
class LaneIoTests {

    private static final int LARGEST = 4096;

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private final ShmMessageCodec codec = new ShmMessageCodec(new JsonPayloadConverter(JsonMapper.builder().build(),
            new TrustedPackages(List.of("java.lang")), getClass().getClassLoader()));

    private SegmentOptions options;

    @BeforeEach
    void options() {
        options = SegmentOptions.named("lanes").withDirectory(shm.directory("lanes")).withSize(16L << 20)
                .withSlotClasses(List.of(new SlotClass(1024, 16), new SlotClass(LARGEST, 16))).withLanes(4, 4096); // inline up to 1,008 bytes
    }

    /** A client's pair to a service that {@code provider} provides, and the provider's side of it. */
    private record Pair(LaneTable.LanePair client, LaneTable.LanePair served) {
    }

    private static Pair pair(Segment client, Segment provider, String name) {
        int service = provider.directory().declare(name, DirectoryDescriptor.SERVICE, new String[0], new long[0],
                index -> new long[] {0, 0});
        assertThat(provider.directory().provide(service)).isTrue();
        LaneTable.LanePair pair = client.lanes().open(service, provider.peerId());
        assertThat(pair).as("a free lane pair").isNotNull();
        return new Pair(pair, provider.lanes().lanesOf(service).getFirst());
    }

    private static long deadline() {
        return System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    }

    /** A byte[] payload whose record is exactly {@code length} bytes long. */
    private Message<byte[]> recordOf(int length) {
        int payload = length;
        for (int i = 0; i < 4; i++) { // the header's length fields may grow by a byte or two
            int actual = codec.encode(MessageBuilder.withPayload(new byte[payload]).build()).length();
            payload += length - actual;
        }
        Message<byte[]> message = MessageBuilder.withPayload(new byte[payload]).build();
        assertThat(codec.encode(message).length()).isEqualTo(length);
        return message;
    }

    /** Reads one frame of the lane that {@code writer} writes: its type, and the message decoded. */
    private List<Object> readOne(Segment provider, Lane lane, Segment writer) {
        List<Object> got = new ArrayList<>();
        assertThat(lane.poll((type, payload) -> {
            got.add(type);
            got.add(LaneIo.decode(provider, codec, type, payload, writer.peerId()));
        }, 1)).isEqualTo(1);
        return got;
    }

    @Test
    void recordsAboveTheLargestSlotClassTravelInAMemfdWhoseLeaseTheReaderEnds() {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider");
             LaneMemfds memfds = new LaneMemfds(client.leases(), "test")) {
            Pair pair = pair(client, provider, "pricing");
            Lane toService = pair.client().toService();
            Lane served = pair.served().toService();

            // The boundary: the largest class's size goes in a slot, one byte more in a memfd.
            assertThat(LaneIo.write(client, toService, codec.encode(recordOf(LARGEST)), memfds, deadline()))
                    .isEqualTo(LaneIo.OK);
            assertThat(readOne(provider, served, client).getFirst()).isEqualTo(LaneDescriptor.SLOT_REF);
            assertThat(LaneIo.write(client, toService, codec.encode(recordOf(LARGEST + 1)), memfds, deadline()))
                    .isEqualTo(LaneIo.OK);
            assertThat(client.leases().leases()).hasSize(1);
            assertThat(memfds.pending()).isEqualTo(1);
            List<Object> got = readOne(provider, served, client);
            assertThat(got.getFirst()).isEqualTo(LaneDescriptor.MEMFD_REF);
            assertThat(((byte[]) ((Message<?>) got.get(1)).getPayload())).hasSize(recordOf(LARGEST + 1).getPayload().length);
            assertThat(client.leases().leases()).as("the reader ended the lease").isEmpty();
            assertThat(memfds.reclaim()).as("the writer closed the memfd").isZero();

            // A large byte[] payload (the codec's tail) and a large String (no tail), both copied whole.
            byte[] bytes = new byte[3 * ShmMessageCodec.SPLIT_AT + 5];
            new Random(11).nextBytes(bytes);
            String text = "x".repeat(LARGEST) + "-end";
            assertThat(LaneIo.write(client, toService, codec.encode(MessageBuilder.withPayload(bytes)
                    .setHeader("k", "v").build()), memfds, deadline())).isEqualTo(LaneIo.OK);
            assertThat(LaneIo.write(client, toService, codec.encode(MessageBuilder.withPayload(text).build()), memfds,
                    deadline())).isEqualTo(LaneIo.OK);
            assertThat(memfds.pending()).isEqualTo(2);
            Message<?> first = (Message<?>) readOne(provider, served, client).get(1);
            assertThat((byte[]) first.getPayload()).isEqualTo(bytes);
            assertThat(first.getHeaders()).containsEntry("k", "v");
            assertThat(((Message<?>) readOne(provider, served, client).get(1)).getPayload()).isEqualTo(text);
            assertThat(client.leases().leases()).isEmpty();
            assertThat(memfds.reclaim()).isZero();
        }
    }

    @Test
    void aWriterEndsTheLeasesOfFramesThatWillNotBeReadAndAFullLeaseTableIsNoBuffer() {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            LaneMemfds memfds = new LaneMemfds(client.leases(), "test"); // closed below, as the test's subject
            Pair pair = pair(client, provider, "pricing");
            Lane toService = pair.client().toService();
            Message<String> large = MessageBuilder.withPayload("y".repeat(2 * LARGEST)).build();

            // Written, then the pair released (as on the reader's death) before anyone read it.
            assertThat(LaneIo.write(client, toService, codec.encode(large), memfds, deadline())).isEqualTo(LaneIo.OK);
            assertThat(client.leases().leases()).hasSize(1);
            client.lanes().close(pair.client());
            assertThat(toService.isReset()).isTrue();
            assertThat(memfds.reclaim()).isZero();
            assertThat(client.leases().leases()).as("ended by the writer: its lane was reset").isEmpty();

            // Written, never read, and the writer closes.
            Pair second = pair(client, provider, "quotes");
            assertThat(LaneIo.write(client, second.client().toService(), codec.encode(large), memfds, deadline()))
                    .isEqualTo(LaneIo.OK);
            assertThat(client.leases().leases()).hasSize(1);
            memfds.close();
            assertThat(client.leases().leases()).isEmpty();
            assertThat(readOne(provider, second.served().toService(), client).get(1)).as("stale: dropped, not read").isNull();

            // Every lease taken (by other writers): no buffer, and the reason names the leases.
            List<LaneMemfds.Staged> taken = new ArrayList<>();
            try (LaneMemfds others = new LaneMemfds(provider.leases(), "others");
                 LaneMemfds fresh = new LaneMemfds(client.leases(), "fresh")) {
                MemorySegment one = MemorySegment.ofArray(new byte[8]);
                for (LaneMemfds.Staged s; (s = others.stage(one, 8, null)) != null; ) {
                    taken.add(s);
                }
                assertThat(taken).hasSize(client.leases().capacity());
                assertThat(LaneIo.write(client, second.client().toService(), codec.encode(large), fresh, deadline()))
                        .isEqualTo(LaneIo.NO_BUFFER);
                assertThat(LaneIo.write(client, second.client().toService(), codec.encode(large), memfds, deadline()))
                        .as("closed: stages nothing").isEqualTo(LaneIo.NO_BUFFER);
                assertThat(LaneIo.noBuffer(client, codec.encode(large).length())).contains("memfd leases",
                        String.valueOf(client.leases().capacity()));
                assertThat(LaneIo.noBuffer(client, 100)).contains("slot-classes");
                taken.forEach(others::discard);
            }
            assertThat(client.leases().leases()).isEmpty();
        }
    }

    @Test
    void aMemfdFrameWithABadReferenceIsDroppedOrRefusedAndItsLeaseEndsAnyway() {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider");
             LaneMemfds memfds = new LaneMemfds(client.leases(), "test");
             Arena arena = Arena.ofConfined()) {
            MemorySegment frame = arena.allocate(LaneDescriptor.MEMFD_REF_LENGTH, 8);
            byte[] record = codec.encode(MessageBuilder.withPayload("z".repeat(100)).build()).toByteArray();
            LaneMemfds.Staged staged = memfds.stage(MemorySegment.ofArray(record), record.length, null);
            LeaseTable.Lease lease = staged.lease();

            // Out of range and stale references: dropped as stale, never opened.
            for (int[] ref : new int[][] {{-1, 1}, {client.leases().capacity(), 1}, {lease.index(), lease.generation() + 1}}) {
                fill(frame, ref[0], ref[1], 0, record.length);
                assertThat(LaneIo.decode(provider, codec, LaneDescriptor.MEMFD_REF, frame, client.peerId())).isNull();
            }
            assertThat(client.leases().leases()).as("a stale reference ends no lease").hasSize(1);

            // A live lease of a peer that does not write the lane: refused, and not ended.
            fill(frame, lease.index(), lease.generation(), 0, record.length);
            assertThatThrownBy(() -> LaneIo.decode(provider, codec, LaneDescriptor.MEMFD_REF, frame, provider.peerId()))
                    .isInstanceOf(ShmCodecException.class).hasMessageContaining("not of the lane's writer");
            assertThat(client.leases().leases()).hasSize(1);

            // Bytes outside the memfd: refused, and the lease ends (the frame is consumed).
            long size = lease.size();
            for (long[] bad : new long[][] {{-1, 10}, {0, 0}, {0, size + 1}, {size, 1}, {8, Long.MAX_VALUE}, {Long.MAX_VALUE, 2}}) {
                fill(frame, lease.index(), lease.generation(), bad[0], bad[1]);
                assertThatThrownBy(() -> LaneIo.decode(provider, codec, LaneDescriptor.MEMFD_REF, frame, client.peerId()))
                        .isInstanceOf(ShmCodecException.class).hasMessageContaining("memfd of " + size + " bytes");
                assertThat(client.leases().leases()).isEmpty();
                memfds.discard(staged);
                staged = memfds.stage(MemorySegment.ofArray(record), record.length, null);
                lease = staged.lease();
            }

            fill(frame, lease.index(), lease.generation(), 0, record.length);
            assertThat(LaneIo.decode(provider, codec, LaneDescriptor.MEMFD_REF, frame, client.peerId()).getPayload())
                    .isEqualTo("z".repeat(100));
            assertThat(client.leases().leases()).isEmpty();
            memfds.discard(staged);
        }
    }

    /**
     * A slot frame naming a slot that the lane's writer does not hold alone — another peer's, or one
     * retained — is refused and leaves the slot with its owner; a stale reference is dropped; the
     * writer's own slot is read and freed. Before, any allocated slot was taken over, read and freed.
     */
    @Test
    void aSlotFrameNamingASlotTheWriterDoesNotHoldIsRefusedAndTheSlotStaysWithItsOwner() {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider");
             Segment third = Segment.open(options, "third");
             Arena arena = Arena.ofConfined()) {
            SlotPool pool = provider.slotPool();
            byte[] record = codec.encode(MessageBuilder.withPayload("y".repeat(2000)).build()).toByteArray();
            MemorySegment frame = arena.allocate(LaneDescriptor.SLOT_REF_LENGTH, 8);
            long others = third.slotPool().allocate(record.length); // a slot of a peer that writes no lane here
            MemorySegment.copy(MemorySegment.ofArray(record), 0, third.slotPool().data(others), 0, record.length);
            frame.set(ValueLayout.JAVA_LONG, 0, others);
            frame.set(ValueLayout.JAVA_LONG, 8, record.length);

            assertThatThrownBy(() -> LaneIo.decode(provider, codec, LaneDescriptor.SLOT_REF, frame, client.peerId()))
                    .isInstanceOf(ShmCodecException.class).hasMessageContaining("does not hold alone");
            assertThat(pool.referencesOf(others)).as("still allocated, still its owner's alone").isEqualTo(1);

            long retained = client.slotPool().allocate(record.length);
            MemorySegment.copy(MemorySegment.ofArray(record), 0, client.slotPool().data(retained), 0, record.length);
            assertThat(client.slotPool().retain(retained)).isTrue();
            frame.set(ValueLayout.JAVA_LONG, 0, retained);
            assertThatThrownBy(() -> LaneIo.decode(provider, codec, LaneDescriptor.SLOT_REF, frame, client.peerId()))
                    .isInstanceOf(ShmCodecException.class);
            assertThat(pool.referencesOf(retained)).isEqualTo(2);
            client.slotPool().release(retained);
            client.slotPool().release(retained);

            long own = client.slotPool().allocate(record.length);
            MemorySegment.copy(MemorySegment.ofArray(record), 0, client.slotPool().data(own), 0, record.length);
            frame.set(ValueLayout.JAVA_LONG, 0, own);
            assertThat(LaneIo.decode(provider, codec, LaneDescriptor.SLOT_REF, frame, client.peerId()).getPayload())
                    .isEqualTo("y".repeat(2000));
            assertThat(pool.referencesOf(own)).as("read and freed").isZero();
            assertThat(LaneIo.decode(provider, codec, LaneDescriptor.SLOT_REF, frame, client.peerId()))
                    .as("stale now").isNull();
            third.slotPool().free(others);
            assertThat(pool.stats()).allSatisfy(c -> assertThat(c.free()).isEqualTo(c.total()));
        }
    }

    private static void fill(MemorySegment frame, int lease, int generation, long offset, long length) {
        frame.set(ValueLayout.JAVA_INT, 0, lease);
        frame.set(ValueLayout.JAVA_INT, 4, generation);
        frame.set(ValueLayout.JAVA_LONG, 8, offset);
        frame.set(ValueLayout.JAVA_LONG, 16, length);
    }
}
