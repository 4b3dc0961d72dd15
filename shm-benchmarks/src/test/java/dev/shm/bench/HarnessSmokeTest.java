package dev.shm.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs every case of the harness for a few thousand messages: proves that each transport connects,
 * delivers every message in order (both sides check the stamps) and reports its numbers. Not a
 * benchmark: run.sh is.
 */
class HarnessSmokeTest {

    @Test
    void everyCaseRunsAtSmallPayloads(@TempDir Path out) throws Exception {
        Results results = Harness.run(Harness.Options.parse("--repeats", "1", "--payloads", "32", "--round-trips",
                "2000", "--warmup", "500", "--messages", "20000", "--wake-round-trips", "20", "--idle-seconds", "0.3",
                "--no-pin", "--quiet", "--out", out.toString()));

        assertThat(results.failures()).isZero();
        for (Kind kind : Kind.values()) {
            assertThat(results.median(kind.label(), 32, Results.P50)).as(kind.label() + " p50").isPositive();
            if (kind.hasStream()) {
                assertThat(results.median(kind.label(), 32, Results.MSGS)).as(kind.label() + " msgs/s").isPositive();
            }
        }
        assertThat(results.median(Kind.BLOCKING.label(), 0, Results.IDLE_CPU)).isNotNaN();
        assertThat(out.resolve("results.md")).exists();
        assertThat(out.resolve("rtt-32B.svg")).exists();
        assertThat(out.resolve("throughput-mbs.svg")).exists();
    }

    @Test
    void largePayloadsTravelThroughThePoolAndAeronFragmentsAndSpringsLanes() throws Exception {
        Results results = Harness.run(Harness.Options.parse("--repeats", "1", "--payloads", "1m", "--cases",
                "shm,aeron-invoker,agrona,uds,si-shm", "--round-trips", "5000", "--warmup", "1000", "--messages", "50000",
                "--no-pin", "--quiet"));

        assertThat(results.failures()).isZero();
        // si-shm: through the Spring codec, a slot reference in the gateway's lanes and in the channel.
        for (String kase : new String[] {"shm", "aeron-invoker", "agrona", "uds", "si-shm"}) {
            assertThat(results.median(kase, 1 << 20, Results.MBS)).as(kase + " MB/s").isPositive();
        }
        assertThat(results.median("copy", 1 << 20, Results.COPY)).isPositive();
    }
}
