package dev.shm.core.lane;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.CorruptionException;
import dev.shm.core.counters.SegmentCounters;
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
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Damage in a lane or the lane table, as something else than the lane code would write it: each is
 * rejected with a {@link CorruptionException} and counted, and the lane (or the table) goes on
 * working for what comes after, instead of failing the same way on every later call.
 */
class LaneCorruptionTest {

    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private SegmentOptions options;
    private final List<String> received = new ArrayList<>();
    private final Lane.FrameHandler handler = (type, payload) ->
            received.add(new String(payload.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8));

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

    private static <T> T field(Object owner, Class<?> type, String name) throws ReflectiveOperationException {
        java.lang.reflect.Field field = type.getDeclaredField(name);
        field.setAccessible(true);
        @SuppressWarnings("unchecked")
        T value = (T) field.get(owner);
        return value;
    }

    /** The lane's control block: positions and in-flight words, then the data at {@code DATA_OFFSET}. */
    private static MemorySegment control(Lane lane) throws ReflectiveOperationException {
        return field(lane, Lane.class, "memory");
    }

    private static int offer(Lane lane, String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        return lane.offerInline(MemorySegment.ofArray(bytes), 0, bytes.length);
    }

    private static long corrupt(Segment segment) {
        return segment.counters().get(SegmentCounters.CORRUPT_FRAMES_REJECTED);
    }

    /** Stores {@code position} of the lane's epoch as its read position. */
    private static void setRead(MemorySegment control, long position) {
        long word = (long) LONG.getVolatile(control, (long) LaneDescriptor.READ_OFFSET);
        LONG.setVolatile(control, (long) LaneDescriptor.READ_OFFSET,
                LaneDescriptor.position(LaneDescriptor.epochOf(word), position));
    }

    /**
     * A frame whose length is near 2^31 (rounded up to 8, it overflowed, and passed the check) is
     * rejected, and the next frame is read. Before, the read threw an IndexOutOfBoundsException
     * without moving the read position, on every poll.
     */
    @Test
    void aFrameLengthNear2To31IsRejectedAndTheNextFrameIsRead() throws Exception {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            int service = service(provider);
            LaneTable.LanePair pair = client.lanes().open(service, provider.peerId());
            Lane reader = provider.lanes().lanesOf(service).getFirst().toService();
            assertThat(offer(pair.toService(), "first")).isEqualTo(Lane.OK);
            control(reader).set(ValueLayout.JAVA_INT, LaneDescriptor.DATA_OFFSET + LaneDescriptor.FRAME_LENGTH_OFFSET,
                    Integer.MAX_VALUE - 3);
            long before = corrupt(provider);

            assertThatThrownBy(() -> reader.poll(handler, 10)).isInstanceOf(CorruptionException.class)
                    .hasMessageContaining("length=" + (Integer.MAX_VALUE - 3));
            assertThat(corrupt(provider)).isEqualTo(before + 1);
            assertThat(reader.poll(handler, 10)).as("the damaged frame was dropped").isZero();
            assertThat(offer(pair.toService(), "second")).isEqualTo(Lane.OK);
            assertThat(reader.poll(handler, 10)).isEqualTo(1);
            assertThat(received).containsExactly("second");
        }
    }

    /**
     * A read position that is not 8-byte aligned (frames are) is rejected by the reader, which
     * starts again at the write position; one beyond the data is rejected by the writer, which then
     * gives its in-flight word back (a release of the pair would wait for it otherwise) and writes
     * nothing. Before, the reader failed on a misaligned access on every poll, and the writer
     * granted itself room from the damaged position.
     */
    @Test
    void damagedPositionsAreRejectedByTheReaderAndTheWriter() throws Exception {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            int service = service(provider);
            LaneTable.LanePair pair = client.lanes().open(service, provider.peerId());
            Lane writer = pair.toService();
            Lane reader = provider.lanes().lanesOf(service).getFirst().toService();
            assertThat(offer(writer, "first")).isEqualTo(Lane.OK);
            MemorySegment control = control(reader);
            setRead(control, 2);
            long before = corrupt(provider);

            assertThatThrownBy(() -> reader.poll(handler, 10)).isInstanceOf(CorruptionException.class)
                    .hasMessageContaining("not 8-byte aligned");
            assertThat(corrupt(provider)).isEqualTo(before + 1);
            assertThat(offer(writer, "second")).isEqualTo(Lane.OK);
            assertThat(reader.poll(handler, 10)).isEqualTo(1);
            assertThat(received).containsExactly("second");

            setRead(control, writer.capacity() + 64L);
            assertThatThrownBy(() -> offer(writer, "third")).isInstanceOf(CorruptionException.class)
                    .hasMessageContaining("outside capacity=" + writer.capacity());
            assertThat(corrupt(provider)).isEqualTo(before + 2);
            assertThat((long) LONG.getVolatile(control, (long) LaneDescriptor.WRITING_OFFSET))
                    .as("the writer's in-flight word").isZero();
        }
    }

    /**
     * A lane table entry whose capacity is damaged is passed over by an open (counted), left out of
     * a provider's pairs, and listed as damaged by {@code lanes()}. Before, every open that met it
     * first failed, and so did every rescan of the provider and every listing.
     */
    @Test
    void aDamagedLaneTableEntryIsPassedOver() throws Exception {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            int service = service(provider);
            LaneTable.LanePair first = client.lanes().open(service, provider.peerId());
            LaneTable.LanePair second = client.lanes().open(service, provider.peerId());
            client.lanes().close(first); // empty again, with its buffer: the next open would take it
            MemorySegment table = field(client.lanes(), LaneTable.class, "table");
            table.set(ValueLayout.JAVA_INT, (long) first.index() * LaneDescriptor.ENTRY_LENGTH
                    + LaneDescriptor.CAPACITY_OFFSET, 3);
            long before = corrupt(client);

            LaneTable.LanePair third = client.lanes().open(service, provider.peerId());
            assertThat(third).isNotNull();
            assertThat(third.index()).isNotIn(first.index(), second.index());
            assertThat(corrupt(client)).isEqualTo(before + 1);
            assertThat(client.lanes().lanes()).filteredOn(l -> l.index() == first.index()).singleElement()
                    .satisfies(l -> {
                        assertThat(l.state()).isEqualTo("CORRUPT(capacity)");
                        assertThat(l.capacity()).isEqualTo(3);
                    });

            table.set(ValueLayout.JAVA_INT, (long) second.index() * LaneDescriptor.ENTRY_LENGTH
                    + LaneDescriptor.CAPACITY_OFFSET, 3);
            assertThat(provider.lanes().lanesOf(service)).extracting(LaneTable.LanePair::index)
                    .containsExactly(third.index());
            assertThat(offer(third.toService(), "still served")).isEqualTo(Lane.OK);
            assertThat(provider.lanes().lanesOf(service).getFirst().toService().poll(handler, 10)).isEqualTo(1);
            assertThat(received).containsExactly("still served");
        }
    }
}
