package dev.shm.spring.support;

/**
 * Names of the message headers that the shm components add or read. The codec carries every other
 * header of a supported type across unchanged.
 */
public final class ShmHeaders {

    /** The common prefix of shm headers. */
    public static final String PREFIX = "shm_";

    /**
     * {@code true} on a message that a member of this consumer group received before and died
     * with: it may have been handled once already. Absent otherwise.
     */
    public static final String REDELIVERED = PREFIX + "redelivered";

    /** The name of the shm channel a message was received from. */
    public static final String CHANNEL = PREFIX + "channel";

    /** The correlation of a request and its reply on a lane (set by the gateways). */
    public static final String CORRELATION = PREFIX + "correlation";

    /** On a reply: the request failed in the other process; the value names the exception and its message. */
    public static final String ERROR = PREFIX + "error";

    /** The W3C trace context header, carried like any other string header. */
    public static final String TRACEPARENT = "traceparent";

    private ShmHeaders() {
    }
}
