package dev.shm.core;

/**
 * This process could not open a memfd that its sender still holds: it has no free file descriptor
 * ({@code EMFILE}; raise {@code ulimit -n}), the system has none ({@code ENFILE}), there is no memory
 * for the mapping ({@code ENOMEM}), or it may not open the sender's descriptors (another user: run
 * both processes as the same user). The cause says which.
 *
 * <p>The failure is this process's, not the message's: a channel's subscription leaves the message
 * where it is, unread and not finished, and hands it out again at its next poll (a message whose
 * sender died meanwhile is lost, as any memfd message of a dead sender is). A required group holds
 * its producers back until the message is read.
 */
public final class MemfdUnavailableException extends ShmException {

    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the memfd (lease, process, descriptor), what was being read, and what to do
     * @param cause the failure of the open or of the mapping
     */
    public MemfdUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
