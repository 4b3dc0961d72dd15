package dev.shm.core.memory;

import dev.shm.core.ShmException;

/**
 * A file or memfd could not be opened, created, mapped or trusted. The {@link #reason()} says which
 * case it is; the message says what was expected, what was found and, where there is one, the fix.
 */
public final class MappingException extends ShmException {

    private static final long serialVersionUID = 1L;

    /** The cases of a failed mapping. */
    public enum Reason {
        /** The file does not exist. */
        NOT_FOUND,
        /** The file exists, and the caller asked to create it. */
        ALREADY_EXISTS,
        /** The operating system denied access (file mode, owner, or a missing capability). */
        ACCESS_DENIED,
        /** The path is a directory. */
        IS_DIRECTORY,
        /** The file cannot be mapped: a device such as {@code /dev/null}, a FIFO, a socket, or a file system without {@code mmap}. */
        UNMAPPABLE,
        /** The file is empty, so there is nothing to map. */
        EMPTY,
        /** The file (or memfd) is shorter than the caller expects. */
        TOO_SHORT,
        /** The file system has no room for the requested size. */
        NO_SPACE,
        /** A memfd lacks the seals a receiver needs before it can trust the size. */
        NOT_SEALED,
        /** A memfd is sealed, so its size cannot change. */
        SEALED,
        /** A descriptor that should be a memfd is something else. */
        NOT_MEMFD,
        /** A memfd's size differs from the size its sender announced. */
        SIZE_MISMATCH,
        /** Any other failure of a system call; the cause is the {@link dev.shm.core.ErrnoException}. */
        SYSTEM_ERROR
    }

    private final Reason reason;

    /**
     * Creates the exception.
     *
     * @param reason the case
     * @param message what was expected, what was found, and the fix
     * @param cause the failed call, or {@code null}
     */
    public MappingException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    /**
     * Returns the case.
     *
     * @return why the mapping failed
     */
    public Reason reason() {
        return reason;
    }
}
