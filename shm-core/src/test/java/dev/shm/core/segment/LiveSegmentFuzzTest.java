package dev.shm.core.segment;

import static org.assertj.core.api.Assertions.assertThat;

import dev.shm.core.testing.ChildJvm;
import dev.shm.core.testing.ShmDirectory;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Random damage to a live segment that two processes use, each a child JVM with a small heap
 * ({@link LiveSegmentFuzzChild} and its partner): no crash, no hang, no huge allocation, no
 * exception but the library's own, in either, nor in recovery after the partner's SIGKILL. (SegmentCorruptionTest
 * damages files before they are attached; this damages one in use.) The seed is printed with any
 * failure; {@code -Dshm.fuzz.seed} replays a run, {@code -Dshm.fuzz.iteration} one iteration of it
 * (its iteration seed, printing its edits), {@code -Dshm.fuzz.iterations} runs more.
 */
class LiveSegmentFuzzTest {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    @Test
    void randomDamageToALiveSegmentNeverCrashesHangsOrAllocatesHugely() {
        Path directory = shm.directory("segment-fuzz");
        long seed = Long.getLong("shm.fuzz.seed", System.nanoTime());
        int iterations = Integer.getInteger("shm.fuzz.iterations", 100);
        String only = System.getProperty("shm.fuzz.iteration");
        if (only != null) {
            iterations = 1;
        }
        long life = 30 + iterations; // seconds: about 0.3 s an iteration
        String[] args = {directory.toString(), String.valueOf(seed), String.valueOf(iterations), String.valueOf(life)};
        if (only != null) {
            args = Arrays.copyOf(args, 5);
            args[4] = only;
        }
        try (ChildJvm fuzzer = ChildJvm.builder(LiveSegmentFuzzChild.class)
                .jvmArgs("-Xmx96m", "-XX:+ExitOnOutOfMemoryError", "-Dshm.lockPatienceMillis=2000")
                .args(args)
                .start()) {
            String result = fuzzer.awaitLine("FUZZED", Duration.ofSeconds(life + 10));
            System.out.println("live segment fuzz (seed " + seed + "): " + result);
            assertThat(fuzzer.awaitExit(Duration.ofSeconds(10))).as(fuzzer.output()).isZero();
            assertThat(result).as("seed " + seed).startsWith(iterations + " ");
            assertThat(result).as("damaged segments are still used").contains("allocate=", "offer=", "read=",
                    "partner.offer=", "partner.read=", "kill=");
        }
    }
}
