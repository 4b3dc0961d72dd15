package dev.shm.core.lane;

/**
 * The layout of the lane table, of one lane direction (a bip-buffer), and of the frames in it.
 *
 * <pre>
 * Lane table entry (64 bytes)
 *  0                   8        12       16                  24
 *  +-------------------+--------+--------+-------------------+----------------------+
 *  | state word        |service |capacity| buffer offset     |  reserved            |
 *  +-------------------+--------+--------+-------------------+----------------------+
 *  state word: [epoch:32][releaser:8][provider:8][client:8][state:8]
 *  (releaser: the peer releasing the pair, in state RELEASING only)
 *
 * Lane pair (at buffer offset, in an extent): toService direction, then toClient direction.
 *
 * One direction (128 + capacity bytes)
 *  0                   8                   16                  24                    64
 *  +-------------------+-------------------+-------------------+---------------------+
 *  | write             | last              | writing           |  (producer's line)  |
 *  +-------------------+-------------------+-------------------+---------------------+ 64
 *  | read              | reading           | doorbell          | (consumer's line)   |
 *  +-------------------+-------------------+-------------------+---------------------+ 128
 *  | data (capacity bytes)                                                           |
 *  +---------------------------------------------------------------------------------+
 *  write, read: [epoch:16][position:48]; last: where the data before a wrap ends
 *  writing, reading (in-flight words): [epoch:16][1] while that side is in a write or a read
 *    that found frames; 0, or a stale epoch's word, when it is not
 *  doorbell: [sequence:32][sleeping:32], the futex the consumer sleeps on (Doorbell)
 *
 * Frame (8-byte aligned in data)
 *  0        4        6        8
 *  +--------+--------+--------+----------------------------+
 *  | length | type   | flags  | payload (length bytes)...  |
 *  +--------+--------+--------+----------------------------+
 *  INLINE:    payload = the message bytes
 *  SLOT_REF:  payload = slot reference (8), message length (8)
 *  MEMFD_REF: payload = lease (4), lease generation (4), offset (8), length (8)
 * </pre>
 *
 * A direction is a bip-buffer (vox's grant / commit / release): the producer is granted a
 * contiguous region, at its position or, when the end is too near, at the start (then {@code last}
 * marks where the data before the wrap ends); the consumer reads up to the producer's position
 * and releases what it read. Both positions carry the lane's epoch: a reset (by recovery, when the
 * other side died) bumps it, and a producer's commit or consumer's release is a compare-and-set
 * that fails once the epoch moved, so neither can write into a lane that was reset under it.
 * Between its first look at the positions and the end of its write (or read) each side also
 * holds its in-flight word, so that a releaser formats the lane for its next user only once no
 * side of the old epoch is still writing into (or reading from) its data.
 */
public final class LaneDescriptor {

    public static final int ENTRY_LENGTH = 64;
    public static final int STATE_OFFSET = 0;
    public static final int SERVICE_OFFSET = 8;
    public static final int CAPACITY_OFFSET = 12;
    public static final int BUFFER_OFFSET_OFFSET = 16;

    /** Entry state: free. */
    public static final int EMPTY = 0;
    /** Entry state: a client is setting the pair up. */
    public static final int CLAIMED = 1;
    /** Entry state: in use by its client and service provider. */
    public static final int ACTIVE = 2;
    /**
     * Entry state: a peer (named in the word) is draining and resetting the pair. Claimed by
     * compare-and-set, so one releaser does the work; recovery of a releaser that died finishes it.
     */
    public static final int RELEASING = 3;

    public static final int WRITE_OFFSET = 0;
    public static final int LAST_OFFSET = 8;
    /** The producer's in-flight word. */
    public static final int WRITING_OFFSET = 16;
    public static final int READ_OFFSET = 64;
    /** The consumer's in-flight word. */
    public static final int READING_OFFSET = 72;
    /** The consumer's doorbell ({@link Doorbell}): the producer rings it after a commit. */
    public static final int DOORBELL_OFFSET = 80;
    public static final int DATA_OFFSET = 128;

    public static final int FRAME_HEADER_LENGTH = 8;
    public static final int FRAME_LENGTH_OFFSET = 0;
    public static final int FRAME_TYPE_OFFSET = 4;
    public static final int FRAME_FLAGS_OFFSET = 6;
    /** Frame type: the message bytes follow. */
    public static final short INLINE = 1;
    /** Frame type: a slot reference and the message length follow. */
    public static final short SLOT_REF = 2;
    /** Frame type: a memfd lease, its generation, an offset and a length follow. */
    public static final short MEMFD_REF = 3;
    public static final int SLOT_REF_LENGTH = 16;
    public static final int MEMFD_REF_LENGTH = 24;

    private LaneDescriptor() {
    }

    /**
     * Returns the bytes of one direction.
     *
     * @param capacity the data capacity
     * @return header and data
     */
    public static long directionLength(int capacity) {
        return DATA_OFFSET + (long) capacity;
    }

    /**
     * Returns the bytes of a pair.
     *
     * @param capacity the data capacity of one direction
     * @return both directions
     */
    public static long pairLength(int capacity) {
        return 2 * directionLength(capacity);
    }

    /**
     * Returns the bytes a frame takes in a lane.
     *
     * @param payloadLength the payload's length
     * @return header and payload, rounded up to 8
     */
    public static int frameLength(int payloadLength) {
        return FRAME_HEADER_LENGTH + ((payloadLength + 7) & -8);
    }

    static long position(int epoch, long position) {
        return ((long) (epoch & 0xFFFF) << 48) | position;
    }

    static int epochOf(long word) {
        return (int) (word >>> 48);
    }

    static long positionOf(long word) {
        return word & 0xFFFF_FFFF_FFFFL;
    }

    static long entryState(int epoch, int provider, int client, int state) {
        return ((long) epoch << 32) | ((long) (provider & 0xFF) << 16) | ((client & 0xFF) << 8) | (state & 0xFF);
    }

    /** The word of an entry {@code word} (any state) that {@code releaser} releases. */
    static long releasingState(long word, int releaser) {
        return (word & 0xFFFF_FFFF_00FF_FF00L) | ((long) (releaser & 0xFF) << 24) | RELEASING;
    }

    static int entryReleaser(long word) {
        return (int) ((word >>> 24) & 0xFF);
    }

    static int entryEpoch(long word) {
        return (int) (word >>> 32);
    }

    static int entryProvider(long word) {
        return (int) ((word >>> 16) & 0xFF);
    }

    static int entryClient(long word) {
        return (int) ((word >>> 8) & 0xFF);
    }

    static int entryStateOf(long word) {
        return (int) (word & 0xFF);
    }
}
