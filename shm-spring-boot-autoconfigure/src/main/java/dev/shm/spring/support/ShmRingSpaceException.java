package dev.shm.spring.support;

import dev.shm.core.segment.SegmentException;

/**
 * A channel's ring found no room in its segment when it was declared: the segment's size, less its
 * tables, slot classes and the rings and lanes that every process declared in it so far, is smaller
 * than the ring. Reported at start-up by {@code ShmRingSpaceFailureAnalyzer}.
 */
public class ShmRingSpaceException extends IllegalStateException {

    private static final long serialVersionUID = 1L;

    private final String segment;
    private final String channel;

    /**
     * Creates the exception.
     *
     * @param segment the segment's name
     * @param channel the channel's name
     * @param cause the core's {@code NO_SPACE}, which names the ring's length
     */
    public ShmRingSpaceException(String segment, String channel, SegmentException cause) {
        super("channel '" + channel + "' does not fit in segment '" + segment + "': " + cause.getMessage(), cause);
        this.segment = segment;
        this.channel = channel;
    }

    /** @return the segment's name */
    public String getSegment() {
        return segment;
    }

    /** @return the channel's name */
    public String getChannel() {
        return channel;
    }
}
