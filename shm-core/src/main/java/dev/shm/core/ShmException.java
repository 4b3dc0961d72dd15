package dev.shm.core;

/**
 * The root of the exceptions that shm-core throws for conditions of the shared memory itself: a file
 * that cannot be mapped, a failed system call, a foreign or corrupted structure.
 *
 * <p>Misuse of an API (a negative size, a bad name) is reported with the JDK's
 * {@link IllegalArgumentException} and {@link IllegalStateException}, and out-of-range memory
 * access with {@link IndexOutOfBoundsException} subclasses, so that callers need not learn new
 * types for ordinary mistakes.
 */
public class ShmException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception with a message.
     *
     * @param message what went wrong, with the values involved
     */
    public ShmException(String message) {
        super(message);
    }

    /**
     * Creates an exception with a message and a cause.
     *
     * @param message what went wrong, with the values involved
     * @param cause the underlying failure
     */
    public ShmException(String message, Throwable cause) {
        super(message, cause);
    }
}
