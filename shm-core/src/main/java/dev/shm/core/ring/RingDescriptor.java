package dev.shm.core.ring;

import dev.shm.core.ring.ChannelException.Reason;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The binary layout of a channel's ring (version {@value #VERSION}): a header, a table of consumer
 * groups, {@code capacity} slots of {@code slotSize} bytes, one claim word per slot for each group,
 * then one release entry per slot. All integers little-endian.
 *
 * <pre>
 * Ring header (512 bytes, then maxGroups x 256 bytes of groups; slots start at headerLength)
 *  0        8    12   16   20   24   28   32            40            48             56
 *  +--------+----+----+----+----+----+----+-------------+-------------+--------------+
 *  | magic  |ver |hlen|cap |slot|grps|flag| payloadOff  | payloadLen  | initialSeq   |
 *  +--------+----+----+----+----+----+----+-------------+-------------+--------------+
 *  64: counter ids (full-waits, drops, skips, corrupt)   128: cursor (own line)
 *  192: data futex, data sleepers, blocking flag         256: space futex, space sleepers, blocking flag
 *
 * Group entry (256 bytes)
 *  0 state word [epoch:32][owner:16][state:16]  8 flags  12 name length  16 name (48 bytes)
 *  64 start  72 redeliveries counter  76 lost counter  80 members (256-bit set of peers)
 *  112 holder (the exclusive member's peer + 1, or 0)
 *  128 done (own line: every sequence below it is done by the group)
 *  192 next (own line: where members look for the next message)
 *
 * Slot (slotSize bytes)
 *  0 header word [tag:48][peer:8][state:8]   8 frame type   12 inline length
 *  16 body: inline bytes | SLOT_REF: ref, length | MEMFD_REF: lease, generation, length
 *
 * Claim words (after the slots: maxGroups arrays of capacity words, group by group)
 *  [tag:48][peer:8][state:8] of the last sequence of that slot the group claimed; a tag of an
 *  earlier lap means the message in the slot is open for the group
 *
 * Release entries (after the claim words: capacity entries of 16 bytes)
 *  0 word [tag:48][peer:8][state:8] of the last SLOT_REF frame of that slot: who frees its pool slot
 *  8 the pool slot reference of that frame (a copy of the body's), which stays while the word is
 *    RELEASING: no producer writes an entry whose word names a peer still freeing it.
 *  Out of the slot, where no payload byte can ever look like one (until version 7 the word sat in
 *  the SLOT_REF's body, and the next lap's inline bytes could; until version 8 the freer read the
 *  reference in the body, which the lap after a skip could overwrite before a stalled freer's
 *  recovery read it)
 * </pre>
 *
 * <p>A <em>tag</em> is a sequence's low 48 bits: the words of a slot say which lap they belong to,
 * so a process that resumes late can never act on a later lap's message.
 */
public final class RingDescriptor {

    /** {@code "shmRING1"} read as a little-endian long. */
    public static final long MAGIC = 0x31474e4952_6d6873L;
    /** The layout version. */
    public static final int VERSION = 9;

    public static final int MAGIC_OFFSET = 0;
    public static final int VERSION_OFFSET = 8;
    public static final int HEADER_LENGTH_OFFSET = 12;
    public static final int CAPACITY_OFFSET = 16;
    public static final int SLOT_SIZE_OFFSET = 20;
    public static final int MAX_GROUPS_OFFSET = 24;
    public static final int FLAGS_OFFSET = 28;
    public static final int PAYLOAD_OFFSET_OFFSET = 32;
    public static final int PAYLOAD_LENGTH_OFFSET = 40;
    public static final int INITIAL_SEQUENCE_OFFSET = 48;
    public static final int COUNTER_IDS_OFFSET = 64;
    public static final int CURSOR_OFFSET = 128;
    public static final int DATA_FUTEX_OFFSET = 192;
    public static final int DATA_SLEEPERS_OFFSET = 196;
    /**
     * Set (and never cleared) once a subscription that may sleep on the data futex joined: only
     * then does a single producer pay a fence per message to look for sleepers.
     */
    public static final int DATA_BLOCKING_OFFSET = 200;
    public static final int SPACE_FUTEX_OFFSET = 256;
    public static final int SPACE_SLEEPERS_OFFSET = 260;
    /**
     * Set (and never cleared) once a producer that may sleep on the space futex declared the channel
     * ({@code BLOCK} with the {@code BLOCKING} strategy): only then does a consumer that moved its done
     * sequence pay a fence before it looks for sleeping producers.
     */
    public static final int SPACE_BLOCKING_OFFSET = 264;
    public static final int GROUPS_OFFSET = 512;

    /** Channel counters, in the order of their ids at {@link #COUNTER_IDS_OFFSET}. */
    public static final int FULL_WAITS = 0;
    public static final int DROPS = 1;
    public static final int SKIPS = 2;
    public static final int CORRUPT = 3;
    public static final int CHANNEL_COUNTERS = 4;

    /** Flag: one producer thread in one process sends (declared so by every process). */
    public static final int FLAG_SINGLE_PRODUCER = 1;

    public static final int GROUP_LENGTH = 256;
    public static final int GROUP_STATE_OFFSET = 0;
    public static final int GROUP_FLAGS_OFFSET = 8;
    public static final int GROUP_NAME_LENGTH_OFFSET = 12;
    public static final int GROUP_NAME_OFFSET = 16;
    public static final int GROUP_NAME_CAPACITY = 48;

    /**
     * Whether {@code name} fits a group's name field: 1 to {@link #GROUP_NAME_CAPACITY} UTF-8 bytes,
     * and no control character (names read from shared memory have them replaced).
     *
     * @param name the name, or {@code null}
     * @return whether it is a valid group name
     */
    public static boolean isGroupName(String name) {
        if (name == null || name.isEmpty()) {
            return false;
        }
        int length = name.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
        return length <= GROUP_NAME_CAPACITY && !dev.shm.core.internal.Utf8.hasControl(name);
    }
    public static final int GROUP_START_OFFSET = 64;
    public static final int GROUP_REDELIVERIES_OFFSET = 72;
    public static final int GROUP_LOST_OFFSET = 76;
    public static final int GROUP_MEMBERS_OFFSET = 80;
    /**
     * The peer that holds the group exclusively, plus one; 0 when no member holds it
     * ({@link SubscriptionMode#EXCLUSIVE}).
     */
    public static final int GROUP_HOLDER_OFFSET = 112;
    public static final int GROUP_DONE_OFFSET = 128;
    public static final int GROUP_NEXT_OFFSET = 192;
    /** Group flag: the group gates producers. */
    public static final int GROUP_REQUIRED = 1;
    public static final int GROUP_EMPTY = 0;
    public static final int GROUP_JOINING = 1;
    public static final int GROUP_ACTIVE = 2;

    public static final int SLOT_HEADER_OFFSET = 0;
    public static final int SLOT_TYPE_OFFSET = 8;
    public static final int SLOT_LENGTH_OFFSET = 12;
    /** Where a slot's body starts, whatever the group count (claim words live after the slots). */
    public static final int SLOT_BODY_OFFSET = 16;

    private static final boolean LITTLE_ENDIAN = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;

    /**
     * A slot's type and length as the one long stored at {@link #SLOT_TYPE_OFFSET}, in native order
     * (both stay two ints for readers).
     *
     * @param type the frame type
     * @param length the inline length
     * @return the long
     */
    public static long typeAndLength(int type, int length) {
        return LITTLE_ENDIAN ? ((long) length << 32) | (type & 0xFFFF_FFFFL) : ((long) type << 32) | (length & 0xFFFF_FFFFL);
    }

    /**
     * The type of a slot's type-and-length long ({@link #typeAndLength}).
     *
     * @param typeAndLength the long
     * @return the frame type
     */
    public static int typeOf(long typeAndLength) {
        return (int) (LITTLE_ENDIAN ? typeAndLength : typeAndLength >>> 32);
    }

    /**
     * The inline length of a slot's type-and-length long ({@link #typeAndLength}).
     *
     * @param typeAndLength the long
     * @return the inline length
     */
    public static int lengthOf(long typeAndLength) {
        return (int) (LITTLE_ENDIAN ? typeAndLength >>> 32 : typeAndLength);
    }

    /** Slot header states. */
    public static final int WRITING = 1;
    public static final int PUBLISHED = 2;
    public static final int SKIP = 3;

    /** Claim word states (a word of an earlier lap than the slot's message: open to the group). */
    public static final int CLAIMED = 2;
    public static final int DONE = 3;
    public static final int REDELIVER = 4;

    /**
     * Release word states (the pool slot of a {@link #SLOT_REF} frame): pending until one peer wins
     * it, releasing (naming that peer) while it frees the pool slot, then released.
     */
    public static final int PENDING = 1;
    public static final int RELEASED = 2;
    public static final int RELEASING = 3;

    /** Frame types. */
    public static final int NONE = 0;
    public static final int INLINE = 1;
    public static final int SLOT_REF = 2;
    public static final int MEMFD_REF = 3;
    public static final int SLOT_REF_LENGTH = 16;
    /** A release entry: the word, then the reference it frees. */
    public static final int RELEASE_ENTRY_LENGTH = 16;
    public static final int RELEASE_REF_OFFSET = 8;
    public static final int MEMFD_REF_LENGTH = 16;

    /** No peer, in header and claim words. */
    public static final int NO_PEER = 0xFF;

    public static final int MAX_GROUPS = 16;
    public static final int MAX_CAPACITY = 1 << 24;
    public static final int MAX_SLOT_SIZE = 1 << 20;

    static final long TAG_MASK = (1L << 48) - 1;
    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();

    private RingDescriptor() {
    }

    /**
     * Returns the header length (header plus group table) for a group count.
     *
     * @param maxGroups the number of group entries
     * @return the length, a multiple of 64
     */
    public static int headerLength(int maxGroups) {
        return GROUPS_OFFSET + maxGroups * GROUP_LENGTH;
    }

    /**
     * Returns where the claim words start: after the slots.
     *
     * @param capacity slots
     * @param slotSize bytes per slot
     * @param maxGroups group entries
     * @return the offset in the ring structure
     */
    public static long claimsOffset(int capacity, int slotSize, int maxGroups) {
        return headerLength(maxGroups) + (long) capacity * slotSize;
    }

    /**
     * Returns where the release entries start: after the claim words.
     *
     * @param capacity slots
     * @param slotSize bytes per slot
     * @param maxGroups group entries
     * @return the offset in the ring structure
     */
    public static long releasesOffset(int capacity, int slotSize, int maxGroups) {
        return claimsOffset(capacity, slotSize, maxGroups) + 8L * capacity * maxGroups;
    }

    /**
     * Returns the total length of a ring structure.
     *
     * @param capacity slots
     * @param slotSize bytes per slot
     * @param maxGroups group entries
     * @return header, slots, claim words and release entries
     */
    public static long length(int capacity, int slotSize, int maxGroups) {
        return releasesOffset(capacity, slotSize, maxGroups) + (long) RELEASE_ENTRY_LENGTH * capacity;
    }

    static long word(long sequence, int peer, int state) {
        return ((sequence & TAG_MASK) << 16) | ((long) (peer & 0xFF) << 8) | (state & 0xFF);
    }

    static long tag(long word) {
        return word >>> 16;
    }

    static int peer(long word) {
        return (int) (word >>> 8) & 0xFF;
    }

    static int state(long word) {
        return (int) word & 0xFF;
    }

    static boolean isTag(long word, long sequence) {
        return (word >>> 16) == (sequence & TAG_MASK);
    }

    /** Whether {@code word}'s tag is of a sequence before {@code sequence} (less than 2^47 before, modulo the tag). */
    static boolean isBefore(long word, long sequence) {
        long distance = ((sequence & TAG_MASK) - (word >>> 16)) & TAG_MASK;
        return distance != 0 && distance < 1L << 47;
    }

    /** The full sequence whose tag is {@code tag}, at most {@code cursor} and within 2^47 below it. */
    static long sequenceOf(long tag, long cursor) {
        return cursor - (((cursor & TAG_MASK) - tag) & TAG_MASK);
    }

    /**
     * Formats a ring: header, empty groups, every slot consumed (a skip of the lap before the first).
     * Claim words stay as they are: a group's are reset when it is created. The magic is written
     * last, with release.
     *
     * @param memory the structure, {@link #length} bytes, zeroed
     * @param capacity slots, a power of two
     * @param slotSize bytes per slot
     * @param maxGroups group entries
     * @param flags {@link #FLAG_SINGLE_PRODUCER} or 0
     * @param initialSequence the first sequence
     * @param counterIds the channel's counter ids
     */
    static void format(MemorySegment memory, int capacity, int slotSize, int maxGroups, int flags,
                       long initialSequence, int[] counterIds) {
        int headerLength = headerLength(maxGroups);
        memory.set(ValueLayout.JAVA_INT, VERSION_OFFSET, VERSION);
        memory.set(ValueLayout.JAVA_INT, HEADER_LENGTH_OFFSET, headerLength);
        memory.set(ValueLayout.JAVA_INT, CAPACITY_OFFSET, capacity);
        memory.set(ValueLayout.JAVA_INT, SLOT_SIZE_OFFSET, slotSize);
        memory.set(ValueLayout.JAVA_INT, MAX_GROUPS_OFFSET, maxGroups);
        memory.set(ValueLayout.JAVA_INT, FLAGS_OFFSET, flags);
        memory.set(ValueLayout.JAVA_LONG, PAYLOAD_OFFSET_OFFSET, headerLength);
        memory.set(ValueLayout.JAVA_LONG, PAYLOAD_LENGTH_OFFSET, (long) capacity * slotSize);
        memory.set(ValueLayout.JAVA_LONG, INITIAL_SEQUENCE_OFFSET, initialSequence);
        for (int i = 0; i < CHANNEL_COUNTERS; i++) {
            memory.set(ValueLayout.JAVA_INT, COUNTER_IDS_OFFSET + 4L * i, counterIds[i]);
        }
        memory.set(ValueLayout.JAVA_LONG, CURSOR_OFFSET, initialSequence);
        for (long sequence = initialSequence - capacity; sequence < initialSequence; sequence++) {
            memory.set(ValueLayout.JAVA_LONG, headerLength + (sequence & (capacity - 1)) * slotSize,
                    word(sequence, NO_PEER, SKIP));
        }
        LONG.setRelease(memory, (long) MAGIC_OFFSET, MAGIC);
    }

    /**
     * Validates a ring's descriptor against its declaration and its structure's length, before
     * anything else of it is touched (disruptor-mp's cases, each with its own reason).
     *
     * @param memory the structure as mapped
     * @param name the channel, for messages
     * @param capacity the declared capacity
     * @param slotSize the declared slot size
     * @param maxGroups the declared group entries
     * @param flags the declared flags
     * @throws ChannelException naming what was expected and what was found
     */
    static void validate(MemorySegment memory, String name, int capacity, int slotSize, int maxGroups, int flags) {
        String subject = "ring of channel '" + name + "'";
        if (memory.byteSize() < GROUPS_OFFSET) {
            throw new ChannelException(Reason.TRUNCATED_HEADER, subject + " is truncated: its structure has "
                    + memory.byteSize() + " bytes, shorter than the " + GROUPS_OFFSET + "-byte ring header");
        }
        long magic = (long) LONG.getAcquire(memory, (long) MAGIC_OFFSET);
        if (magic != MAGIC) {
            throw new ChannelException(Reason.BAD_MAGIC, subject + " has magic 0x" + Long.toHexString(magic)
                    + ", expected 0x" + Long.toHexString(MAGIC) + ": not a ring, or damaged");
        }
        int version = memory.get(ValueLayout.JAVA_INT, VERSION_OFFSET);
        if (version != VERSION) {
            throw new ChannelException(Reason.UNSUPPORTED_VERSION, subject + " has layout version " + version
                    + "; this code reads version " + VERSION);
        }
        int foundSlotSize = memory.get(ValueLayout.JAVA_INT, SLOT_SIZE_OFFSET);
        if (foundSlotSize != slotSize) {
            throw new ChannelException(Reason.ELEMENT_SIZE_MISMATCH, subject + ": element size mismatch: the ring"
                    + " has " + foundSlotSize + "-byte slots, the declaration expects " + slotSize);
        }
        int foundCapacity = memory.get(ValueLayout.JAVA_INT, CAPACITY_OFFSET);
        if (foundCapacity != capacity || Integer.bitCount(foundCapacity) != 1) {
            throw new ChannelException(Reason.CAPACITY_MISMATCH, subject + ": capacity mismatch: the ring has "
                    + foundCapacity + " slots, the declaration expects " + capacity + " (a power of two)");
        }
        int foundGroups = memory.get(ValueLayout.JAVA_INT, MAX_GROUPS_OFFSET);
        int foundFlags = memory.get(ValueLayout.JAVA_INT, FLAGS_OFFSET);
        int foundHeader = memory.get(ValueLayout.JAVA_INT, HEADER_LENGTH_OFFSET);
        if (foundGroups != maxGroups || foundFlags != flags || foundHeader != headerLength(maxGroups)) {
            throw new ChannelException(Reason.LAYOUT_MISMATCH, subject + " has maxGroups=" + foundGroups + ", flags="
                    + foundFlags + ", header length " + foundHeader + "; the declaration expects maxGroups="
                    + maxGroups + ", flags=" + flags + ", header length " + headerLength(maxGroups));
        }
        if (memory.byteSize() < foundHeader) {
            throw new ChannelException(Reason.TRUNCATED_HEADER, subject + " is truncated: its structure has "
                    + memory.byteSize() + " bytes, shorter than its " + foundHeader + "-byte header and groups");
        }
        long payloadOffset = memory.get(ValueLayout.JAVA_LONG, PAYLOAD_OFFSET_OFFSET);
        long payloadLength = memory.get(ValueLayout.JAVA_LONG, PAYLOAD_LENGTH_OFFSET);
        long expected = (long) capacity * slotSize;
        if (payloadOffset != foundHeader || payloadLength != expected) {
            throw new ChannelException(Reason.LAYOUT_MISMATCH, subject + " places its slots at " + payloadOffset
                    + " (" + payloadLength + " bytes); expected " + foundHeader + " (" + expected + " bytes)");
        }
        long whole = length(capacity, slotSize, maxGroups);
        if (memory.byteSize() < whole) {
            throw new ChannelException(Reason.TRUNCATED_PAYLOAD, subject + " is truncated: its structure has "
                    + memory.byteSize() + " bytes, its " + capacity + " slots of " + slotSize + " bytes, their"
                    + " claim words for " + maxGroups + " groups and their release entries need " + whole);
        }
    }
}
