package dev.shm.core.lane;

import static org.assertj.core.api.Assertions.assertThat;

import dev.shm.core.memory.MemfdBuffer;
import dev.shm.core.segment.DirectoryDescriptor;
import dev.shm.core.segment.LeaseTable;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentOptions;
import dev.shm.core.segment.TestSegments;
import dev.shm.core.testing.ShmDirectory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The memfd frames of a lane (two attachments of one segment in this JVM; the Spring gateways'
 * tests do the same across processes): the reader ends the lease, the writer closes the memfd, or
 * ends the lease itself when the frame will not be read.
 */
class LaneMemfdsTest {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private SegmentOptions options;

    @BeforeEach
    void options() {
        options = TestSegments.options(shm.directory("memfds"), "orders");
    }

    private static LaneTable.LanePair pair(Segment client, Segment provider) {
        int service = provider.directory().declare("pricing", DirectoryDescriptor.SERVICE, new String[0], new long[0],
                index -> new long[] {0, 0});
        assertThat(provider.directory().provide(service)).isTrue();
        return client.lanes().open(service, provider.peerId());
    }

    /** Stages {@code bytes} (head and tail split in two) and writes its frame to {@code lane}. */
    private static LaneMemfds.Staged send(LaneMemfds memfds, Lane lane, byte[] bytes) {
        int head = bytes.length / 3;
        byte[] tail = Arrays.copyOfRange(bytes, head, bytes.length);
        LaneMemfds.Staged staged = memfds.stage(MemorySegment.ofArray(bytes), head, tail);
        assertThat(staged).isNotNull();
        assertThat(lane.offerMemfd(staged.lease().index(), staged.lease().generation(), 0, bytes.length))
                .isEqualTo(Lane.OK);
        memfds.written(staged, lane);
        return staged;
    }

    /** What a reader does with a frame: looks the lease up, opens, reads, ends the lease. */
    private static byte[] read(Segment reader, MemorySegment payload) {
        LeaseTable.Lease lease = reader.leases().lookup(Lane.memfdLease(payload), Lane.memfdGeneration(payload));
        assertThat(lease).as("leased").isNotNull();
        try (MemfdBuffer buffer = reader.leases().open(lease, Lane.memfdLength(payload))) {
            assertThat(buffer).isNotNull();
            return buffer.slice(Lane.memfdOffset(payload), Lane.memfdLength(payload)).toArray(ValueLayout.JAVA_BYTE);
        } finally {
            reader.leases().release(lease);
        }
    }

    @Test
    void theReaderEndsTheLeaseAndTheWriterThenClosesTheMemfd() {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider");
             LaneMemfds memfds = new LaneMemfds(client.leases(), "test")) {
            LaneTable.LanePair pair = pair(client, provider);
            LaneTable.LanePair served = provider.lanes().lanesOf(pair.service()).getFirst();
            byte[] one = new byte[100_000];
            new Random(3).nextBytes(one);
            LaneMemfds.Staged staged = send(memfds, pair.toService(), one);
            assertThat(staged.buffer().size()).isEqualTo(one.length);
            assertThat(memfds.reclaim()).as("not read yet").isEqualTo(1);

            List<byte[]> got = new ArrayList<>();
            assertThat(served.toService().poll((type, payload) -> got.add(read(provider, payload)), 1)).isEqualTo(1);
            assertThat(got).singleElement().isEqualTo(one);
            assertThat(client.leases().leases()).as("ended by the reader").isEmpty();
            assertThat(memfds.reclaim()).isZero();
            assertThat(memfds.pending()).isZero();
        }
    }

    @Test
    void theWriterEndsTheLeasesOfFramesOnAResetLaneAndOfAllWhenItCloses() {
        try (Segment client = Segment.open(options, "client");
             Segment provider = Segment.open(options, "provider")) {
            LaneMemfds memfds = new LaneMemfds(client.leases(), "test");
            LaneTable.LanePair pair = pair(client, provider);
            send(memfds, pair.toService(), new byte[5000]);
            send(memfds, pair.toService(), new byte[6000]);
            assertThat(client.leases().leases()).hasSize(2);
            client.lanes().close(pair); // as a reader's death resets it: the frames will not be read
            assertThat(memfds.reclaim()).isZero();
            assertThat(client.leases().leases()).isEmpty();

            LaneTable.LanePair again = client.lanes().open(pair.service(), provider.peerId());
            LaneMemfds.Staged out = send(memfds, again.toService(), new byte[7000]);
            LaneMemfds.Staged late = memfds.stage(MemorySegment.ofArray(new byte[10]), 10, null);
            memfds.close();
            assertThat(client.leases().lookup(out.lease().index(), out.lease().generation())).as("ended on close")
                    .isNull();
            assertThat(client.leases().leases()).as("only the one still being written").singleElement()
                    .isEqualTo(late.lease());
            assertThat(memfds.stage(MemorySegment.ofArray(new byte[10]), 10, null)).as("closed").isNull();
            memfds.written(late, again.toService()); // staged before the close, written after: given back at once
            assertThat(client.leases().leases()).isEmpty();
            assertThat(memfds.pending()).isZero();
        }
    }
}
