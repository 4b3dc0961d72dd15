package dev.shm.core.segment;

import static org.assertj.core.api.Assertions.assertThat;

import dev.shm.core.testing.Fuzzer;
import dev.shm.core.testing.ShmDirectory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Random damage to a live segment that two processes use, each a child JVM with a small heap
 * ({@link LiveSegmentFuzzChild} and its partner): no crash, no hang, no huge allocation, no
 * exception but the library's own, in either, nor in recovery after the partner's SIGKILL.
 * (SegmentCorruptionTest damages files before they are attached; this damages one in use.) The
 * seed is printed with any failure; {@code -Dshm.fuzz.seed} replays a run,
 * {@code -Dshm.fuzz.iteration} one iteration of it (its iteration seed, printing its edits),
 * {@code -Dshm.fuzz.iterations} runs more ({@link Fuzzer}).
 */
class LiveSegmentFuzzTest {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    @Test
    void randomDamageToALiveSegmentNeverCrashesHangsOrAllocatesHugely() {
        Fuzzer.Plan plan = Fuzzer.plan(shm.directory("segment-fuzz"), 80);
        String tally = plan.runChild(LiveSegmentFuzzChild.class, "-Dshm.lockPatienceMillis=2000");
        System.out.println("live segment fuzz (seed " + plan.seed() + "): " + tally);
        assertThat(tally).as("damaged segments are still used").contains("allocate=", "offer=", "read=",
                "partner.offer=", "partner.read=");
        if (plan.iterations() >= 40) { // one in six kills its partner: not a replay of one iteration
            assertThat(tally).as("partners are killed mid-use").contains("kill=");
        }
    }
}
