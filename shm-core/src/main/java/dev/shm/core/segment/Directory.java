package dev.shm.core.segment;

import static dev.shm.core.segment.DirectoryDescriptor.DOORBELL_OFFSET;
import static dev.shm.core.segment.DirectoryDescriptor.EMPTY;
import static dev.shm.core.segment.DirectoryDescriptor.INITIALIZING;
import static dev.shm.core.segment.DirectoryDescriptor.LENGTH;
import static dev.shm.core.segment.DirectoryDescriptor.NAME_CAPACITY;
import static dev.shm.core.segment.DirectoryDescriptor.NAME_LENGTH_OFFSET;
import static dev.shm.core.segment.DirectoryDescriptor.NAME_OFFSET;
import static dev.shm.core.segment.DirectoryDescriptor.PARAMS_OFFSET;
import static dev.shm.core.segment.DirectoryDescriptor.PARAM_COUNT_OFFSET;
import static dev.shm.core.segment.DirectoryDescriptor.PROVIDER_OFFSET;
import static dev.shm.core.segment.DirectoryDescriptor.READY;
import static dev.shm.core.segment.DirectoryDescriptor.STATE_OFFSET;
import static dev.shm.core.segment.DirectoryDescriptor.STRUCTURE_LENGTH_OFFSET;
import static dev.shm.core.segment.DirectoryDescriptor.STRUCTURE_OFFSET_OFFSET;
import static dev.shm.core.segment.DirectoryDescriptor.TYPE_OFFSET;

import dev.shm.core.internal.Utf8;
import dev.shm.core.lane.Doorbell;
import dev.shm.core.segment.SegmentException.Reason;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalInt;

/**
 * The directory of a segment: its named channels and services. The first process to declare a
 * name creates the entry ({@code EMPTY → INITIALIZING → READY}, by compare-and-set); later
 * declarations of the name must agree on type and parameters, or fail with a message naming both
 * values. Declarations are serialised by the segment's directory lock, so two processes racing to
 * declare one name end with one entry; lookups take no lock.
 *
 * <p>Thread-safety: safe from any thread of any process.
 */
public final class Directory {

    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();

    private final MemorySegment memory;
    private final int capacity;
    private final SegmentMemory segment;

    Directory(MemorySegment memory, int capacity, SegmentMemory segment) {
        this.memory = memory;
        this.capacity = capacity;
        this.segment = segment;
    }

    /**
     * One READY entry.
     *
     * @param index the entry's index
     * @param name its name
     * @param type {@link DirectoryDescriptor#CHANNEL} or {@link DirectoryDescriptor#SERVICE}
     * @param params its parameters
     * @param structureOffset the file offset of its structure (a ring), or 0
     * @param structureLength the length of its structure, or 0
     * @param provider the peer that provides a service, or -1
     */
    public record Entry(int index, String name, int type, long[] params, long structureOffset, long structureLength,
                        int provider) {
    }

    /** Allocates the structure of a new entry (a ring) while the entry is {@code INITIALIZING}. */
    @FunctionalInterface
    public interface Initializer {
        /**
         * Creates the structure.
         *
         * @param index the entry's index
         * @return {offset, length} of the structure in the file, or {0, 0} for none
         */
        long[] initialize(int index);
    }

