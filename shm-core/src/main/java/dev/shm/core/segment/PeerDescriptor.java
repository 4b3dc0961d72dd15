package dev.shm.core.segment;

/**
 * The layout of one peer table entry: one 64-byte cache line, so that a peer's heartbeat never
 * shares a line with another peer's.
 *
 * <pre>
 *  0                   8        12       16                  24                  32
 *  +-------------------+--------+--------+-------------------+-------------------+
 *  | state word        | pid    |nameLen | startTime         | heartbeat (ns)    |
 *  +-------------------+--------+--------+-------------------+-------------------+
 *  | pidNamespace      | name (24 bytes, UTF-8)                                    |  32..64
 *  +-------------------+-----------------------------------------------------------+
 * </pre>
 *
 * The state word packs {@code [epoch:32][actor:16][state:16]} so that one compare-and-set moves
 * the state and checks the epoch at once: a stale owner, whose epoch is past, can never move it.
 * The identity fields are written while the entry is {@code EMPTY} or {@code RESERVED} and the
 * writer holds the entry's lock, then published by the compare-and-set to {@code ATTACHED}
 * (volatile, hence release); readers load the state word with acquire first.
 */
public final class PeerDescriptor {

    /** The length of an entry. */
    public static final int LENGTH = 64;
    public static final int STATE_OFFSET = 0;
    public static final int PID_OFFSET = 8;
    public static final int NAME_LENGTH_OFFSET = 12;
    public static final int START_TIME_OFFSET = 16;
    /** Monotonic nanoseconds ({@code CLOCK_MONOTONIC}, shared by every process), written with release. */
    public static final int HEARTBEAT_OFFSET = 24;
    /** The inode of the process's PID namespace; pids are comparable only within one namespace. */
    public static final int PID_NAMESPACE_OFFSET = 32;
    public static final int NAME_OFFSET = 40;
    /** Names longer than this many UTF-8 bytes are cut at a character boundary. */
    public static final int NAME_CAPACITY = 24;

    /** The actor field's value when no peer acts on the entry. */
    public static final int NO_ACTOR = 0xFFFF;

    private PeerDescriptor() {
    }

    /**
     * Packs a state word.
     *
     * @param epoch the epoch
     * @param actor the acting peer, or {@link #NO_ACTOR}
     * @param state the state
     * @return the word
     */
    public static long word(int epoch, int actor, PeerState state) {
        return ((long) epoch << 32) | ((long) (actor & 0xFFFF) << 16) | state.code();
    }

    /**
     * Returns the epoch of a state word.
     *
     * @param word the word
     * @return the epoch
     */
    public static int epoch(long word) {
        return (int) (word >>> 32);
    }

    /**
     * Returns the actor of a state word.
     *
     * @param word the word
     * @return the actor, or {@link #NO_ACTOR}
     */
    public static int actor(long word) {
        return (int) ((word >>> 16) & 0xFFFF);
    }

    /**
     * Returns the state of a state word.
     *
     * @param word the word
     * @return the state, or {@code null} for a corrupt word
     */
    public static PeerState state(long word) {
        return PeerState.of((int) (word & 0xFFFF));
    }
}
