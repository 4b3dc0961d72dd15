package dev.shm.bench;

import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;

/**
 * A stream socket between the two JVMs: a Unix domain socket in the run's directory
 * ({@link Kind#UDS}) or TCP over loopback with {@code TCP_NODELAY} ({@link Kind#TCP}). Frames are a
 * four-byte length and the payload; each message is one {@code write} (no batching in user space);
 * both sides are non-blocking and spin on {@code read} (busy-polling, like the shared-memory peers).
 *
 * <p>The parent creates the listening socket before it starts the child ({@link #listen}), and
 * accepts in {@link #awaitConnected}.
 */
final class SocketEndpoint extends Endpoint {

    private static final int HEADER = 4;

    private final ServerSocketChannel server;
    private SocketChannel channel;
    private final ByteBuffer out;
    private final ByteBuffer in;
    private final ByteBuffer echoView;
    private int head;

    SocketEndpoint(Spec spec, boolean parent) {
        int payload = spec.payload();
        this.out = ByteBuffer.allocateDirect(HEADER + payload).order(ByteOrder.LITTLE_ENDIAN);
        out.putInt(0, payload);
        this.in = ByteBuffer.allocateDirect(Math.max(4 * (HEADER + payload), 1 << 20)).order(ByteOrder.LITTLE_ENDIAN);
        this.echoView = in.duplicate();
        try {
            if (parent) {
                this.server = spec.kind() == Kind.UDS ? ServerSocketChannel.open(StandardProtocolFamily.UNIX)
                        : ServerSocketChannel.open(StandardProtocolFamily.INET);
                server.bind(address(spec));
            } else {
                this.server = null;
                this.channel = SocketChannel.open(address(spec));
                configure(channel, spec.kind());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open a " + spec.kind().label() + " socket", e);
        }
    }

    /**
     * Where the parent listens: a socket file in the run's directory, or a TCP port on loopback
     * (port 0 before the parent binds).
     */
    private static SocketAddress address(Spec spec) {
        return spec.kind() == Kind.UDS ? UnixDomainSocketAddress.of(spec.dir().resolve("bench.sock"))
                : new InetSocketAddress(InetAddress.getLoopbackAddress(), spec.port());
    }

    /**
     * Returns the TCP port the parent listens on.
     *
     * @return the port, or 0 for a Unix domain socket
     */
    int port() {
        try {
            return server.getLocalAddress() instanceof InetSocketAddress inet ? inet.getPort() : 0;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void configure(SocketChannel channel, Kind kind) throws IOException {
        if (kind == Kind.TCP) {
            channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
        }
        channel.setOption(StandardSocketOptions.SO_SNDBUF, 4 << 20);
        channel.setOption(StandardSocketOptions.SO_RCVBUF, 4 << 20);
        channel.configureBlocking(false);
    }

    @Override
    public void awaitConnected() {
        if (server == null) {
            return;
        }
        try {
            channel = server.accept();
            configure(channel, channel.getRemoteAddress() instanceof InetSocketAddress ? Kind.TCP : Kind.UDS);
        } catch (IOException e) {
            throw new UncheckedIOException("accept failed", e);
        }
    }

    @Override
    public void send(long stamp) {
        out.putLong(HEADER, stamp);
        out.clear();
        writeFully(out);
    }

    private void writeFully(ByteBuffer buffer) {
        try {
            while (buffer.hasRemaining()) {
                if (channel.write(buffer) == 0) {
                    Thread.onSpinWait(); // the socket buffer is full: retry
                    checkAborted();
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("write failed", e);
        }
    }

    @Override
    public int poll(int limit) {
        return receive(limit, false);
    }

    @Override
    public int echo(int limit) {
        return receive(limit, true);
    }

    private int receive(int limit, boolean echo) {
        try {
            if (channel.read(in) < 0) {
                throw new UncheckedIOException(new EOFException("the other side closed the socket"));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("read failed", e);
        }
        int end = in.position();
        int count = 0;
        while (count < limit && end - head >= HEADER) {
            int length = in.getInt(head);
            if (end - head - HEADER < length) {
                break;
            }
            received(in.getLong(head + HEADER));
            if (echo) {
                writeFully(echoView.limit(head + HEADER + length).position(head));
            }
            head += HEADER + length;
            count++;
        }
        if (head == end) {
            in.clear();
            head = 0;
        } else if (head > 0 && in.remaining() < in.capacity() / 2) {
            in.limit(end).position(head);
            in.compact();
            head = 0;
        }
        return count;
    }

    @Override
    public void close() {
        try {
            if (channel != null) {
                channel.close();
            }
            if (server != null) {
                server.close();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
