package dev.shm.bench.jmh;

import dev.shm.core.pool.SlotPool;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The slot pool's lock-free allocate and free (a Treiber stack with helping) in one thread, with the
 * segment's default classes (4 KiB and 256 KiB).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class SlotPoolBenchmark {

    private Path dir;
    private Segment segment;
    private SlotPool pool;

    /**
     * Opens a segment in a fresh directory.
     *
     * @throws IOException when the directory cannot be made
     */
    @Setup(Level.Trial)
    public void setUp() throws IOException {
        dir = Files.createTempDirectory(Path.of("/dev/shm"), "shm-jmh-");
        segment = Segment.open(SegmentOptions.named("jmh").withDirectory(dir), "jmh");
        pool = segment.slotPool();
    }

    /**
     * Allocates a 4 KiB slot and frees it.
     *
     * @return the reference, for the blackhole
     */
    @Benchmark
    public long allocateAndFree() {
        long ref = pool.allocate(4096);
        if (ref < 0 || !pool.free(ref)) {
            throw new IllegalStateException("allocate/free failed: ref=" + ref);
        }
        return ref;
    }

    /**
     * Closes the segment and removes the directory.
     *
     * @throws IOException when a file cannot be removed
     */
    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        segment.close();
        try (var files = Files.list(dir)) {
            for (Path file : files.toList()) {
                Files.deleteIfExists(file);
            }
        }
        Files.deleteIfExists(dir);
    }
}
