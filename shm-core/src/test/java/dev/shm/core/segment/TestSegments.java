package dev.shm.core.segment;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/** Small segments for tests: quick to create, quick to scan. */
public final class TestSegments {

    private TestSegments() {
    }

    /**
     * Options for a small segment in {@code directory}: 8 peers, two slot classes (64 x 256 B,
     * 16 x 4 KiB), 8 lanes of 4 KiB, 50 ms heartbeats, a 1 s liveness timeout.
     *
     * @param directory where the file goes
     * @param name the segment's name
     * @return the options
     */
    public static SegmentOptions options(Path directory, String name) {
        return SegmentOptions.named(name)
                .withDirectory(directory)
                .withSize(16L << 20)
                .withMaxPeers(8)
                .withLiveness(Duration.ofMillis(50), Duration.ofSeconds(1))
                .withSlotClasses(List.of(new SlotClass(256, 64), new SlotClass(4096, 16)))
                .withLanes(8, 4096);
    }
}
