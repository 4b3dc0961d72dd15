package dev.shm.core;

/**
 * This process could not open, now, a memfd that its sender still holds: it has no free file
 * descriptor ({@code EMFILE}; raise {@code ulimit -n}), the system has none ({@code ENFILE}), there is
 * no memory for the mapping ({@code ENOMEM}, {@code EAGAIN}), or the sender's
 * {@code /proc/<pid>/stat}, which the reader checks after the open, could not be read (which takes
 * a descriptor too). The cause says which (for the stat, only that it could not be read). A failure
 * that would not pass by trying again (the sender runs as another user, for one) is not this
 * exception: the message is lost for the reader, and counted, as the message of a sender that died.
 *
 * <p>The failure is this process's, not the message's. A channel's subscription leaves the message
 * in the ring, unread, and a later poll hands it out (a message whose sender died meanwhile is lost,
 * as any memfd message of a dead sender is); a required group holds its producers back until the
 * message is read. A lane's frame stays in its lane when the exception leaves the frame handler
 * (the gateways of shm-spring-boot-autoconfigure read it again later).
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
