package dev.shm.core.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.ErrnoException;
import dev.shm.core.ShmException;
import dev.shm.core.ShmTimeoutException;
import dev.shm.core.internal.Libc;
import dev.shm.core.memory.MappingException.Reason;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MemfdBufferTest {

    private static final long PID = ProcessHandle.current().pid();

    @TempDir
    Path dir;

    @Test
    void createMakesASealedZeroedAlignedBuffer() throws IOException {
        try (MemfdBuffer buffer = MemfdBuffer.create("frames", 10_000)) {
            assertThat(buffer.name()).isEqualTo("frames");
            assertThat(buffer.size()).isEqualTo(10_000);
            assertThat(buffer.fd()).isNotNegative();
            assertThat(buffer.seals()).isEqualTo(MemfdBuffer.REQUIRED_SEALS);
            assertThat(buffer.isSealed()).isTrue();
            assertThat(buffer.slice(0, 1).address() % 64).isZero();
            assertThat(buffer.getBytes(0, 10_000)).containsOnly(0);
            assertThat(Files.readSymbolicLink(Path.of("/proc/self/fd/" + buffer.fd())).toString())
                    .startsWith("/memfd:frames");
            buffer.putLong(9992, 5);
            assertThat(buffer.atomicLong(9992).getAndAdd(1)).isEqualTo(5);
        }
    }

    @Test
    void badNamesAndSizesAreRejected() {
        assertThatThrownBy(() -> MemfdBuffer.create("", 1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("must not be empty");
        assertThatThrownBy(() -> MemfdBuffer.create("a\0b", 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("a memfd name must not contain NUL (\\0); name=a\\0b");
        assertThatThrownBy(() -> MemfdBuffer.create("x".repeat(250), 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("a memfd name holds at most 249 UTF-8 bytes (the kernel's limit); name has 250");
        assertThatThrownBy(() -> MemfdBuffer.create("é".repeat(125), 1)) // 250 bytes in UTF-8
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("name has 250");
        assertThatThrownBy(() -> MemfdBuffer.create("zero", 0))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("size=0 must be positive");
        assertThatThrownBy(() -> MemfdBuffer.create("negative", -1))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("size=-1 must be positive");
        try (MemfdBuffer longest = MemfdBuffer.create("x".repeat(249), 1)) {
            assertThat(longest.name()).hasSize(249);
        }
    }

    @Test
    void unsealedBufferResizesUntilSealed() {
        try (MemfdBuffer buffer = MemfdBuffer.createUnsealed("growing", 4096)) {
            assertThat(buffer.isSealed()).isFalse();
            buffer.putLong(0, 7);
            AtomicLongView old = buffer.atomicLong(0);
            buffer.resize(3 * 4096);
            assertThat(buffer.size()).isEqualTo(3 * 4096);
            assertThat(buffer.getLong(0)).isEqualTo(7);
            assertThatThrownBy(old::getVolatile).isInstanceOf(StaleMappingException.class);
            buffer.resize(8192);
            assertThat(buffer.size()).isEqualTo(8192);

            buffer.seal();
            buffer.seal(); // idempotent
            assertThat(buffer.isSealed()).isTrue();
            assertThatThrownBy(() -> buffer.resize(16384))
                    .isInstanceOfSatisfying(MappingException.class, e -> assertThat(e.reason()).isEqualTo(Reason.SEALED))
                    .hasMessage("cannot resize memfd:growing from 8192 to 16384 bytes: it is sealed "
                            + "(F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW), and the kernel refused: "
                            + "ftruncate(memfd:growing, 16384) failed: EPERM (Operation not permitted)")
                    .hasCauseInstanceOf(ErrnoException.class);
            assertThatThrownBy(() -> buffer.resize(4096))
                    .isInstanceOfSatisfying(MappingException.class, e -> assertThat(e.reason()).isEqualTo(Reason.SEALED));
            assertThat(buffer.size()).isEqualTo(8192);
            assertThat(buffer.getLong(0)).isEqualTo(7);
        }
    }

    @Test
    void openByPidAndFdSharesTheSamePages() {
        try (MemfdBuffer buffer = MemfdBuffer.create("shared", 4096);
             MemfdBuffer other = MemfdBuffer.open(PID, buffer.fd(), 4096)) {
            assertThat(other.fd()).isNotEqualTo(buffer.fd());
            assertThat(other.name()).isEqualTo("shared");
            buffer.putLong(0, 11);
            assertThat(other.getLong(0)).isEqualTo(11);
            other.atomicLong(8).setRelease(12);
            assertThat(buffer.atomicLong(8).getAcquire()).isEqualTo(12);
        }
    }

    @Test
    void receiverRefusesAnUnsealedBuffer() {
        try (MemfdBuffer unsealed = MemfdBuffer.createUnsealed("loose", 4096)) {
            assertThatThrownBy(() -> MemfdBuffer.open(PID, unsealed.fd(), 4096))
                    .isInstanceOfSatisfying(MappingException.class, e -> assertThat(e.reason()).isEqualTo(Reason.NOT_SEALED))
                    .hasMessage("memfd:loose (/proc/" + PID + "/fd/" + unsealed.fd() + ") lacks the seals "
                            + "F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW (it has none): its size could change under the "
                            + "mapping, so it is refused; the sender must seal it (MemfdBuffer.create seals, or call seal())");
        }
    }

    @Test
    void receiverRefusesABufferTooSmall() {
        try (MemfdBuffer buffer = MemfdBuffer.create("small", 4096)) {
            assertThatThrownBy(() -> MemfdBuffer.open(PID, buffer.fd(), 4097))
                    .isInstanceOfSatisfying(MappingException.class, e -> assertThat(e.reason()).isEqualTo(Reason.TOO_SHORT))
                    .hasMessage("memfd too small: expected at least 4097 bytes, found 4096 in memfd:small (/proc/" + PID
                            + "/fd/" + buffer.fd() + ")");
        }
    }

    @Test
    void receiverRefusesADescriptorThatIsNotAMemfd() throws IOException {
        Path plain = Files.write(dir.resolve("plain"), new byte[4096]);
        try (RandomAccessFile file = new RandomAccessFile(plain.toFile(), "rw")) {
            int fd = descriptorOf(plain);
            assertThatThrownBy(() -> MemfdBuffer.open(PID, fd, 1))
                    .isInstanceOfSatisfying(MappingException.class, e -> assertThat(e.reason()).isEqualTo(Reason.NOT_MEMFD))
                    .hasMessage("/proc/" + PID + "/fd/" + fd + " is " + plain + ", not a memfd");
            assertThat(file.length()).isEqualTo(4096);
        }
    }

    @Test
    void openOfAMissingDescriptorIsNotFound() {
        assertThatThrownBy(() -> MemfdBuffer.open(PID, 99_999, 1))
                .isInstanceOfSatisfying(MappingException.class, e -> assertThat(e.reason()).isEqualTo(Reason.NOT_FOUND))
                .hasMessage("cannot open the memfd of process " + PID + " at /proc/" + PID
                        + "/fd/99999: no such file (ENOENT)");
    }

    @Test
    void lastHandleCloseUnmapsAndClosesTheDescriptor() throws IOException {
        MemfdBuffer first = MemfdBuffer.create("counted", 4096);
        int fd = first.fd();
        MemfdBuffer second = first.share();
        first.putLong(0, 3);
        first.close();
        first.close(); // idempotent: must not release the second handle's share
        assertThat(second.getLong(0)).isEqualTo(3);
        assertThat(Path.of("/proc/self/fd/" + fd)).exists();
        assertThatThrownBy(first::share).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> first.getLong(0)).isInstanceOf(StaleMappingException.class);

        AtomicLongView view = second.atomicLong(0);
        assertThat(Files.readString(Path.of("/proc/self/maps"))).contains("/memfd:counted");
        second.close();
        assertThatThrownBy(view::getVolatile).isInstanceOf(StaleMappingException.class)
                .hasMessageContaining("memfd:counted is closed");
        assertThat(isMemfd(fd)).isFalse();
        assertThat(Files.readString(Path.of("/proc/self/maps"))).doesNotContain("/memfd:counted");
    }

    @Test
    void handOverOverASocketInProcess() {
        Path socket = dir.resolve("s");
        try (FdSocketServer server = FdSocketServer.bind(socket);
             FdSocket client = FdSocket.connect(socket);
             FdSocket accepted = server.accept(Duration.ofSeconds(5));
             MemfdBuffer buffer = MemfdBuffer.create("over-socket", 8192)) {
            assertThat(accepted).isNotNull();
            buffer.putLong(0, 21);
            buffer.sendTo(accepted);
            try (MemfdBuffer received = MemfdBuffer.receive(client, 8192, Duration.ofSeconds(5))) {
                assertThat(received.name()).isEqualTo("over-socket");
                assertThat(received.getLong(0)).isEqualTo(21);
                received.putLong(8, 22);
                assertThat(buffer.getLong(8)).isEqualTo(22);
            }
        }
    }

    /**
     * A listener that never accepts: connections fill its backlog, and the next connect waits its
     * timeout, then fails with a {@link ShmTimeoutException}; once one is accepted, a connect gets in.
     */
    @Test
    void aConnectToAListenerThatDoesNotAcceptTimesOut() {
        Path socket = dir.resolve("full");
        List<FdSocket> waiting = new ArrayList<>();
        try (FdSocketServer server = FdSocketServer.bind(socket)) {
            Duration timeout = Duration.ofMillis(100);
            ShmTimeoutException timedOut = null;
            do {
                assertThat(waiting).as("connections the backlog takes").hasSizeLessThan(1000);
                try {
                    waiting.add(FdSocket.connect(socket, timeout));
                } catch (ShmTimeoutException e) {
                    timedOut = e;
                }
            } while (timedOut == null);
            assertThat(waiting).as("the backlog took some").isNotEmpty();
            assertThat(waiting.getFirst().sendTimeout()).isEqualTo(timeout);
            assertThat(timedOut).hasMessageContaining("100 ms").hasMessageContaining("does not accept connections");
            try (FdSocket accepted = server.accept(Duration.ofSeconds(5));
                 FdSocket late = FdSocket.connect(socket, Duration.ofSeconds(5))) {
                assertThat(accepted).isNotNull();
                assertThat(late.sendTimeout()).isEqualTo(Duration.ofSeconds(5));
            }
            assertThatThrownBy(() -> waiting.getFirst().sendTimeout(Duration.ZERO))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("at least 1 ms");
        } finally {
            waiting.forEach(FdSocket::close);
        }
    }

    @Test
    void senderRefusesToSendAnUnsealedBuffer() {
        Path socket = dir.resolve("u");
        try (FdSocketServer server = FdSocketServer.bind(socket);
             FdSocket client = FdSocket.connect(socket);
             FdSocket _ = server.accept(Duration.ofSeconds(5));
             MemfdBuffer unsealed = MemfdBuffer.createUnsealed("loose", 4096)) {
            assertThatThrownBy(() -> unsealed.sendTo(client))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessage("memfd:loose is not sealed; seal() it before sending it");
        }
    }

    @Test
    void receiverRefusesAMalformedMessageAndClosesItsDescriptor() {
        Path socket = dir.resolve("m");
        try (FdSocketServer server = FdSocketServer.bind(socket);
             FdSocket client = FdSocket.connect(socket);
             FdSocket accepted = server.accept(Duration.ofSeconds(5));
             MemfdBuffer buffer = MemfdBuffer.create("bait", 4096)) {
            long before = memfdCount();
            accepted.send(buffer.fd(), "not a hand-over".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            assertThatThrownBy(() -> MemfdBuffer.receive(client, 1, Duration.ofSeconds(5)))
                    .isInstanceOfSatisfying(MappingException.class, e -> assertThat(e.reason()).isEqualTo(Reason.NOT_MEMFD))
                    .hasMessage("the message on FdSocket[" + socket + "] is not a memfd hand-over (bad magic or too "
                            + "short: 15 bytes)");
            assertThat(memfdCount()).isEqualTo(before);
        }
    }

    @Test
    void receiverRefusesAnOversizedMessageAndClosesItsDescriptor() {
        Path socket = dir.resolve("o");
        try (FdSocketServer server = FdSocketServer.bind(socket);
             FdSocket client = FdSocket.connect(socket);
             FdSocket accepted = server.accept(Duration.ofSeconds(5));
             MemfdBuffer buffer = MemfdBuffer.create("bait", 4096)) {
            long before = memfdCount();
            accepted.send(buffer.fd(), new byte[4096]);
            assertThatThrownBy(() -> MemfdBuffer.receive(client, 1, Duration.ofSeconds(5)))
                    .isInstanceOfSatisfying(MappingException.class, e -> assertThat(e.reason()).isEqualTo(Reason.NOT_MEMFD))
                    .hasMessageContaining("refused a message over the limits of 512 bytes and 4 descriptors");
            assertThat(memfdCount()).isEqualTo(before);
        }
    }

    @Test
    void receiveReportsAPeerThatHungUp() {
        Path socket = dir.resolve("h");
        try (FdSocketServer server = FdSocketServer.bind(socket);
             FdSocket client = FdSocket.connect(socket)) {
            server.accept(Duration.ofSeconds(5)).close();
            assertThatThrownBy(() -> MemfdBuffer.receive(client, 1, Duration.ofSeconds(5)))
                    .isInstanceOf(ShmException.class)
                    .isNotInstanceOf(MappingException.class)
                    .hasMessage("the peer closed FdSocket[" + socket + "] without sending a memfd");
        }
    }

    /** Closing a socket from another thread wakes a receiver, which then gives up clearly. */
    @Test
    void closeWakesAThreadWaitingToReceive() throws InterruptedException {
        Path socket = dir.resolve("w");
        try (FdSocketServer server = FdSocketServer.bind(socket)) {
            FdSocket client = FdSocket.connect(socket);
            FdSocket accepted = server.accept(Duration.ofSeconds(5));
            try {
                AtomicReference<Throwable> ended = new AtomicReference<>();
                CountDownLatch receiving = new CountDownLatch(1);
                Thread receiver = Thread.ofPlatform().start(() -> {
                    receiving.countDown();
                    try {
                        client.receive(64, Duration.ofSeconds(60));
                    } catch (Throwable t) {
                        ended.set(t);
                    }
                });
                receiving.await();
                client.close();
                receiver.join(10_000);
                assertThat(receiver.isAlive()).as("receiver still waiting after close").isFalse();
                assertThat(ended.get()).isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
            } finally {
                accepted.close();
            }
        }
    }

    @Test
    void closeWakesAThreadWaitingToAccept() throws InterruptedException {
        FdSocketServer server = FdSocketServer.bind(dir.resolve("a"));
        AtomicReference<Object> ended = new AtomicReference<>();
        CountDownLatch accepting = new CountDownLatch(1);
        Thread accepter = Thread.ofPlatform().start(() -> {
            accepting.countDown();
            try {
                ended.set(String.valueOf(server.accept(Duration.ofSeconds(60))));
            } catch (Throwable t) {
                ended.set(t);
            }
        });
        accepting.await();
        server.close();
        accepter.join(10_000);
        assertThat(accepter.isAlive()).as("accepter still waiting after close").isFalse();
        assertThat(dir.resolve("a")).doesNotExist();
    }

    @Test
    void receiveTimesOutWhenNothingArrives() {
        Path socket = dir.resolve("t");
        try (FdSocketServer server = FdSocketServer.bind(socket);
             FdSocket client = FdSocket.connect(socket);
             FdSocket _ = server.accept(Duration.ofSeconds(5))) {
            assertThatThrownBy(() -> MemfdBuffer.receive(client, 1, Duration.ofMillis(100)))
                    .isInstanceOf(ShmTimeoutException.class)
                    .hasMessage("timed out after 100 ms waiting for a memfd on FdSocket[" + socket + "]");
            assertThat(server.accept(Duration.ofMillis(50))).isNull();
        }
    }

    @Test
    void socketErrorsNameTheCallAndTheError() {
        Path missing = dir.resolve("nobody-listens");
        ErrnoException e = org.junit.jupiter.api.Assertions.assertThrows(ErrnoException.class,
                () -> FdSocket.connect(missing));
        assertThat(e).hasMessage("connect(" + missing + ") failed: ENOENT (No such file or directory)");
        assertThat(e.call()).isEqualTo("connect(" + missing + ")");
        assertThat(e.errno()).isEqualTo(2);
        assertThat(e.errnoName()).isEqualTo("ENOENT");

        Path taken = dir.resolve("taken");
        try (FdSocketServer _ = FdSocketServer.bind(taken)) {
            assertThatThrownBy(() -> FdSocketServer.bind(taken))
                    .isInstanceOf(ErrnoException.class)
                    .hasMessage("bind(" + taken + ") failed: EADDRINUSE (Address already in use)");
        }
        assertThatThrownBy(() -> FdSocketServer.bind(dir.resolve("x".repeat(120))))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("a Unix socket path holds at most 107 bytes");
        assertThat(Libc.pageSize()).isPositive();
    }

    private static int descriptorOf(Path file) throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    if (Files.readSymbolicLink(fd).equals(file)) {
                        return Integer.parseInt(fd.getFileName().toString());
                    }
                } catch (IOException gone) {
                    // the listing's own descriptor
                }
            }
        }
        throw new AssertionError("no descriptor of " + file);
    }

    private static boolean isMemfd(int fd) {
        try {
            return Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString().startsWith("/memfd:counted");
        } catch (IOException closed) {
            return false;
        }
    }

    private static long memfdCount() {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(fd -> {
                try {
                    return Files.readSymbolicLink(fd).toString().startsWith("/memfd:bait");
                } catch (IOException gone) {
                    return false;
                }
            }).count();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }
}
