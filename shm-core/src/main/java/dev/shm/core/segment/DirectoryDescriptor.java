package dev.shm.core.segment;

/**
 * The layout of one directory entry: a named channel or service of the segment.
 *
 * <pre>
 *  0                   8        12       16                                          112
 *  +-------------------+--------+--------+--------------------------------------------+
 *  | state word        | type   |nameLen | name (96 bytes, UTF-8)                     |
 *  +--------+----------+--------+--------+--------------------------------------------+
 *  |paramCnt|   pad    | params (8 x 8 bytes)                      | structure offset  |  112..192
 *  +--------+----------+-------------------------------------------+-------------------+
 *  | structure length  | provider word     | doorbell          |  reserved             |  192..256
 *  +-------------------+-------------------+-------------------+-----------------------+
 * </pre>
 *
 * The state word packs {@code [epoch:32][owner:16][state:16]}: {@code EMPTY → INITIALIZING}
 * (owner: the declaring peer) {@code → READY}. The declarer writes name, type, parameters and
 * structure while the entry is {@code INITIALIZING}, then publishes {@code READY} with release;
 * lookups read only {@code READY} entries. The provider word of a service is
 * {@code [epoch:32][peer:16]}. A service's doorbell ({@code Doorbell}: sequence, sleeping) is what
 * its provider sleeps on while no client sends; clients ring it after each request.
 */
public final class DirectoryDescriptor {

    /** The length of an entry. */
    public static final int LENGTH = 256;
    public static final int STATE_OFFSET = 0;
    public static final int TYPE_OFFSET = 8;
    public static final int NAME_LENGTH_OFFSET = 12;
    public static final int NAME_OFFSET = 16;
    /** The longest name, in UTF-8 bytes. */
    public static final int NAME_CAPACITY = 96;
    public static final int PARAM_COUNT_OFFSET = 112;
    public static final int PARAMS_OFFSET = 120;
    /** The most parameters an entry keeps. */
    public static final int MAX_PARAMS = 8;
    public static final int STRUCTURE_OFFSET_OFFSET = 184;
    public static final int STRUCTURE_LENGTH_OFFSET = 192;
    public static final int PROVIDER_OFFSET = 200;
    /** A service's doorbell (8 bytes), in what was reserved until layout version 4. */
    public static final int DOORBELL_OFFSET = 208;

    /** Entry state: free. */
    public static final int EMPTY = 0;
    /** Entry state: being declared by its owner. */
    public static final int INITIALIZING = 1;
    /** Entry state: declared and usable. */
    public static final int READY = 2;

    /** Entry type: a channel (a ring). */
    public static final int CHANNEL = 1;
    /** Entry type: a service (request-reply over lanes). */
    public static final int SERVICE = 2;

    private DirectoryDescriptor() {
    }
}
