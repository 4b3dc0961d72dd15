package dev.shm.core.segment;

/**
 * The state of a peer table entry.
 *
 * <pre>
 *            reserve                claim
 *   EMPTY ------------> RESERVED ------------> ATTACHED ---detach---> GOODBYE ---> EMPTY
 *     |  \____________ walk-in attach _________/   |
 *     |                                            | (process dead: lock gone)
 *     +<-------------- RECOVERING <---------------+  (claimed once, by CAS, by any survivor)
 * </pre>
 */
public enum PeerState {
    /** Free for a new peer. */
    EMPTY(0),
    /** Held for a process about to be spawned, which claims it. */
    RESERVED(1),
    /** A live process uses the segment through this entry. */
    ATTACHED(2),
    /** The peer is leaving cleanly. */
    GOODBYE(3),
    /** A surviving peer is recovering what a dead peer left. */
    RECOVERING(4);

    private final int code;

    PeerState(int code) {
        this.code = code;
    }

    /**
     * Returns the code stored in shared memory.
     *
     * @return the code
     */
    public int code() {
        return code;
    }

    /**
     * Returns the state of a code read from shared memory.
     *
     * @param code the code
     * @return the state, or {@code null} for a code that is no state (corruption)
     */
    public static PeerState of(int code) {
        return switch (code) {
            case 0 -> EMPTY;
            case 1 -> RESERVED;
            case 2 -> ATTACHED;
            case 3 -> GOODBYE;
            case 4 -> RECOVERING;
            default -> null;
        };
    }
}
