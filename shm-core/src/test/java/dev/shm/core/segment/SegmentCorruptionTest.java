package dev.shm.core.segment;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.CorruptionException;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.pool.SlotPoolDescriptor;
import dev.shm.core.segment.SegmentDescriptor.Layout;
import dev.shm.core.segment.SegmentException.Reason;
import dev.shm.core.testing.ChildJvm;
import dev.shm.core.testing.ShmDirectory;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Damaged segment files: each damaged header field has its own clear error; random damage never crashes. */
class SegmentCorruptionTest {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private SegmentOptions options;
    private byte[] valid;

    @BeforeEach
    void writeAValidSegment() throws IOException {
        options = TestSegments.options(shm.directory("segments"), "damaged").withUnlinkOnLastDetach(false);
        try (Segment segment = Segment.open(options, "writer")) {
            segment.slotPool().allocate(10);
        }
        assertThat(Files.exists(options.path())).as("unlinkOnLastDetach=false keeps the file").isTrue();
        valid = Files.readAllBytes(options.path());
    }

    static Stream<Arguments> damagedFields() {
        return Stream.of(
                Arguments.of("magic", damage(b -> b.putLong(SegmentDescriptor.MAGIC_OFFSET, 0x1234)), Reason.BAD_MAGIC,
                        "is not a segment: expected magic 0x3176474553" + "6d6873 (\"shmSEGv1\"), found 0x1234"),
                Arguments.of("unfinished", damage(b -> b.putLong(SegmentDescriptor.MAGIC_OFFSET, 0)), Reason.BAD_MAGIC,
                        "(zeros: not a segment, or one whose creator never finished)"),
                Arguments.of("version", damage(b -> b.putInt(SegmentDescriptor.VERSION_OFFSET, 5)),
                        Reason.UNSUPPORTED_VERSION, "has segment layout version 5; this code reads version 4"),
                Arguments.of("header length", damage(b -> b.putInt(SegmentDescriptor.HEADER_LENGTH_OFFSET, 64)),
                        Reason.CORRUPT, "states a header length of 64 bytes; version 4 headers are 4096"),
                Arguments.of("max peers", damage(b -> b.putInt(SegmentDescriptor.MAX_PEERS_OFFSET, 0)), Reason.CORRUPT,
                        "states maxPeers=0; expected 1 to 254"),
                Arguments.of("slot classes", damage(b -> b.putInt(SegmentDescriptor.SLOT_CLASS_COUNT_OFFSET, 99)),
                        Reason.CORRUPT, "states slotClassCount=99; expected 0 to 16"),
                Arguments.of("lane capacity", damage(b -> b.putInt(SegmentDescriptor.LANE_CAPACITY_OFFSET, 1000)),
                        Reason.CORRUPT, "states laneCapacity=1000; expected a power of two from 1024 to 2^30"),
                Arguments.of("heartbeat", damage(b -> b.putLong(SegmentDescriptor.HEARTBEAT_INTERVAL_OFFSET, 0)),
                        Reason.CORRUPT, "expected 0 < heartbeatInterval < livenessTimeout"),
                Arguments.of("peer table offset",
                        damage(b -> b.putLong(SegmentDescriptor.PEER_TABLE_OFFSET_OFFSET, 1L << 40)),
                        Reason.OFFSET_OUTSIDE_FILE, "the peer table at offset 1099511627776"),
                Arguments.of("negative directory offset",
                        damage(b -> b.putLong(SegmentDescriptor.DIRECTORY_OFFSET_OFFSET, -4096)),
                        Reason.OFFSET_OUTSIDE_FILE, "the directory at offset -4096"),
                Arguments.of("misplaced counters",
                        damage(b -> b.putLong(SegmentDescriptor.COUNTERS_OFFSET_OFFSET,
                                b.getLong(SegmentDescriptor.COUNTERS_OFFSET_OFFSET) + 64)),
                        Reason.CORRUPT, "the counters is at offset"),
                Arguments.of("current size", damage(b -> b.putLong(SegmentDescriptor.CURRENT_SIZE_OFFSET, 12345)),
                        Reason.CORRUPT, "states currentSize=12345"),
                Arguments.of("published past the end",
                        damage(b -> b.putLong(SegmentDescriptor.CURRENT_SIZE_OFFSET,
                                b.getLong(SegmentDescriptor.CURRENT_SIZE_OFFSET) + 4096)),
                        Reason.TRUNCATED, "is truncated: its header publishes"));
    }

    private static Consumer<ByteBuffer> damage(Consumer<ByteBuffer> edit) {
        return edit;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("damagedFields")
    void eachDamagedHeaderFieldHasItsOwnError(String field, Consumer<ByteBuffer> edit, Reason reason, String message)
            throws IOException {
        byte[] bytes = valid.clone();
        edit.accept(ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN));
        Files.write(options.path(), bytes);
        assertThatThrownBy(() -> Segment.open(options, "reader"))
                .isInstanceOfSatisfying(SegmentException.class, e -> assertThat(e.reason()).isEqualTo(reason))
                .hasMessageContaining(options.path().toString())
                .hasMessageContaining(message);
        assertThatThrownBy(() -> SegmentInspector.open(options.path()))
                .isInstanceOfSatisfying(SegmentException.class, e -> assertThat(e.reason()).isEqualTo(reason));
        assertThat(Files.readAllBytes(options.path())).as("a failed attach writes nothing").isEqualTo(bytes);
    }

