package dev.shm.core.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.shm.core.testing.TestNative;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Process identity from {@code /proc}: gone, another process at the pid, or not readable now. */
class ProcessesTest {

    @Test
    void thisProcessStartTimeIsItsStatsAndStays() {
        long start = Processes.startTime();
        assertThat(start).isPositive();
        assertThat(Processes.startTime(Processes.pid())).isEqualTo(start);
        assertThat(Processes.mayBeAlive(Processes.pid(), start, Processes.pidNamespace())).isTrue();
    }

    @Test
    void aProcessThatEndedIsGoneAndAnotherStartTimeIsAnotherProcess() throws Exception {
        Process child = new ProcessBuilder("true").start();
        assertThat(child.waitFor(30, TimeUnit.SECONDS)).isTrue();
        long pid = child.pid(); // reaped: no such process now (a new one at this pid within the test is unlikely)
        assertThat(Processes.startTime(pid)).isEqualTo(-1);
        assertThat(Processes.mayBeAlive(pid, 12345, Processes.pidNamespace())).isFalse();

        long start = Processes.startTime();
        assertThat(Processes.mayBeAlive(Processes.pid(), start + 1, Processes.pidNamespace()))
                .as("the pid is someone else's now").isFalse();
        assertThat(Processes.mayBeAlive(pid, 12345, Processes.pidNamespace() + 1))
                .as("another namespace cannot be checked: unknown counts as alive").isTrue();
    }

    /**
     * A stat that cannot be read for want of a descriptor says nothing about the process: it counts
     * as alive, so that a process out of descriptors does not recover live peers.
     */
    @Test
    void aStatThatCannotBeReadNowCountsAsAlive() {
        long pid = Processes.pid();
        long start = Processes.startTime();
        long read;
        boolean alive;
        long soft = TestNative.exhaustDescriptors();
        try {
            read = Processes.startTime(pid);
            alive = Processes.mayBeAlive(pid, start + 1, Processes.pidNamespace());
        } finally {
            TestNative.restoreDescriptorLimit(soft);
        }
        assertThat(read).isEqualTo(Processes.UNREADABLE);
        assertThat(alive).isTrue();
        assertThat(Processes.startTime(pid)).as("readable again").isEqualTo(start);
    }
}
