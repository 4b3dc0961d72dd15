package dev.shm.core.memory;

import static dev.shm.core.testing.ChildSupport.await;
import static dev.shm.core.testing.ChildSupport.say;

import dev.shm.core.testing.ChildSupport;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The second process of the memory layer's cross-process tests. Each scenario is a subcommand;
 * it reports what it sees on standard output and takes its cues from standard input.
 */
public final class MemoryChild {

    private MemoryChild() {
    }

    public static void main(String[] args) throws Exception {
        ChildSupport.begin(Duration.ofSeconds(90));
        try {
            switch (args[0]) {
                case "shared-file" -> sharedFile(Path.of(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3]));
                case "shared-memfd" -> sharedMemfd(Long.parseLong(args[1]), Integer.parseInt(args[2]),
                        Long.parseLong(args[3]), Integer.parseInt(args[4]), Integer.parseInt(args[5]));
                case "grow-file" -> growFile(Path.of(args[1]), Long.parseLong(args[2]));
                case "resize-sealed-memfd" -> resizeSealedMemfd(Long.parseLong(args[1]), Integer.parseInt(args[2]));
                case "receive-memfd" -> receiveMemfd(Path.of(args[1]), Long.parseLong(args[2]));
                case "connect-and-hold" -> connectAndHold(Path.of(args[1]));
                case "open-memfd" -> openMemfd(Long.parseLong(args[1]), Integer.parseInt(args[2]), Long.parseLong(args[3]));
                case "open-file" -> openFile(Path.of(args[1]), MapMode.valueOf(args[2]));
                case "create-memfd" -> createMemfd();
                case "read-truncated" -> readTruncated(Path.of(args[1]));
                default -> throw new IllegalArgumentException("unknown scenario " + args[0]);
            }
        } catch (Throwable t) {
            say("FAILED " + t);
            t.printStackTrace(System.out);
            System.exit(1);
        }
        System.exit(0);
    }

    /** Both processes see each other's writes, then both add to one counter. */
    private static void sharedFile(Path path, int threads, int iterations) throws InterruptedException {
        try (MappedFile file = MappedFile.open(path, MapMode.READ_WRITE)) {
            exchangeAndCount(file, threads, iterations);
        }
    }

    private static void sharedMemfd(long pid, int fd, long size, int threads, int iterations)
            throws InterruptedException {
        try (MemfdBuffer buffer = MemfdBuffer.open(pid, fd, size)) {
            exchangeAndCount(buffer, threads, iterations);
        }
    }

    private static void exchangeAndCount(MemoryRegion region, int threads, int iterations)
            throws InterruptedException {
        say("SAW " + region.getLong(8));
        region.putLong(16, 0xC41DL);
        say("WROTE");
        await("GO");
        AtomicLongView counter = region.atomicLong(0);
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            workers.add(Thread.ofPlatform().start(() -> {
                for (int i = 0; i < iterations; i++) {
                    counter.getAndAdd(1);
                }
            }));
        }
        for (Thread worker : workers) {
            worker.join();
        }
        say("DONE");
    }

    /** Grows a file that another process has mapped, and writes into the new part. */
    private static void growFile(Path path, long newSize) {
        try (MappedFile file = MappedFile.open(path, MapMode.READ_WRITE)) {
            file.resize(newSize);
            file.putLong(newSize - 8, 0x6E3L);
            say("GREW " + file.size());
        }
    }

    /** Tries every way to change a sealed memfd's size: through the API and with a plain file. */
    private static void resizeSealedMemfd(long pid, int fd) throws IOException {
        try (MemfdBuffer buffer = MemfdBuffer.open(pid, fd, 1)) {
            long size = buffer.size();
            say("SEALS " + buffer.seals());
            attempt("GROW", () -> buffer.resize(size * 2));
            attempt("SHRINK", () -> buffer.resize(size / 2));
            String proc = "/proc/" + pid + "/fd/" + fd;
            try (RandomAccessFile raw = new RandomAccessFile(proc, "rw")) {
                attempt("RAW-GROW", () -> raw.setLength(size * 2));
                attempt("RAW-SHRINK", () -> raw.setLength(size / 2));
                say("SIZE " + raw.length());
            }
        }
    }

    private interface Attempt {
        void run() throws IOException;
    }

    private static void attempt(String what, Attempt attempt) {
        try {
            attempt.run();
            say(what + " ALLOWED");
        } catch (MappingException e) {
            say(what + " REFUSED " + e.reason() + " " + e.getMessage());
        } catch (IOException e) {
            say(what + " REFUSED " + e.getMessage());
        }
    }

    /** Receives a memfd over a socket it did not inherit, and keeps using it after the sender closed it. */
    private static void receiveMemfd(Path socket, long size) throws IOException {
        say("MEMFDS-BEFORE " + memfdDescriptors());
        try (FdSocket connection = FdSocket.connect(socket);
             MemfdBuffer buffer = MemfdBuffer.receive(connection, size, Duration.ofSeconds(30))) {
            say("GOT " + buffer.name() + " " + buffer.size() + " " + buffer.seals() + " " + buffer.getLong(0));
            buffer.putLong(8, 0xBEEFL);
            say("WROTE");
            await("CLOSED");
            buffer.putLong(16, buffer.getLong(0) + 1);
            say("STILL " + buffer.getLong(16));
        }
    }

    /** Connects, then reads nothing from the socket until told {@code DONE}. */
    private static void connectAndHold(Path socket) {
        try (FdSocket _ = FdSocket.connect(socket)) {
            say("CONNECTED");
            await("DONE");
        }
    }

    /** Opens a memfd by (pid, fd) and reports how that went. */
    private static void openMemfd(long pid, int fd, long size) {
        try (MemfdBuffer buffer = MemfdBuffer.open(pid, fd, size)) {
            say("OPENED " + buffer.size());
        } catch (MappingException e) {
            say("REFUSED " + e.reason() + " " + e.getMessage());
        }
    }

    /** Opens a file and reports how that went. */
    private static void openFile(Path path, MapMode mode) {
        try (MappedFile file = MappedFile.open(path, mode)) {
            say("OPENED " + file.size());
        } catch (MappingException e) {
            say("REFUSED " + e.reason() + " " + e.getMessage());
        }
    }

    /** Maps a snapshot, truncates it, and reports what a read of a lost page does. */
    private static void readTruncated(Path path) throws IOException {
        try (SnapshotReader reader = SnapshotReader.open(path)) {
            long size = reader.size();
            try (RandomAccessFile file = new RandomAccessFile(path.toFile(), "rw")) {
                file.setLength(4096);
            }
            try {
                reader.readExact(size - 4096, 16);
                say("NO-FAULT");
            } catch (MappingFaultException e) {
                say("FAULT " + e.truncated() + " " + e.getMessage());
            }
        }
    }

    /** Creates a memfd and reports the exception, if any (for platform checks). */
    private static void createMemfd() {
        try (MemfdBuffer buffer = MemfdBuffer.create("probe", 4096)) {
            say("CREATED " + buffer.size());
        } catch (RuntimeException e) {
            say("ERROR " + e.getClass().getName() + ": " + e.getMessage());
        }
    }

    private static List<String> memfdDescriptors() throws IOException {
        List<String> found = new ArrayList<>();
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    if (Files.readSymbolicLink(fd).toString().startsWith("/memfd:")) {
                        found.add(fd.getFileName().toString());
                    }
                } catch (IOException gone) {
                    // the listing's own descriptor
                }
            }
        }
        return found;
    }
}
