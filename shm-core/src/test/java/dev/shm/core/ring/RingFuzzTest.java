package dev.shm.core.ring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.shm.core.testing.ChildJvm;
import dev.shm.core.testing.Fuzzer;
import dev.shm.core.testing.ShmDirectory;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Random damage to a live ring, in a child JVM with a small heap ({@link RingFuzzChild}): no crash,
 * no hang, no huge allocation, no exception but the library's own. The seed is printed with any
 * failure; {@code -Dshm.fuzz.seed} replays a run, {@code -Dshm.fuzz.iteration} one iteration of it
 * (its iteration seed), {@code -Dshm.fuzz.iterations} runs more ({@link Fuzzer}).
 */
class RingFuzzTest {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    @Test
    void randomDamageToALiveRingNeverCrashesHangsOrAllocatesHugely() {
        Fuzzer.Plan plan = Fuzzer.plan(shm.directory("ring-fuzz"), 150);
        try (ChildJvm fuzzer = ChildJvm.builder(RingFuzzChild.class)
                .jvmArgs("-Xmx96m", "-XX:+ExitOnOutOfMemoryError")
                .args(plan.args())
                .start()) {
            String result = fuzzer.awaitLine("FUZZED", Duration.ofSeconds(plan.lifeSeconds() + 10));
            assertThat(fuzzer.awaitExit(Duration.ofSeconds(10))).as(fuzzer.output()).isZero();
            assertThat(result).as("seed " + plan.seed()).startsWith(plan.iterations() + " ");
            assertThat(result).as("damaged rings are still used").contains("poll=", "send=");
        }
    }
}
