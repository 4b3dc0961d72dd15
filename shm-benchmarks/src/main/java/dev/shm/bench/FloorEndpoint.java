package dev.shm.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The floor: two JVMs spinning on one mapped long each, no payload, no framing. The parent writes
 * {@code stamp + 1} to the ping word with release; the child, spinning on it with acquire, copies it
 * to the pong word (on another pair of cache lines); the parent spins on the pong word. No
 * transport that moves a message between the two can do a round trip in less.
 */
final class FloorEndpoint extends Endpoint {

    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();
    private static final long PING = 0;
    private static final long PONG = 128;
    private static final long LENGTH = 256;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment words;
    private long seen;

    FloorEndpoint(Spec spec, boolean parent) {
        Path file = spec.dir().resolve("floor.bin");
        try (FileChannel channel = parent
                ? FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE)
                : FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            if (parent) {
                channel.truncate(LENGTH);
                channel.write(java.nio.ByteBuffer.allocate((int) LENGTH), 0);
            }
            words = channel.map(FileChannel.MapMode.READ_WRITE, 0, LENGTH, arena);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot map " + file, e);
        }
    }

    @Override
    public void send(long stamp) {
        LONG.setRelease(words, PING, stamp + 1);
    }

    @Override
    public int poll(int limit) {
        long value = (long) LONG.getAcquire(words, PONG);
        if (value == seen) {
            return 0;
        }
        seen = value;
        received(value - 1);
        return 1;
    }

    @Override
    public int echo(int limit) {
        long value = (long) LONG.getAcquire(words, PING);
        if (value == seen) {
            return 0;
        }
        seen = value;
        LONG.setRelease(words, PONG, value);
        received(value - 1);
        return 1;
    }

    @Override
    public void close() {
        arena.close();
    }
}
