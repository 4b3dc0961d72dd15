package dev.shm.core;

/**
 * A system call failed. The message names the call, its subject (a path, a file descriptor) and
 * the error, as in {@code open(/dev/shm/orders.shm) failed: EACCES (Permission denied)}.
 */
public final class ErrnoException extends ShmException {

    private static final long serialVersionUID = 1L;

    private final String call;
    private final int errno;
    private final String errnoName;

    /**
     * Creates the exception for a failed call.
     *
     * @param call the call and its subject, e.g. {@code "open(/dev/shm/x.shm)"}
     * @param errno the error number the call left in {@code errno}
     * @param errnoName the symbolic name of the error, e.g. {@code "EACCES"}
     * @param description the system's description of the error, e.g. {@code "Permission denied"}
     */
    public ErrnoException(String call, int errno, String errnoName, String description) {
        super(call + " failed: " + errnoName + " (" + description + ")");
        this.call = call;
        this.errno = errno;
        this.errnoName = errnoName;
    }

    /**
     * Returns the call and its subject.
     *
     * @return e.g. {@code "open(/dev/shm/x.shm)"}
     */
    public String call() {
        return call;
    }

    /**
     * Returns the error number.
     *
     * @return the value of {@code errno} after the call
     */
    public int errno() {
        return errno;
    }

    /**
     * Returns the symbolic name of the error.
     *
     * @return e.g. {@code "ENOENT"}; {@code "errno 123"} for a number without a known name
     */
    public String errnoName() {
        return errnoName;
    }
}
