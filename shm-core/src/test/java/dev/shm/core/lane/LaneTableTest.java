package dev.shm.core.lane;

import static org.assertj.core.api.Assertions.assertThat;

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

            assertThat(provider.lanes().release(first.index(), seen, true)).as("the slow releaser's turn").isFalse();

            List<String> received = new ArrayList<>();
            LaneTable.LanePair served = provider.lanes().lanesOf(service).getFirst();
            assertThat(served.toService().poll((type, payload) -> received.add(
                    new String(payload.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8)), 10)).isEqualTo(1);
            assertThat(received).containsExactly("request");
            assertThat(offer(second.toService(), "again")).isEqualTo(Lane.OK);
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
}
