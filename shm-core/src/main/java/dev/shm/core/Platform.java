package dev.shm.core;

import java.util.Locale;
import java.util.Optional;

/**
 * Tells whether this JVM can use shm-core, and refuses clearly when it cannot.
 *
 * <p>shm-core needs Linux (it maps files in {@code /dev/shm} and calls {@code memfd_create},
 * {@code futex} and Linux {@code fcntl} commands), a 64-bit little-endian CPU whose C structures it
 * knows ({@code x86_64} or {@code aarch64}), and native access for the module that holds it (see
 * {@link NativeAccessException}). Every public entry point of shm-core that touches the operating
 * system calls {@link #ensureSupported()} first.
 */
public final class Platform {

    private static final String PROBLEM = problem(
                    System.getProperty("os.name", ""),
                    System.getProperty("os.arch", ""),
                    Platform.class.getModule().isNativeAccessEnabled())
            .orElse(null);

    private Platform() {
    }

    /**
     * Returns whether shm-core can run in this JVM.
     *
     * @return {@code true} on Linux x86_64/aarch64 with native access enabled
     */
    public static boolean isSupported() {
        return PROBLEM == null;
    }

    /**
     * Throws unless shm-core can run in this JVM.
     *
     * @throws UnsupportedOperationException on an operating system or CPU that shm-core does not support
     * @throws NativeAccessException when the JVM was started without native access for shm-core
     */
    public static void ensureSupported() {
        if (PROBLEM != null) {
            throw PROBLEM.equals(NATIVE_ACCESS)
                    ? new NativeAccessException(moduleName())
                    : new UnsupportedOperationException(PROBLEM);
        }
    }

    private static final String NATIVE_ACCESS = "native access";

    /**
     * Decides whether a platform is supported; package-private so that tests can ask about other
     * platforms than the one they run on.
     */
    static Optional<String> problem(String osName, String osArch, boolean nativeAccess) {
        if (!osName.toLowerCase(Locale.ROOT).startsWith("linux")) {
            return Optional.of("shm-core runs on Linux only (it maps /dev/shm and calls memfd_create, futex and fcntl); "
                    + "this JVM runs on os.name=" + osName);
        }
        String arch = osArch.toLowerCase(Locale.ROOT);
        if (!arch.equals("amd64") && !arch.equals("x86_64") && !arch.equals("aarch64")) {
            return Optional.of("shm-core knows the C structures of Linux on x86_64 and aarch64 only; "
                    + "this JVM runs on os.arch=" + osArch);
        }
        if (!nativeAccess) {
            return Optional.of(NATIVE_ACCESS);
        }
        return Optional.empty();
    }

    private static String moduleName() {
        Module module = Platform.class.getModule();
        return module.isNamed() ? "module " + module.getName() : "the unnamed module (the class path)";
    }
}
