package dev.shm.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.agrona.DirectBuffer;
import org.agrona.IoUtil;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.MessageHandler;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.OneToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;

/**
 * Agrona's {@link OneToOneRingBuffer} over a file mapped by both JVMs, one ring each way. The ring
 * is 1 MiB, or larger when the payload needs it (Agrona's largest message is an eighth of the
 * capacity).
 */
final class AgronaEndpoint extends Endpoint {

    private static final int MSG_TYPE = 1;

    private final MappedByteBuffer pingMap;
    private final MappedByteBuffer pongMap;
    private final OneToOneRingBuffer out;
    private final OneToOneRingBuffer in;
    private final OneToOneRingBuffer echoTo;
    private final UnsafeBuffer source;
    private final int payload;
    private final MessageHandler receiver = this::onMessage;
    private final MessageHandler echoer = this::onEcho;

    AgronaEndpoint(Spec spec, boolean parent) {
        this.payload = spec.payload();
        int capacity = 1 << 20;
        while (capacity / 8 < payload + 8) {
            capacity <<= 1;
        }
        boolean twoWay = spec.mode() == Spec.Mode.RTT;
        this.pingMap = map(spec.dir().resolve("ping.ring"), capacity, parent);
        this.pongMap = twoWay ? map(spec.dir().resolve("pong.ring"), capacity, parent) : null;
        OneToOneRingBuffer ping = new OneToOneRingBuffer(new UnsafeBuffer(pingMap));
        OneToOneRingBuffer pong = twoWay ? new OneToOneRingBuffer(new UnsafeBuffer(pongMap)) : null;
        this.out = parent ? ping : null;
        this.in = parent ? pong : ping;
        this.echoTo = parent ? null : pong;
        this.source = new UnsafeBuffer(ByteBuffer.allocateDirect(Math.max(payload, 64)));
    }

    private static MappedByteBuffer map(Path file, int capacity, boolean create) {
        int length = capacity + RingBufferDescriptor.TRAILER_LENGTH;
        try (FileChannel channel = create
                ? FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE)
                : FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            if (create) {
                IoUtil.fill(channel, 0, length, (byte) 0); // not sparse: every page exists before the run
            }
            return channel.map(FileChannel.MapMode.READ_WRITE, 0, length);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot map " + file, e);
        }
    }

    @Override
    public void send(long stamp) {
        source.putLong(0, stamp);
        write(out, source, 0, payload);
    }

    private static void write(OneToOneRingBuffer ring, DirectBuffer buffer, int offset, int length) {
        while (!ring.write(MSG_TYPE, buffer, offset, length)) {
            Thread.onSpinWait(); // full: retry
            checkAborted();
        }
    }

    @Override
    public int poll(int limit) {
        return in.read(receiver, limit);
    }

    @Override
    public int echo(int limit) {
        return in.read(echoer, limit);
    }

    private void onMessage(int type, MutableDirectBuffer buffer, int offset, int length) {
        received(buffer.getLong(offset));
    }

    private void onEcho(int type, MutableDirectBuffer buffer, int offset, int length) {
        received(buffer.getLong(offset));
        write(echoTo, buffer, offset, length);
    }

    @Override
    public void close() {
        IoUtil.unmap(pingMap);
        if (pongMap != null) {
            IoUtil.unmap(pongMap);
        }
    }
}
