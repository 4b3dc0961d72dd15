package dev.shm.core;

import static org.assertj.core.api.Assertions.assertThat;

import dev.shm.core.memory.MemoryChild;
import dev.shm.core.testing.ChildJvm;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class PlatformTest {

    private static final Duration LINE = Duration.ofSeconds(60);

    @Test
    void thisLinuxJvmIsSupported() {
        assertThat(Platform.isSupported()).isTrue();
        Platform.ensureSupported();
        assertThat(Platform.problem("Linux", "amd64", true)).isEmpty();
        assertThat(Platform.problem("Linux", "aarch64", true)).isEmpty();
    }

    @Test
    void otherSystemsAndCpusAreNamed() {
        assertThat(Platform.problem("Mac OS X", "aarch64", true)).get(org.assertj.core.api.InstanceOfAssertFactories.STRING)
                .isEqualTo("shm-core runs on Linux only (it maps /dev/shm and calls memfd_create, futex and fcntl); "
                        + "this JVM runs on os.name=Mac OS X");
        assertThat(Platform.problem("Windows 11", "amd64", true)).isPresent();
        assertThat(Platform.problem("Linux", "riscv64", true)).get(org.assertj.core.api.InstanceOfAssertFactories.STRING)
                .contains("os.arch=riscv64");
    }

    @Test
    void aJvmOnAnotherSystemGetsUnsupportedOperationException() {
        try (ChildJvm child = ChildJvm.builder(MemoryChild.class).jvmArgs("-Dos.name=Darwin")
                .args("create-memfd").start()) {
            assertThat(child.awaitLine("ERROR", LINE)).isEqualTo("java.lang.UnsupportedOperationException: "
                    + "shm-core runs on Linux only (it maps /dev/shm and calls memfd_create, futex and fcntl); "
                    + "this JVM runs on os.name=Darwin");
            assertThat(child.awaitExit(LINE)).isZero();
        }
    }

    @Test
    void aJvmWithoutNativeAccessGetsAMessageNamingTheFlag() {
        try (ChildJvm child = ChildJvm.builder(MemoryChild.class).withoutNativeAccess().args("create-memfd").start()) {
            assertThat(child.awaitLine("ERROR", LINE))
                    .startsWith("dev.shm.core.NativeAccessException: shm-core needs native access")
                    .contains("not enabled for the unnamed module (the class path)")
                    .contains("start the JVM with --enable-native-access=ALL-UNNAMED");
            assertThat(child.awaitExit(LINE)).isZero();
        }
    }
}