    @Test
    void aFileShorterThanAHeaderIsTruncated() throws IOException {
        Files.write(options.path(), Arrays.copyOf(valid, 100));
        assertThatThrownBy(() -> Segment.open(options, "reader"))
                .isInstanceOfSatisfying(SegmentException.class, e -> assertThat(e.reason()).isEqualTo(Reason.TRUNCATED))
                .hasMessageContaining("is truncated: 100 bytes, shorter than the 4096-byte segment header");
    }

    @Test
    void aFileCutInsideItsTablesIsTruncated() throws IOException {
        Files.write(options.path(), Arrays.copyOf(valid, 8192));
        assertThatThrownBy(() -> Segment.open(options, "reader"))
                .isInstanceOfSatisfying(SegmentException.class,
                        e -> assertThat(e.reason()).isIn(Reason.TRUNCATED, Reason.OFFSET_OUTSIDE_FILE))
                .hasMessageContaining("8192");
    }

    @Test
    void anEmptyOrForeignFileIsRefusedClearly() throws IOException {
        Files.write(options.path(), new byte[0]);
        assertThatThrownBy(() -> Segment.open(options, "reader"))
                .satisfies(e -> assertThat(e.getMessage()).contains(options.path().toString()));
        Files.writeString(options.path(), "not a segment\n".repeat(400));
        assertThatThrownBy(() -> Segment.open(options, "reader"))
                .isInstanceOfSatisfying(SegmentException.class, e -> assertThat(e.reason()).isEqualTo(Reason.BAD_MAGIC));
    }

    @Test
    void damageToALiveSegmentsSizeOrAClasssFirstCountIsACorruptionExceptionWhenThePoolGrows() throws IOException {
        try (Segment segment = Segment.open(options, "grower");
                Arena arena = Arena.ofConfined();
                FileChannel file = FileChannel.open(options.path(), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            MemorySegment memory = file.map(FileChannel.MapMode.READ_WRITE, 0, file.size(), arena);
            SlotPool pool = segment.slotPool();
            long size = segment.currentSize();
            for (long damaged : new long[] {-size, size + 1, Long.MIN_VALUE + 4096}) {
                memory.set(ValueLayout.JAVA_LONG, SegmentDescriptor.CURRENT_SIZE_OFFSET, damaged);
                assertThatThrownBy(() -> pool.grow(0, 4)).isInstanceOf(CorruptionException.class)
                        .hasMessageContaining("the published size " + damaged);
            }
            memory.set(ValueLayout.JAVA_LONG, SegmentDescriptor.CURRENT_SIZE_OFFSET, size);
            assertThat(pool.grow(0, 4)).as("the repaired size grows again").isEqualTo(64 + 4);

            // A class whose slots are all taken grows by its initial count, read from the table.
            long initialCountAt = Layout.of(options).poolOffset() + SlotPoolDescriptor.INITIAL_COUNT_OFFSET;
            List<Long> taken = new ArrayList<>();
            for (long ref; (ref = pool.allocateFromClass(0)) >= 0; ) {
                taken.add(ref);
            }
            for (long more; (more = pool.allocateFromClass(1)) >= 0; ) {
                taken.add(more);
            }
            for (int damaged : new int[] {0, -1, SlotPoolDescriptor.MAX_SLOTS + 1}) {
                memory.set(ValueLayout.JAVA_INT, initialCountAt, damaged);
                assertThatThrownBy(() -> pool.allocate(10)).isInstanceOf(CorruptionException.class)
                        .hasMessageContaining("slot class 0 states initialCount=" + damaged);
            }
            memory.set(ValueLayout.JAVA_INT, initialCountAt, 64);
            assertThat(pool.allocate(10)).as("the repaired count grows the class").isNotNegative();
            assertThat(pool.stats().getFirst().total()).isEqualTo(64 + 4 + 64);
        }
    }

    @Test
    void randomDamageNeverCrashesHangsOrAllocatesHugely() {
        Path directory = shm.directory("fuzz");
        long seed = System.nanoTime();
        try (ChildJvm fuzzer = ChildJvm.builder(SegmentFuzzChild.class)
                .jvmArgs("-Xmx96m", "-XX:+ExitOnOutOfMemoryError")
                .args(directory.toString(), String.valueOf(seed), "3000")
                .start()) {
            String result = fuzzer.awaitLine("FUZZED", Duration.ofSeconds(110));
            assertThat(fuzzer.awaitExit(Duration.ofSeconds(10))).as(fuzzer.output()).isZero();
            assertThat(result).as("seed " + seed).startsWith("3000 ");
            assertThat(result).as("some damage still attaches, and is used safely").contains("attached=");
        }
    }
}
