package dev.shm.bench.jmh;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The floor of {@link ChannelBenchmark}: a ring of slots laid out as our channel's (a 16-byte
 * header, then the payload, 4,096 slots) in a file of {@code /dev/shm} mapped with
 * {@code java.lang.foreign}, and nothing of a protocol — send stores the length, copies the payload
 * and stores the sequence with release; poll reads the header with acquire, the length and the
 * payload, and stores its position with release. No claim, no checks, no crash safety: what the
 * stores and loads themselves cost, with the segment's bounds, alignment and liveness checks.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(1)
public class RawRingBenchmark {

    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();
    private static final int SLOTS = 4096;
    private static final long RING = 128; // a line for the producer's cursor, one for the consumer's position

    /** Payload bytes. */
    @Param({"32", "1024"})
    public int payload;

    private Path file;
    private Arena arena;
    private MemorySegment memory;
    private MemorySegment source;
    private int slotSize;
    private long sent;
    private long position;
    private long sum;

    /**
     * Maps a fresh file in {@code /dev/shm}.
     *
     * @throws IOException when it cannot be made
     */
    @Setup(Level.Trial)
    public void setUp() throws IOException {
        slotSize = (16 + payload + 63) / 64 * 64;
        file = Files.createTempFile(Path.of("/dev/shm"), "raw-ring-jmh-", ".bin");
        arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            memory = channel.map(FileChannel.MapMode.READ_WRITE, 0, RING + (long) SLOTS * slotSize, arena);
        }
        source = Arena.ofAuto().allocate(payload, 64);
    }

    /**
     * Sends one message and polls it back.
     *
     * @return what the poll saw, for the blackhole
     */
    @Benchmark
    public long sendAndPoll() {
        source.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, sum);
        MemorySegment ring = memory;
        long sequence = sent++;
        long slot = RING + (sequence & (SLOTS - 1)) * slotSize;
        ring.set(ValueLayout.JAVA_LONG, slot + 8, payload);
        MemorySegment.copy(source, 0, ring, slot + 16, payload);
        LONG.setRelease(ring, slot, sequence + 1);
        LONG.setRelease(ring, 0L, sequence + 1);

        long n = position;
        long at = RING + (n & (SLOTS - 1)) * slotSize;
        if ((long) LONG.getAcquire(ring, at) == n + 1) {
            long length = ring.get(ValueLayout.JAVA_LONG, at + 8);
            if (length >= 0 && length <= slotSize - 16) {
                sum += ring.get(ValueLayout.JAVA_LONG_UNALIGNED, at + 16) + 1;
            }
            position = n + 1;
            LONG.setRelease(ring, 64L, n + 1);
        }
        return sum;
    }

    /**
     * Unmaps and removes the file.
     *
     * @throws IOException when it cannot be removed
     */
    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        arena.close();
        Files.deleteIfExists(file);
    }
}
