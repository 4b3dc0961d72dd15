package dev.shm.spring.support;

/**
 * A record could not be encoded or decoded: a payload of an untrusted type, a damaged or truncated
 * record, a payload type no converter handles. The message says what was expected and what was found.
 */
public class ShmCodecException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what is wrong
     */
    public ShmCodecException(String message) {
        super(message);
    }

    /**
     * Creates the exception with a cause.
     *
     * @param message what is wrong
     * @param cause the underlying failure
     */
    public ShmCodecException(String message, Throwable cause) {
        super(message, cause);
    }
}
