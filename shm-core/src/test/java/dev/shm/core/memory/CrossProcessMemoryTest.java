package dev.shm.core.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.shm.core.ShmTimeoutException;
import dev.shm.core.testing.ChildJvm;
import dev.shm.core.testing.ShmDirectory;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The memory layer between two real processes: a child JVM started from this JVM's
 * {@code java.home} with the test class path.
 */
class CrossProcessMemoryTest {

    private static final Duration LINE = Duration.ofSeconds(60);
    private static final long PID = ProcessHandle.current().pid();
    private static final int THREADS = 2;
    private static final int ITERATIONS = 100_000;

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    @TempDir
    Path dir;

    @Test
    void fileMappedByTwoProcessesSharesWritesAndAtomicAdds() throws InterruptedException {
        Path path = shm.path("cross-file");
        try (MappedFile file = MappedFile.create(path, 4096);
             ChildJvm child = ChildJvm.start(MemoryChild.class, "shared-file", path.toString(),
                     String.valueOf(THREADS), String.valueOf(ITERATIONS))) {
            exchangeAndCount(file, child);
        }
    }

    @Test
    void memfdOpenedByPidAndFdSharesWritesAndAtomicAdds() throws InterruptedException {
        try (MemfdBuffer buffer = MemfdBuffer.create("cross-memfd", 4096);
             ChildJvm child = ChildJvm.start(MemoryChild.class, "shared-memfd", String.valueOf(PID),
                     String.valueOf(buffer.fd()), "4096", String.valueOf(THREADS), String.valueOf(ITERATIONS))) {
            exchangeAndCount(buffer, child);
        }
    }

