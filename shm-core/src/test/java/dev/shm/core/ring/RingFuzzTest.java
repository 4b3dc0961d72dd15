package dev.shm.core.ring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.shm.core.testing.Fuzzer;
import dev.shm.core.testing.ShmDirectory;
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
        String tally = Fuzzer.plan(shm.directory("ring-fuzz"), 150).runChild(RingFuzzChild.class);
        assertThat(tally).as("damaged rings are still used").contains("poll=", "send=");
    }
}
