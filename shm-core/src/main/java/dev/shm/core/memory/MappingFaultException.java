package dev.shm.core.memory;

import dev.shm.core.ShmException;

/**
 * An access to a mapping faulted: the kernel sent {@code SIGBUS}, which the JVM turns into a
 * {@link InternalError} ("a fault occurred in an unsafe memory access operation") instead of
 * crashing. shm-core reports that error as this exception when it arrives inside shm-core's
 * access method, which is the case in interpreted code. In JIT-compiled code the JVM delivers the
 * error at the thread's next safepoint poll, which may lie after the access returned (possibly
 * with a meaningless value): then the raw {@code InternalError} reaches the caller instead. The
 * fault cannot be caught reliably in Java, so it must be prevented. Two things cause it:
 * <ul>
 *   <li>another process truncated the file below the mapped size ({@link #truncated()} is
 *       {@code true}); sealed memfds cannot be truncated, and only a file's owner should shrink it;
 *   <li>the file is sparse and its file system ran out of room when a page was first touched, as
 *       happens on a full {@code /dev/shm}; create files with preallocation to fail early instead.
 * </ul>
 */
public final class MappingFaultException extends ShmException {

    private static final long serialVersionUID = 1L;

    private final boolean truncated;

    /**
     * Creates the exception.
     *
     * @param message what was accessed, the mapped size and the file's size now
     * @param truncated whether the file is now shorter than the access needs
     * @param cause the JVM's error for the fault
     */
    public MappingFaultException(String message, boolean truncated, Throwable cause) {
        super(message, cause);
        this.truncated = truncated;
    }

    /**
     * Returns whether the file was found shorter than the faulting access needs.
     *
     * @return {@code true} for truncation, {@code false} when the file is long enough (no room)
     */
    public boolean truncated() {
        return truncated;
    }
}