    /**
     * Declares a name, or finds it declared with the same type and parameters.
     *
     * @param name the name, at most {@value DirectoryDescriptor#NAME_CAPACITY} UTF-8 bytes
     * @param type {@link DirectoryDescriptor#CHANNEL} or {@link DirectoryDescriptor#SERVICE}
     * @param paramNames names of the parameters, for the mismatch message
     * @param params the parameters, at most {@value DirectoryDescriptor#MAX_PARAMS}
     * @param initializer creates the structure of a new entry
     * @return the entry's index
     * @throws SegmentException {@code PARAMETER_MISMATCH} when the name exists with another type
     *     or other parameters; {@code DIRECTORY_FULL} when the directory is full
     */
    public int declare(String name, int type, String[] paramNames, long[] params, Initializer initializer) {
        byte[] bytes = name.getBytes(StandardCharsets.UTF_8);
        if (bytes.length == 0 || bytes.length > NAME_CAPACITY) {
            throw new IllegalArgumentException("a directory name holds 1 to " + NAME_CAPACITY + " UTF-8 bytes; name="
                    + name + " has " + bytes.length);
        }
        if (Utf8.hasControl(name)) {
            throw new IllegalArgumentException("a directory name holds no control character; this one, of "
                    + name.length() + " characters, does");
        }
        if (params.length > DirectoryDescriptor.MAX_PARAMS || paramNames.length != params.length) {
            throw new IllegalArgumentException("up to " + DirectoryDescriptor.MAX_PARAMS
                    + " parameters, each with a name; got " + params.length + " values and " + paramNames.length
                    + " names");
        }
        return segment.withLock(SegmentDescriptor.DIRECTORY_LOCK, () -> {
            int free = -1;
            for (int index = 0; index < capacity; index++) {
                long at = offset(index);
                long word = (long) LONG.getAcquire(memory, at + STATE_OFFSET);
                int state = StateWord.state(word);
                if (state == READY && name.equals(readName(at))) {
                    checkSame(index, name, type, paramNames, params);
                    return index;
                }
                if (state == INITIALIZING) {
                    // Under the lock nobody is declaring: its declarer died or failed half-way.
                    LONG.compareAndSet(memory, at + STATE_OFFSET, word,
                            StateWord.of(StateWord.epoch(word), StateWord.NO_OWNER, EMPTY));
                    state = EMPTY;
                }
                if (state == EMPTY && free < 0) {
                    free = index;
                }
            }
            if (free < 0) {
                throw new SegmentException(Reason.DIRECTORY_FULL, "the directory of " + segment.subject() + " is full: "
                        + capacity + " channels and services; declare more of them in another segment");
            }
            long at = offset(free);
            long word = (long) LONG.getAcquire(memory, at + STATE_OFFSET);
            long claimed = StateWord.of(StateWord.epoch(word) + 1, segment.peerId(), INITIALIZING);
            if (!LONG.compareAndSet(memory, at + STATE_OFFSET, word, claimed)) {
                throw new IllegalStateException("directory entry " + free + " changed under the directory lock");
            }
            try {
                memory.set(ValueLayout.JAVA_INT, at + TYPE_OFFSET, type);
                int length = Utf8.write(memory, at + NAME_OFFSET, name, NAME_CAPACITY);
                memory.set(ValueLayout.JAVA_INT, at + NAME_LENGTH_OFFSET, length);
                memory.set(ValueLayout.JAVA_INT, at + PARAM_COUNT_OFFSET, params.length);
                for (int i = 0; i < DirectoryDescriptor.MAX_PARAMS; i++) {
                    memory.set(ValueLayout.JAVA_LONG, at + PARAMS_OFFSET + 8L * i, i < params.length ? params[i] : 0);
                }
                memory.set(ValueLayout.JAVA_LONG, at + PROVIDER_OFFSET, -1L);
                long[] structure = initializer.initialize(free);
                memory.set(ValueLayout.JAVA_LONG, at + STRUCTURE_OFFSET_OFFSET, structure[0]);
                memory.set(ValueLayout.JAVA_LONG, at + STRUCTURE_LENGTH_OFFSET, structure[1]);
                LONG.setRelease(memory, at + STATE_OFFSET,
                        StateWord.of(StateWord.epoch(claimed), StateWord.NO_OWNER, READY));
                return free;
            } catch (RuntimeException | Error e) {
                LONG.setRelease(memory, at + STATE_OFFSET,
                        StateWord.of(StateWord.epoch(claimed), StateWord.NO_OWNER, EMPTY));
                throw e;
            }
        });
    }

