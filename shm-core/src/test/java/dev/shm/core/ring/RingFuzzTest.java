package dev.shm.core.ring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.shm.core.testing.ChildJvm;
import dev.shm.core.testing.ShmDirectory;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Random damage to a live ring, in a child JVM with a small heap ({@link RingFuzzChild}): no crash,
 * no hang, no huge allocation, no exception but the library's own. The seed is printed with any
 * failure; {@code -Dshm.fuzz.seed} replays a run, {@code -Dshm.fuzz.iteration} one iteration of it
 * (its iteration seed), {@code -Dshm.fuzz.iterations} runs more.
 */
class RingFuzzTest {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    @Test
    void randomDamageToALiveRingNeverCrashesHangsOrAllocatesHugely() {
        Path directory = shm.directory("ring-fuzz");
        long seed = Long.getLong("shm.fuzz.seed", System.nanoTime());
        int iterations = Integer.getInteger("shm.fuzz.iterations", 150);
        String only = System.getProperty("shm.fuzz.iteration");
        if (only != null) {
            iterations = 1;
        }
        long life = 30 + iterations; // seconds: about 0.3 s an iteration
        String[] args = {directory.toString(), String.valueOf(seed), String.valueOf(iterations), String.valueOf(life)};
        if (only != null) {
            args = java.util.Arrays.copyOf(args, 5);
            args[4] = only;
        }
        try (ChildJvm fuzzer = ChildJvm.builder(RingFuzzChild.class)
                .jvmArgs("-Xmx96m", "-XX:+ExitOnOutOfMemoryError")
                .args(args)
                .start()) {
            String result = fuzzer.awaitLine("FUZZED", Duration.ofSeconds(life + 10));
            assertThat(fuzzer.awaitExit(Duration.ofSeconds(10))).as(fuzzer.output()).isZero();
            assertThat(result).as("seed " + seed).startsWith(iterations + " ");
            assertThat(result).as("damaged rings are still used").contains("poll=", "send=");
        }
    }
}
