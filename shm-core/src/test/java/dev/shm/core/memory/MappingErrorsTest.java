package dev.shm.core.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.shm.core.ErrnoException;
import dev.shm.core.internal.Libc;
import dev.shm.core.memory.MappingException.Reason;
import dev.shm.core.testing.ChildJvm;
import dev.shm.core.testing.ShmDirectory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class MappingErrorsTest {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(MapMode.class)
    void missingFile(MapMode mode) {
        Path path = dir.resolve("missing");
        assertRefused(() -> MappedFile.open(path, mode), Reason.NOT_FOUND)
                .hasMessage("cannot open for " + mode + " " + path + ": no such file (ENOENT)")
                .hasCauseInstanceOf(ErrnoException.class);
    }

    @Test
    void createInAMissingDirectory() {
        Path path = dir.resolve("no/such/dir/file");
        assertRefused(() -> MappedFile.create(path, 4096), Reason.NOT_FOUND)
                .hasMessage("cannot create " + path + ": no such file (ENOENT)");
    }

    @ParameterizedTest
    @EnumSource(MapMode.class)
    void directory(MapMode mode) {
        assertRefused(() -> MappedFile.open(dir, mode), Reason.IS_DIRECTORY)
                .hasMessageEndingWith(dir + ": it is a directory, not a regular file");
    }

    @Test
    void emptyFile() throws IOException {
        Path path = Files.createFile(dir.resolve("empty"));
        assertRefused(() -> MappedFile.open(path, MapMode.READ_WRITE), Reason.EMPTY)
                .hasMessage("cannot map " + path + ": the file is empty (0 bytes)");
        assertRefused(() -> SnapshotReader.open(path), Reason.EMPTY);
    }

    @Test
    void devNull() {
        assertRefused(() -> MappedFile.open(Path.of("/dev/null"), MapMode.READ_ONLY), Reason.UNMAPPABLE)
                .hasMessage("cannot map /dev/null: it is a character device, not a regular file; only regular files "
                        + "and memfds can be mapped");
        assertRefused(() -> MappedFile.open(Path.of("/dev/zero"), MapMode.READ_WRITE), Reason.UNMAPPABLE);
    }

    @Test
    void fifoIsRefusedWithoutBlocking() throws IOException, InterruptedException {
        Path fifo = dir.resolve("fifo");
        Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).start();
        assertThat(mkfifo.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(mkfifo.exitValue()).isZero();
        // Opening a FIFO without a writer blocks forever unless done with O_NONBLOCK.
        assertRefused(() -> MappedFile.open(fifo, MapMode.READ_ONLY), Reason.UNMAPPABLE)
                .hasMessageContaining("it is a FIFO (named pipe), not a regular file");
        assertRefused(() -> MappedFile.open(fifo, MapMode.READ_WRITE), Reason.UNMAPPABLE);
    }

    @Test
    void socketFile() {
        Path socket = dir.resolve("sock");
        try (FdSocketServer _ = FdSocketServer.bind(socket)) {
            assertRefused(() -> MappedFile.open(socket, MapMode.READ_ONLY), Reason.UNMAPPABLE)
                    .hasMessageContaining("the file cannot be mapped (ENXIO)");
        }
    }

    @Test
    void procFileReportsZeroBytes() {
        assertRefused(() -> MappedFile.open(Path.of("/proc/self/status"), MapMode.READ_ONLY), Reason.EMPTY)
                .hasMessage("cannot map /proc/self/status: the file is empty (0 bytes); files under /proc and /sys "
                        + "report 0 bytes and cannot be mapped");
    }

    @Test
    void fileShorterThanTheCallerExpects() {
        Path path = shm.path("short");
        try (MappedFile _ = MappedFile.create(path, 4096)) {
            assertRefused(() -> MappedFile.open(path, MapMode.READ_ONLY, 8192), Reason.TOO_SHORT)
                    .hasMessage(path + " is 4096 bytes, shorter than the 8192 bytes the caller expects");
        }
    }

    /**
     * Permission denied needs a process that the file's mode shuts out. Root passes every mode
     * check through CAP_DAC_OVERRIDE, so as root the check runs in a child JVM started without that
     * capability.
     */
    @Test
    void permissionDenied() {
        Path path = shm.path("denied");
        try (MappedFile _ = MappedFile.create(path, 4096, CreateOptions.DEFAULTS.withPermissions("---------"))) {
            if (Libc.geteuid() != 0) {
                assertRefused(() -> MappedFile.open(path, MapMode.READ_WRITE), Reason.ACCESS_DENIED)
                        .hasMessageStartingWith("cannot open for READ_WRITE " + path + ": permission denied (EACCES); "
                                + "the file is --------- owned by ");
                return;
            }
            assumeTrue(canDropDacOverride(), "root, but setpriv cannot drop CAP_DAC_OVERRIDE here");
            try (ChildJvm child = ChildJvm.builder(MemoryChild.class)
                    .commandPrefix("/usr/bin/setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all")
                    .args("open-file", path.toString(), "READ_WRITE")
                    .start()) {
                assertThat(child.awaitLine("REFUSED", Duration.ofSeconds(60))).isEqualTo("ACCESS_DENIED cannot open for "
                        + "READ_WRITE " + path + ": permission denied (EACCES); the file is --------- owned by root, and "
                        + "this process runs as uid 0; run as a user the file's mode allows, or change the mode");
                assertThat(child.awaitExit(Duration.ofSeconds(30))).isZero();
            }
        }
    }

    private static boolean canDropDacOverride() {
        if (!Files.isExecutable(Path.of("/usr/bin/setpriv"))) {
            return false;
        }
        try {
            Process probe = new ProcessBuilder("/usr/bin/setpriv", "--bounding-set=-dac_override,-dac_read_search",
                    "--inh-caps=-all", "true").redirectErrorStream(true).start();
            return probe.waitFor(10, TimeUnit.SECONDS) && probe.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static AbstractThrowableAssert<?, ? extends Throwable> assertRefused(
            org.assertj.core.api.ThrowableAssert.ThrowingCallable call, Reason reason) {
        return assertThatThrownBy(call)
                .isInstanceOfSatisfying(MappingException.class, e -> assertThat(e.reason()).isEqualTo(reason));
    }
}