    private void checkSame(int index, String name, int type, String[] paramNames, long[] params) {
        Entry existing = entry(index);
        if (existing.type() != type || !Arrays.equals(existing.params(), params)) {
            StringBuilder theirs = new StringBuilder();
            StringBuilder ours = new StringBuilder();
            for (int i = 0; i < params.length; i++) {
                String sep = i == 0 ? "" : ", ";
                theirs.append(sep).append(paramNames[i]).append('=')
                        .append(i < existing.params().length ? existing.params()[i] : "?");
                ours.append(sep).append(paramNames[i]).append('=').append(params[i]);
            }
            throw new SegmentException(Reason.PARAMETER_MISMATCH, typeName(existing.type()) + " '" + name
                    + "' of segment " + segment.subject() + " is declared with " + theirs + "; this process declares "
                    + typeName(type) + " with " + ours + ": declare it alike in every process");
        }
    }

    /**
     * Finds a declared name.
     *
     * @param name the name
     * @return its entry's index, if declared
     */
    public OptionalInt lookup(String name) {
        for (int index = 0; index < capacity; index++) {
            long at = offset(index);
            if (StateWord.state((long) LONG.getAcquire(memory, at + STATE_OFFSET)) == READY
                    && name.equals(readName(at))) {
                return OptionalInt.of(index);
            }
        }
        return OptionalInt.empty();
    }

    /**
     * Records, in an entry being declared, the structure its initializer just appended: for an
     * initializer to call, inside the extent lock, right after the append. A declarer that dies (or
     * fails) from there on leaves the extent named in the entry, where the next declaration into
     * it finds it ({@link #leftStructure}) instead of losing its space.
     *
     * @param index the entry, {@code INITIALIZING} by this process under the directory lock
     * @param offset the extent's file offset
     * @param length its length
     */
    public void recordStructure(int index, long offset, long length) {
        if (length <= 0 || length > LEFT_LENGTH_MASK) {
            throw new IllegalArgumentException("structure length=" + length);
        }
        long at = offset(index);
        int epoch = StateWord.epoch((long) LONG.getAcquire(memory, at + STATE_OFFSET));
        memory.set(ValueLayout.JAVA_LONG, at + STRUCTURE_OFFSET_OFFSET, offset);
        // Tagged with the declaration's epoch until the entry is READY (then the length alone): the
        // next declaration, one epoch on, trusts only a record that its predecessor made.
        memory.set(ValueLayout.JAVA_LONG, at + STRUCTURE_LENGTH_OFFSET, length | leftTag(epoch));
    }

    /** The bits of a left structure's length word that hold the tag. */
    private static final long LEFT_LENGTH_MASK = (1L << 40) - 1;

    private static long leftTag(int epoch) {
        return ((long) (epoch & 0xFF_FFFF) << 40);
    }

    /**
     * Returns the structure an entry being declared still names from the declaration into it just
     * before this one, which died or failed part-way after {@link #recordStructure}: entries never go
     * from {@code READY} back to {@code EMPTY}, so an extent named there belongs to no structure.
     * The record carries that declaration's epoch, so that other values left in the entry (a
     * damaged word) are not taken for one. Untrusted still: the caller checks it before use.
     *
     * @param index the entry, {@code INITIALIZING} by this process under the directory lock
     * @return {offset, length}; {0, 0} when it names none
     */
    public long[] leftStructure(int index) {
        long at = offset(index);
        int epoch = StateWord.epoch((long) LONG.getAcquire(memory, at + STATE_OFFSET));
        long lengthWord = memory.get(ValueLayout.JAVA_LONG, at + STRUCTURE_LENGTH_OFFSET);
        if ((lengthWord & ~LEFT_LENGTH_MASK) != leftTag(epoch - 1) || (lengthWord & LEFT_LENGTH_MASK) == 0) {
            return new long[] {0, 0};
        }
        return new long[] {memory.get(ValueLayout.JAVA_LONG, at + STRUCTURE_OFFSET_OFFSET),
                lengthWord & LEFT_LENGTH_MASK};
    }

