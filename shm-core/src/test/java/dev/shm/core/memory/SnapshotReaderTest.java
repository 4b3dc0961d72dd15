package dev.shm.core.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.testing.ChildJvm;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SnapshotReaderTest {

    private static final int SIZE = 1 << 20;

    @TempDir
    Path dir;

    private Path snapshot;

    /** A file whose byte at offset i is (i * 31) mod 256, so any range can be checked. */
    @BeforeEach
    void writeSnapshot() throws IOException {
        byte[] bytes = new byte[SIZE];
        for (int i = 0; i < SIZE; i++) {
            bytes[i] = expected(i);
        }
        snapshot = Files.write(dir.resolve("snapshot.bin"), bytes);
    }

    private static byte expected(long offset) {
        return (byte) (offset * 31);
    }

    @Test
    void readExactCopiesAndViewLendsReadOnlyBytes() {
        try (SnapshotReader reader = SnapshotReader.open(snapshot)) {
            assertThat(reader.size()).isEqualTo(SIZE);
            assertThat(reader.path()).isEqualTo(snapshot);
            byte[] copy = reader.readExact(8192, 4096);
            assertThat(copy).hasSize(4096);
            for (int i = 0; i < copy.length; i++) {
                assertThat(copy[i]).isEqualTo(expected(8192 + i));
            }
            byte[] into = new byte[10];
            reader.readExact(SIZE - 5, into, 5, 5);
            assertThat(into[9]).isEqualTo(expected(SIZE - 1));

            MemorySegment view = reader.view(100, 50);
            assertThat(view.isReadOnly()).isTrue();
            assertThat(view.byteSize()).isEqualTo(50);
            assertThat(view.get(ValueLayout.JAVA_BYTE, 49)).isEqualTo(expected(149));
            assertThatThrownBy(() -> view.set(ValueLayout.JAVA_BYTE, 0, (byte) 1)).isInstanceOf(RuntimeException.class);
            assertThat(reader.readExact(0, 0)).isEmpty();
            assertThat(reader.readExact(SIZE, 0)).isEmpty();
            assertThat(reader.isIntact()).isTrue();
        }
    }

    @Test
    void boundsCheckCannotOverflow() {
        try (SnapshotReader reader = SnapshotReader.open(snapshot)) {
            assertThatThrownBy(() -> reader.readExact(Long.MAX_VALUE, 1))
                    .isInstanceOf(OutOfBoundsAccessException.class)
                    .hasMessageContaining("offset=9223372036854775807, length=1, size=1048576");
            assertThatThrownBy(() -> reader.readExact(Long.MAX_VALUE - 1, 2)).isInstanceOf(OutOfBoundsAccessException.class);
            assertThatThrownBy(() -> reader.readExact(SIZE - 1, 2)).isInstanceOf(OutOfBoundsAccessException.class);
            assertThatThrownBy(() -> reader.readExact(SIZE + 1, 0)).isInstanceOf(OutOfBoundsAccessException.class);
            assertThatThrownBy(() -> reader.readExact(-1, 1)).isInstanceOf(OutOfBoundsAccessException.class);
            assertThatThrownBy(() -> reader.readExact(0, -1)).isInstanceOf(OutOfBoundsAccessException.class);
            assertThatThrownBy(() -> reader.readExact(1, Integer.MAX_VALUE)).isInstanceOf(OutOfBoundsAccessException.class);
            assertThatThrownBy(() -> reader.view(Long.MAX_VALUE - 1, Long.MAX_VALUE))
                    .isInstanceOf(OutOfBoundsAccessException.class);
            assertThatThrownBy(() -> reader.view(1, Long.MAX_VALUE)).isInstanceOf(OutOfBoundsAccessException.class);
            assertThatThrownBy(() -> reader.readExact(0, new byte[4], 2, 3)).isInstanceOf(IndexOutOfBoundsException.class);
        }
    }

    @Test
    void manyConcurrentReadersSeeTheRightBytes() throws InterruptedException {
        try (SnapshotReader reader = SnapshotReader.open(snapshot)) {
            Queue<Throwable> failures = new ConcurrentLinkedQueue<>();
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                long seed = t;
                threads.add(Thread.ofPlatform().start(() -> {
                    SplittableRandom random = new SplittableRandom(seed);
                    try {
                        for (int i = 0; i < 2000; i++) {
                            int length = random.nextInt(1, 4096);
                            long offset = random.nextLong(SIZE - length + 1);
                            byte[] bytes = reader.readExact(offset, length);
                            MemorySegment view = reader.view(offset, length);
                            for (int j = 0; j < length; j += 97) {
                                if (bytes[j] != expected(offset + j) || view.get(ValueLayout.JAVA_BYTE, j) != bytes[j]) {
                                    throw new AssertionError("wrong byte at " + (offset + j));
                                }
                            }
                        }
                    } catch (Throwable e) {
                        failures.add(e);
                    }
                }));
            }
            for (Thread thread : threads) {
                thread.join(60_000);
            }
            assertThat(failures).isEmpty();
        }
    }

    /**
     * In compiled code the JVM delivers the SIGBUS error at the next safepoint poll, which may come
     * after the read returned; a warmed-up reader thread must still end with that error (or the
     * translated one), and the JVM must live on.
     */
    @Test
    void truncationUnderAWarmReaderEndsItsThreadWithAnErrorNotACrash() throws Exception {
        try (SnapshotReader reader = SnapshotReader.open(snapshot)) {
            for (int i = 0; i < 50_000; i++) { // warm the read path up until the JIT compiles it
                reader.readExact(SIZE - 4096 + (i & 1023), 16);
            }
            try (RandomAccessFile file = new RandomAccessFile(snapshot.toFile(), "rw")) {
                file.setLength(4096); // what a careless writer does
            }
            assertThat(reader.isIntact()).isFalse();
            AtomicReference<Throwable> ended = new AtomicReference<>();
            Thread thread = Thread.ofPlatform().start(() -> {
                try {
                    for (int i = 0; i < 1000; i++) {
                        reader.readExact(SIZE - 4096 + (i & 1023), 16);
                    }
                } catch (Throwable t) {
                    ended.set(t);
                }
            });
            thread.join(30_000);
            assertThat(ended.get()).satisfiesAnyOf(
                    t -> assertThat(t).isInstanceOfSatisfying(MappingFaultException.class,
                            e -> assertThat(e.truncated()).isTrue()),
                    t -> assertThat(t).isInstanceOf(InternalError.class).hasMessageContaining("unsafe memory access"));
            assertThat(reader.readExact(0, 16)).hasSize(16); // the JVM and the intact part live on
        }
    }

    /** In interpreted code the fault arrives inside the read, which reports it with the sizes. */
    @Test
    void truncationUnderAnInterpretedReaderIsReportedWithTheSizes() {
        try (ChildJvm child = ChildJvm.builder(MemoryChild.class).jvmArgs("-Xint")
                .args("read-truncated", snapshot.toString()).start()) {
            assertThat(child.awaitLine("FAULT", Duration.ofSeconds(60))).isEqualTo("true access to " + snapshot
                    + " at offset=1044480, length=16 faulted (SIGBUS): the file is now 4096 bytes, shorter than the "
                    + "1044496 bytes this access needs; another process truncated it");
            assertThat(child.awaitExit(Duration.ofSeconds(30))).isZero();
        }
    }

    @Test
    void readsAfterCloseAreRefused() {
        SnapshotReader reader = SnapshotReader.open(snapshot);
        MemorySegment view = reader.view(0, 8);
        reader.close();
        assertThatThrownBy(() -> reader.readExact(0, 8)).isInstanceOf(StaleMappingException.class)
                .hasMessageContaining("is closed");
        assertThatThrownBy(() -> view.get(ValueLayout.JAVA_BYTE, 0)).isInstanceOf(IllegalStateException.class);
    }
}
