package dev.shm.core.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.shm.core.memory.MemfdBuffer;
import dev.shm.core.segment.DirectoryDescriptor;
import dev.shm.core.segment.PeerState;
import dev.shm.core.ring.Channel;
import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.ring.SendOutcome;
import dev.shm.core.ring.Subscription;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentChild;
import dev.shm.core.segment.SegmentInspector;
import dev.shm.core.segment.SegmentOptions;
import dev.shm.core.segment.TestSegments;
import dev.shm.core.testing.ChildJvm;
import dev.shm.core.testing.ShmDirectory;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The packaged jar's command line, run as an operator runs it: {@code java -jar shm-core-<version>.jar}. */
class ShmCliIT {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private Path directory;

    @BeforeEach
    void directory() {
        directory = shm.directory("segments");
    }

    /** What one run of the jar printed. */
    record Run(int exitCode, String out, String err) {
        List<String> errLines() {
            return err.lines().toList();
        }
    }

    private static Run cli(String... args) {
        Path jar = Path.of(System.getProperty("shm.cli.jar", "target/shm-core.jar"));
        assertThat(jar).as("the packaged jar (run by failsafe after package)").isRegularFile();
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-jar", jar.toString()));
        command.addAll(List.of(args));
        try {
            Path out = Files.createTempFile("shm-cli", ".out");
            Path err = Files.createTempFile("shm-cli", ".err");
            try {
                Process process = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile())
                        .start();
                if (!process.waitFor(60, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    throw new AssertionError("the CLI ran longer than 60 s: " + command);
                }
                return new Run(process.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                        Files.readString(err, StandardCharsets.UTF_8));
            } finally {
                Files.deleteIfExists(out);
                Files.deleteIfExists(err);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    @Test
    void statPrintsEveryPartOfALiveSegmentWithoutJoiningIt() {
        SegmentOptions options = TestSegments.options(directory, "orders");
        try (Segment segment = Segment.open(options, "orders-service");
             MemfdBuffer buffer = MemfdBuffer.create("big-frame", 8192)) {
            int service = segment.directory().declare("pricing", DirectoryDescriptor.SERVICE, new String[0],
                    new long[0], index -> new long[] {0, 0});
            segment.directory().provide(service);
            segment.lanes().open(service, segment.peerId());
            segment.slotPool().allocate(100);
            segment.leases().register(buffer);
            Channel orders = Channel.declare(segment, "orders", ChannelOptions.defaults().withCapacity(64).withSlotSize(128));
            Subscription billing = orders.subscribe("billing", true);
            orders.subscribe("audit", false).close();
            for (int i = 0; i < 5; i++) {
                assertThat(orders.send(new byte[] {1, 2, 3})).isEqualTo(SendOutcome.SENT);
            }
            assertThat(billing.poll(m -> { }, 2)).isEqualTo(2);

            Run run = cli("stat", options.path().toString());

            assertThat(run.exitCode()).as(run.err()).isZero();
            assertThat(run.err()).isEmpty();
            assertThat(run.out())
                    .contains("segment " + options.path())
                    .contains("layout version 4")
                    .contains("by pid " + ProcessHandle.current().pid())
                    .contains("heartbeat every 50 ms, liveness timeout 1000 ms")
                    .contains("host goodbye: no; stale (no peer alive): no")
                    .contains("peers (1 of 8 in use)")
                    .containsPattern("0 +ATTACHED +1 +" + ProcessHandle.current().pid() + " +ALIVE +\\d+ (ms|us) +orders-service")
                    .containsPattern("service +pricing +0")
                    .contains("channels (1)")
                    .containsPattern("orders +64 +128 B +5 +5 +3 +0 +0 +0 +0")
                    .contains("consumer groups (2)")
                    .containsPattern("orders +billing +yes +1 +no +2 +3 +0 +0")
                    .containsPattern("orders +audit +no +0 +no +0 +5 +0 +0")
                    .containsPattern("ACTIVE +\\d+ +0 +0 +0 +4 KiB")
                    .contains("slot pool (2 classes)")
                    .containsPattern("0 +256 B +64 +63 +1 +0 +1 +0")
                    .containsPattern("1 +4 KiB +16 +16 +0 +0 +1 +0")
                    .contains("memfd leases (1)")
                    .containsPattern("peers recovered +0")
                    .containsPattern("slots reclaimed +0");
            assertThat(segment.peers()).filteredOn(p -> p.state() != PeerState.EMPTY).as("stat did not attach").hasSize(1);
        }
    }

    @Test
    void statShowsDeadPeersOfAStaleSegment() {
        SegmentOptions options = TestSegments.options(directory, "left");
        leaveStale(options);
        Run run = cli("stat", options.path().toString());
        assertThat(run.exitCode()).as(run.err()).isZero();
        assertThat(run.out()).contains("stale (no peer alive): yes").containsPattern("ATTACHED +1 +\\d+ +DEAD .*squatter")
                .containsPattern("channel +kept");
    }

    @Test
    void garbageMissingAndWrongArgumentsFailWithOneLine() throws IOException {
        Path garbage = directory.resolve("garbage.shm");
        Files.writeString(garbage, "no segment here\n".repeat(1000));
        Run notASegment = cli("stat", garbage.toString());
        assertThat(notASegment.exitCode()).isEqualTo(ShmCli.FAILED);
        assertThat(notASegment.out()).isEmpty();
        assertThat(notASegment.errLines()).singleElement().asString()
                .startsWith("shm: " + garbage + " is not a segment: expected magic");

        Path tiny = directory.resolve("tiny.shm");
        Files.write(tiny, new byte[10]);
        assertThat(cli("stat", tiny.toString()).errLines()).singleElement().asString().contains("is truncated: 10 bytes");

        Path missing = directory.resolve("missing.shm");
        Run notThere = cli("stat", missing.toString());
        assertThat(notThere.exitCode()).isEqualTo(ShmCli.FAILED);
        assertThat(notThere.errLines()).singleElement().asString().startsWith("shm: ").contains(missing.toString());

        Run aDirectory = cli("stat", directory.toString());
        assertThat(aDirectory.exitCode()).isEqualTo(ShmCli.FAILED);
        assertThat(aDirectory.errLines()).singleElement().asString().contains("is a directory");

        Run noDirectory = cli("clean", directory.resolve("nowhere").toString());
        assertThat(noDirectory.exitCode()).isEqualTo(ShmCli.FAILED);
        assertThat(noDirectory.errLines()).singleElement().asString().contains("does not exist");

        Run usage = cli("frobnicate");
        assertThat(usage.exitCode()).isEqualTo(ShmCli.USAGE);
        assertThat(usage.errLines().getFirst()).isEqualTo("shm: expected 'stat <segment-file>' or 'clean <directory>', got 'frobnicate'");
        assertThat(cli().exitCode()).isEqualTo(ShmCli.USAGE);
        assertThat(cli("--help").out()).contains("stat <segment-file>").contains("clean <directory>");
    }

    @Test
    void cleanRemovesStaleSegmentsAndDeadCreatorsLeftoversOnly() throws IOException {
        SegmentOptions stale = TestSegments.options(directory, "stale");
        leaveStale(stale);
        SegmentOptions live = TestSegments.options(directory, "live");
        Path garbage = directory.resolve("garbage.shm");
        Files.writeString(garbage, "not a segment");
        Path unrelated = directory.resolve("notes.txt");
        Files.writeString(unrelated, "keep me");
        Path leftover = directory.resolve(".gone.shm." + deadPid() + ".1.tmp");
        Files.writeString(leftover, "half-built segment");
        Path ownTemporary = directory.resolve(".building.shm." + ProcessHandle.current().pid() + ".1.tmp");
        Files.writeString(ownTemporary, "a segment being built by a live process");
        try (Segment _ = Segment.open(live, "live-service")) {
            Run run = cli("clean", directory.toString());

            assertThat(run.exitCode()).as(run.err()).isZero();
            assertThat(run.out())
                    .contains("removed " + stale.path() + " (no peer alive)")
                    .contains("kept " + live.path() + " (in use)")
                    .contains("skipped " + garbage + ":")
                    .contains("removed " + leftover)
                    .contains("2 removed, 1 kept");
            assertThat(stale.path()).doesNotExist();
            assertThat(leftover).doesNotExist();
            assertThat(live.path()).exists();
            assertThat(garbage).exists();
            assertThat(unrelated).exists();
            assertThat(ownTemporary).exists();
            try (SegmentInspector inspector = SegmentInspector.open(live.path())) {
                assertThat(inspector.isStale()).isFalse();
            }
        }
    }

    /** A child attaches, declares a channel and is killed, leaving the segment with a dead peer only. */
    private static void leaveStale(SegmentOptions options) {
        try (ChildJvm squatter = ChildJvm.start(SegmentChild.class, "squat", options.directory().toString(),
                options.name())) {
            squatter.awaitLine("READY", Duration.ofSeconds(60));
            squatter.kill();
        }
        assertThat(options.path()).exists();
    }

    /** The pid of a process that has exited. */
    private static long deadPid() {
        try {
            Process process = new ProcessBuilder("true").start();
            assertThat(process.waitFor(10, TimeUnit.SECONDS)).isTrue();
            long pid = process.pid();
            assertThat(ProcessHandle.of(pid)).isEmpty();
            return pid;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}
