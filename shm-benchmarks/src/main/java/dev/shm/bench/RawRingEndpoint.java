package dev.shm.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The raw ring: two rings of slots in one mapped file (ping and pong), laid out as our channel's
 * are (a 16-byte header, then the payload; slots rounded to 32 bytes; 4,096 slots up to 4 KiB, 16
 * above), with nothing of a protocol. The sender stores the length, copies the payload and stores
 * the slot's sequence with release; the receiver spins on the next slot's header with acquire, reads
 * the payload and moves its position, which it publishes (release) once per poll, as Agrona's ring
 * does its head; the sender reads it only when its cached copy leaves no room. No claim, no groups,
 * no marks, no wake-ups, no crash safety, no checks of what it reads.
 *
 * <p>With {@link Kind#FLOOR}, which moves no payload, it brackets the transports: what walking
 * slots of a ring costs with {@code java.lang.foreign} and no bookkeeping, in a round trip and in
 * a stream.
 */
final class RawRingEndpoint extends Endpoint {

    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();
    private static final int HEADER = 16;
    /** Two cache lines: what the adjacent-line prefetcher pairs, so the two positions share nothing. */
    private static final int LINE = 128;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment rings;
    private final long out;
    private final long in;
    private final int slots;
    private final int slotSize;
    private final int payload;
    private final MemorySegment source;
    /** Where the other side publishes how far it read the ring this side writes. */
    private final long outRead;
    /** Where this side publishes how far it read the ring it reads. */
    private final long inRead;
    private long sent;
    private long position;
    /** The last value read at {@link #outRead}: this side may write up to a ring ahead of it. */
    private long readCache;

    RawRingEndpoint(Spec spec, boolean parent) {
        this.payload = spec.payload();
        this.slots = payload <= 4096 ? 4096 : 16;
        this.slotSize = inlineSlotSize(HEADER, payload);
        long ringLength = (long) slots * slotSize;
        long fileLength = 2 * ringLength + 2 * LINE;
        Path file = spec.dir().resolve("raw-ring.bin");
        try (FileChannel channel = parent
                ? FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE)
                : FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            if (parent) {
                // Written, not only sized: no page is faulted in during the measurement.
                ByteBuffer zeros = ByteBuffer.allocate(1 << 20);
                for (long at = 0; at < fileLength; at += zeros.capacity()) {
                    zeros.clear().limit((int) Math.min(zeros.capacity(), fileLength - at));
                    channel.write(zeros, at);
                }
            }
            rings = channel.map(FileChannel.MapMode.READ_WRITE, 0, fileLength, arena);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot map " + file, e);
        }
        this.out = parent ? 0 : ringLength;
        this.in = parent ? ringLength : 0;
        this.outRead = 2 * ringLength + (parent ? LINE : 0);
        this.inRead = 2 * ringLength + (parent ? 0 : LINE);
        this.source = Arena.ofAuto().allocate(payload, 64);
    }

    @Override
    public void send(long stamp) {
        source.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, stamp);
        put(source, 0, payload);
    }

    private void put(MemorySegment from, long offset, long length) {
        long sequence = sent++;
        while (sequence - readCache >= slots) {
            readCache = (long) LONG.getAcquire(rings, outRead);
            if (sequence - readCache >= slots) {
                Thread.onSpinWait();
                checkAborted();
            }
        }
        long slot = out + (sequence & (slots - 1)) * slotSize;
        rings.set(ValueLayout.JAVA_LONG, slot + 8, length);
        MemorySegment.copy(from, offset, rings, slot + HEADER, length);
        LONG.setRelease(rings, slot, sequence + 1);
    }

    @Override
    public int poll(int limit) {
        return take(limit, false);
    }

    @Override
    public int echo(int limit) {
        return take(limit, true);
    }

    private int take(int limit, boolean echo) {
        int taken = 0;
        while (taken < limit) {
            long slot = in + (position & (slots - 1)) * slotSize;
            if ((long) LONG.getAcquire(rings, slot) != position + 1) {
                break;
            }
            long length = rings.get(ValueLayout.JAVA_LONG, slot + 8);
            received(rings.get(ValueLayout.JAVA_LONG_UNALIGNED, slot + HEADER));
            if (echo) {
                put(rings, slot + HEADER, length);
            }
            position++;
            taken++;
        }
        if (taken > 0) {
            LONG.setRelease(rings, inRead, position);
        }
        return taken;
    }

    @Override
    public void close() {
        arena.close();
    }
}