    /** Writes a marker, reads the child's, then both processes add to one counter at once. */
    private static void exchangeAndCount(MemoryRegion region, ChildJvm child) throws InterruptedException {
        region.putLong(8, 0xFA7E_12L);
        assertThat(child.awaitLine("SAW", LINE)).isEqualTo(String.valueOf(0xFA7E_12L));
        child.awaitLine("WROTE", LINE);
        assertThat(region.getLong(16)).isEqualTo(0xC41DL);

        AtomicLongView counter = region.atomicLong(0);
        child.send("GO");
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
            workers.add(Thread.ofPlatform().start(() -> {
                for (int i = 0; i < ITERATIONS; i++) {
                    counter.getAndAdd(1);
                }
            }));
        }
        for (Thread worker : workers) {
            worker.join(60_000);
        }
        child.awaitLine("DONE", LINE);
        assertThat(child.awaitExit(LINE)).isZero();
        assertThat(counter.getVolatile()).isEqualTo(2L * THREADS * ITERATIONS);
    }

    @Test
    void extentMapsWhatAnotherProcessGrewWithoutRemappingTheFirstPart() {
        Path path = shm.path("cross-extent");
        try (MappedFile file = MappedFile.create(path, 4096)) {
            AtomicLongView head = file.atomicLong(0);
            head.setRelease(1);
            try (ChildJvm child = ChildJvm.start(MemoryChild.class, "grow-file", path.toString(), "16384")) {
                assertThat(child.awaitLine("GREW", LINE)).isEqualTo("16384");
                assertThat(child.awaitExit(LINE)).isZero();
            }
            assertThat(file.size()).isEqualTo(4096);
            assertThat(file.fileSize()).isEqualTo(16384);
            try (MappedExtent extent = file.mapExtent(4096, 12288)) {
                assertThat(extent.getLong(12288 - 8)).isEqualTo(0x6E3L);
            }
            assertThat(head.getAcquire()).isEqualTo(1);
        }
    }

    @Test
    void anotherProcessCannotShrinkOrGrowASealedMemfd() {
        try (MemfdBuffer buffer = MemfdBuffer.create("sealed", 8192);
             ChildJvm child = ChildJvm.start(MemoryChild.class, "resize-sealed-memfd", String.valueOf(PID),
                     String.valueOf(buffer.fd()))) {
            assertThat(child.awaitLine("SEALS", LINE)).isEqualTo(String.valueOf(MemfdBuffer.REQUIRED_SEALS));
            assertThat(child.awaitLine("GROW", LINE))
                    .startsWith("REFUSED SEALED cannot resize memfd:sealed from 8192 to 16384 bytes: it is sealed")
                    .contains("the kernel refused", "EPERM");
            assertThat(child.awaitLine("SHRINK", LINE)).startsWith("REFUSED SEALED cannot resize memfd:sealed from 8192 "
                    + "to 4096 bytes: it is sealed");
            // Not just our API: the kernel refuses a plain ftruncate through another descriptor.
            assertThat(child.awaitLine("RAW-GROW", LINE)).isEqualTo("REFUSED Operation not permitted");
            assertThat(child.awaitLine("RAW-SHRINK", LINE)).isEqualTo("REFUSED Operation not permitted");
            assertThat(child.awaitLine("SIZE", LINE)).isEqualTo("8192");
            assertThat(child.awaitExit(LINE)).isZero();
            assertThat(buffer.fileSize()).isEqualTo(8192);
        }
    }

    @Test
    void anotherProcessRefusesAnUnsealedMemfd() {
        try (MemfdBuffer buffer = MemfdBuffer.createUnsealed("loose", 8192);
             ChildJvm child = ChildJvm.start(MemoryChild.class, "open-memfd", String.valueOf(PID),
                     String.valueOf(buffer.fd()), "8192")) {
            assertThat(child.awaitLine("REFUSED", LINE)).startsWith("NOT_SEALED memfd:loose");
            assertThat(child.awaitExit(LINE)).isZero();
        }
    }

    /**
     * A child that connects and never reads: the hand-overs fill its queue, and the first one that
     * finds no room waits the socket's send timeout, then fails with a {@link ShmTimeoutException}
     * instead of blocking for good.
     */
    @Test
    void aHandOverToAProcessThatDoesNotReadTimesOut() {
        Path socket = dir.resolve("unread.sock");
        try (FdSocketServer server = FdSocketServer.bind(socket);
             ChildJvm child = ChildJvm.start(MemoryChild.class, "connect-and-hold", socket.toString());
             MemfdBuffer buffer = MemfdBuffer.create("unread", 4096);
             FdSocket connection = server.accept(LINE)) {
            assertThat(connection).as("the child connects").isNotNull();
            child.awaitLine("CONNECTED", LINE);
            assertThat(connection.sendTimeout()).isEqualTo(FdSocket.DEFAULT_SEND_TIMEOUT);
            Duration timeout = Duration.ofMillis(200);
            connection.sendTimeout(timeout);
            int sent = 0;
            long started;
            ShmTimeoutException timedOut = null;
            do {
                assertThat(sent).as("hand-overs queued before the queue is full").isLessThan(100_000);
                started = System.nanoTime();
                try {
                    buffer.sendTo(connection);
                    sent++;
                } catch (ShmTimeoutException e) {
                    timedOut = e;
                }
            } while (timedOut == null);
            Duration waited = Duration.ofNanos(System.nanoTime() - started);
            assertThat(sent).as("hand-overs queued").isPositive();
            assertThat(waited).as("the last send waited for room").isGreaterThanOrEqualTo(Duration.ofMillis(150))
                    .isLessThan(LINE);
            assertThat(timedOut).hasMessageContaining("200 ms").hasMessageContaining("does not read it");
            child.send("DONE");
            assertThat(child.awaitExit(LINE)).isZero();
        }
    }

    /**
     * SCM_RIGHTS hand-over to a child that did not inherit the descriptor; the child's mapping then
     * outlives the creator's close.
     */
    @Test
    void memfdHandedOverASocketOutlivesTheCreatorsClose() {
        Path socket = dir.resolve("memfd.sock");
        try (FdSocketServer server = FdSocketServer.bind(socket);
             ChildJvm child = ChildJvm.start(MemoryChild.class, "receive-memfd", socket.toString(), "65536")) {
            assertThat(child.awaitLine("MEMFDS-BEFORE", LINE)).isEqualTo("[]");
            MemfdBuffer buffer = MemfdBuffer.create("handed-over", 65536);
            try (buffer; FdSocket connection = server.accept(LINE)) {
                assertThat(connection).as("the child connects").isNotNull();
                buffer.putLong(0, 1000);
                buffer.sendTo(connection);
                assertThat(child.awaitLine("GOT", LINE))
                        .isEqualTo("handed-over 65536 " + MemfdBuffer.REQUIRED_SEALS + " 1000");
                child.awaitLine("WROTE", LINE);
                assertThat(buffer.getLong(8)).isEqualTo(0xBEEFL);
            }
            assertThat(buffer.isClosed()).isTrue();
            child.send("CLOSED");
            assertThat(child.awaitLine("STILL", LINE)).isEqualTo("1001");
            assertThat(child.awaitExit(LINE)).isZero();
        }
    }
}
