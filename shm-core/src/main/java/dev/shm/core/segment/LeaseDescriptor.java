package dev.shm.core.segment;

/**
 * The layout of one lease table entry: a memfd that a peer shares with the segment's other peers,
 * so that frames can reference it by (lease, generation) and recovery can drop it with its owner.
 *
 * <pre>
 *  0                   8                   16       20       24                  32
 *  +-------------------+-------------------+--------+--------+-------------------+
 *  | state word        | owner pid         | fd     |  pad   | size              |
 *  +-------------------+-------------------+--------+--------+-------------------+
 *  | owner start time  | reserved                                                |  32..64
 *  +-------------------+---------------------------------------------------------+
 * </pre>
 *
 * The state word packs {@code [generation:32][owner:16][state:16]}; the generation changes on every
 * registration, so a reference to an earlier memfd in the same entry is detected.
 */
public final class LeaseDescriptor {

    /** The length of an entry. */
    public static final int LENGTH = 64;
    public static final int STATE_OFFSET = 0;
    public static final int PID_OFFSET = 8;
    public static final int FD_OFFSET = 16;
    public static final int SIZE_OFFSET = 24;
    public static final int START_TIME_OFFSET = 32;

    /** Entry state: free. */
    public static final int EMPTY = 0;
    /** Entry state: being registered by its owner. */
    public static final int CLAIMED = 1;
    /** Entry state: a shared memfd. */
    public static final int ACTIVE = 2;

    private LeaseDescriptor() {
    }
}
