package dev.shm.core;

/**
 * shm-core cannot call native code because the JVM was started without native access for it.
 *
 * <p>shm-core calls {@code mmap}, {@code memfd_create}, {@code fcntl} and other functions of the C
 * library through {@code java.lang.foreign}, which needs the JVM flag
 * {@code --enable-native-access=ALL-UNNAMED} (or {@code =<module>} on the module path), or the
 * manifest attribute {@code Enable-Native-Access: ALL-UNNAMED} of an executable JAR.
 */
public final class NativeAccessException extends ShmException {

    private static final long serialVersionUID = 1L;

    /** The flag to add to the {@code java} command line for code on the class path. */
    public static final String FLAG = "--enable-native-access=ALL-UNNAMED";

    /**
     * Creates the exception.
     *
     * @param module the module that lacks native access, as the JVM names it
     */
    public NativeAccessException(String module) {
        super("shm-core needs native access to call mmap, memfd_create and fcntl through java.lang.foreign, "
                + "but it is not enabled for " + module + ": start the JVM with " + FLAG
                + " (or --enable-native-access=<module> when shm-core is on the module path), "
                + "or add 'Enable-Native-Access: ALL-UNNAMED' to the manifest of an executable JAR");
    }
}
