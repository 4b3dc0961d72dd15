package dev.shm.core;

import java.time.Duration;

/**
 * Something shm-core waited for did not happen in time.
 */
public final class ShmTimeoutException extends ShmException {

    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param what what was awaited, e.g. "a connection on /tmp/x.sock"
     * @param timeout how long it was awaited
     */
    public ShmTimeoutException(String what, Duration timeout) {
        super("timed out after " + timeout.toMillis() + " ms waiting for " + what);
    }
}