    /**
     * Reads a READY entry. Values are untrusted: lengths and counts are clamped.
     *
     * @param index the entry
     * @return the entry
     * @throws IllegalArgumentException when the entry is not READY
     */
    public Entry entry(int index) {
        long at = offset(index);
        if (StateWord.state((long) LONG.getAcquire(memory, at + STATE_OFFSET)) != READY) {
            throw new IllegalArgumentException("directory entry " + index + " is not declared");
        }
        int count = Math.max(0, Math.min(DirectoryDescriptor.MAX_PARAMS,
                memory.get(ValueLayout.JAVA_INT, at + PARAM_COUNT_OFFSET)));
        long[] params = new long[count];
        for (int i = 0; i < count; i++) {
            params[i] = memory.get(ValueLayout.JAVA_LONG, at + PARAMS_OFFSET + 8L * i);
        }
        long provider = (long) LONG.getAcquire(memory, at + PROVIDER_OFFSET);
        return new Entry(index, readName(at), memory.get(ValueLayout.JAVA_INT, at + TYPE_OFFSET), params,
                memory.get(ValueLayout.JAVA_LONG, at + STRUCTURE_OFFSET_OFFSET),
                memory.get(ValueLayout.JAVA_LONG, at + STRUCTURE_LENGTH_OFFSET),
                provider < 0 ? -1 : (int) (provider & 0xFFFF));
    }

    /**
     * Returns every READY entry.
     *
     * @return the entries, in index order
     */
    public List<Entry> entries() {
        List<Entry> entries = new ArrayList<>();
        for (int index = 0; index < capacity; index++) {
            if (StateWord.state((long) LONG.getAcquire(memory, offset(index) + STATE_OFFSET)) == READY) {
                entries.add(entry(index));
            }
        }
        return entries;
    }

    /**
     * Makes this peer the provider of a service entry, unless a live peer provides it.
     *
     * @param index the service's entry
     * @return whether this peer is the provider now
     */
    public boolean provide(int index) {
        long at = offset(index) + PROVIDER_OFFSET;
        while (true) {
            long current = (long) LONG.getAcquire(memory, at);
            int provider = current < 0 ? -1 : (int) (current & 0xFFFF);
            if (provider == segment.peerId()) {
                return true;
            }
            if (provider >= 0 && segment.isPeerAlive(provider)) {
                return false;
            }
            if (LONG.compareAndSet(memory, at, current, ((long) segment.peerEpoch() << 32) | segment.peerId())) {
                // The doorbell's sleeper is the provider: a dead one's flag goes with its role.
                Doorbell.clear(memory.asSlice(offset(index) + DOORBELL_OFFSET, Doorbell.LENGTH));
                return true;
            }
        }
    }

    /**
     * Returns the doorbell of a service: its provider sleeps on it while no client sends, and a
     * client rings it after each request it wrote into a lane of the service.
     *
     * @param index the service's entry
     * @return the doorbell
     */
    public Doorbell doorbell(int index) {
        return new Doorbell(memory.asSlice(offset(index) + DOORBELL_OFFSET, Doorbell.LENGTH));
    }

    /**
     * Forgets a dead peer as provider of its services. Idempotent.
     *
     * @param dead the dead peer
     * @return the services it provided
     */
    int recover(int dead) {
        int cleared = 0;
        for (int index = 0; index < capacity; index++) {
            long at = offset(index);
            long word = (long) LONG.getAcquire(memory, at + STATE_OFFSET);
            if (StateWord.state(word) != READY) {
                continue;
            }
            long provider = (long) LONG.getAcquire(memory, at + PROVIDER_OFFSET);
            if (provider >= 0 && (provider & 0xFFFF) == dead
                    && LONG.compareAndSet(memory, at + PROVIDER_OFFSET, provider, -1L)) {
                cleared++;
            }
        }
        return cleared;
    }

    private String readName(long at) {
        return Utf8.read(memory, at + NAME_OFFSET, memory.get(ValueLayout.JAVA_INT, at + NAME_LENGTH_OFFSET),
                NAME_CAPACITY);
    }

    private static String typeName(int type) {
        return switch (type) {
            case DirectoryDescriptor.CHANNEL -> "channel";
            case DirectoryDescriptor.SERVICE -> "service";
            default -> "entry of type " + type;
        };
    }

    private long offset(int index) {
        if (index < 0 || index >= capacity) {
            throw new IndexOutOfBoundsException("directory index=" + index + " outside 0.." + (capacity - 1));
        }
        return (long) index * LENGTH;
    }
}
