package dev.shm.spring.support;

import dev.shm.core.ring.ChannelException;

/**
 * A consumer could not join its group: an exclusive member of another process held it (or, for an
 * exclusive join, the group kept other members) for the segment's liveness timeout. Reported at
 * start-up by {@code ShmGroupBusyFailureAnalyzer}.
 */
public class ShmGroupBusyException extends IllegalStateException {

    private static final long serialVersionUID = 1L;

    private final String channel;
    private final String group;

    /**
     * Creates the exception.
     *
     * @param channel the channel
     * @param group the consumer group
     * @param exclusive whether this consumer asked for the group to itself
     * @param cause the core's {@code GROUP_BUSY}, which names the holder or the member count
     */
    public ShmGroupBusyException(String channel, String group, boolean exclusive, ChannelException cause) {
        super("cannot join group '" + group + "' of channel '" + channel + "'"
                + (exclusive ? " exclusively" : "") + ": " + cause.getMessage(), cause);
        this.channel = channel;
        this.group = group;
    }

    /** @return the channel */
    public String getChannel() {
        return channel;
    }

    /** @return the consumer group */
    public String getGroup() {
        return group;
    }
}
