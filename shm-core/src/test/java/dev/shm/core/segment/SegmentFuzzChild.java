package dev.shm.core.segment;

import static dev.shm.core.testing.ChildSupport.say;

import dev.shm.core.CorruptionException;
import dev.shm.core.memory.MappingException;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.segment.SegmentDescriptor.Layout;
import dev.shm.core.testing.ChildSupport;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * Writes random bytes over segment files and attaches to each, as a peer and as an inspector; runs
 * in a child JVM with a small heap, so that a crash, a hang or a huge allocation fails the test
 * instead of the build. Every attach must succeed, or fail with one of the clear exceptions.
 * Prints {@code FUZZED <attaches> <outcomes>}.
 */
public final class SegmentFuzzChild {

    private static final long[] INTERESTING = {0, 1, -1, 7, 4095, 4096, 4097, 1L << 31, (1L << 31) - 1, -(1L << 31),
            1L << 32, Long.MAX_VALUE, Long.MIN_VALUE, 1L << 40, 64, 254, 255, 256};

    private SegmentFuzzChild() {
    }

    public static void main(String[] args) throws IOException {
        ChildSupport.begin(Duration.ofSeconds(150));
        Path directory = Path.of(args[0]);
        long seed = Long.parseLong(args[1]);
        int attaches = Integer.parseInt(args[2]);
        SegmentOptions options = TestSegments.options(directory, "victim").withUnlinkOnLastDetach(false);
        byte[] template = template(options);
        Layout layout = Layout.of(options);
        long[][] parts = {
                {0, 256},
                {layout.peerTableOffset(), layout.countersOffset()},
                {layout.countersOffset(), layout.countersOffset() + 4096},
                {layout.directoryOffset(), layout.laneTableOffset()},
                {layout.laneTableOffset(), layout.leaseTableOffset()},
                {layout.leaseTableOffset(), layout.poolOffset()},
                {layout.poolOffset(), layout.poolOffset() + 2L * SegmentDescriptor.SLOT_CLASS_ENTRY_LENGTH},
                {layout.extentsOffset(), template.length},
        };
        SplittableRandom random = new SplittableRandom(seed);
        Map<String, Integer> outcomes = new TreeMap<>();
        for (int i = 0; i < attaches; i++) {
            byte[] bytes = mutate(template, parts, random);
            Files.write(options.path(), bytes);
            String outcome;
            try {
                outcome = attachAndUse(options);
            } catch (SegmentException e) {
                outcome = e.reason().name();
            } catch (CorruptionException e) {
                outcome = "CorruptionException";
            } catch (MappingException e) {
                outcome = "MappingException." + e.reason();
            } catch (Throwable t) {
                say("FAILED attach " + i + " (seed " + seed + "): " + t);
                t.printStackTrace(System.out);
                Path kept = directory.resolve("failing-" + i + ".bin");
                Files.write(kept, bytes);
                say("FAILED input kept in " + kept);
                System.exit(1);
                return;
            }
            outcomes.merge(outcome, 1, Integer::sum);
            Files.deleteIfExists(options.path());
        }
        say("FUZZED " + attaches + " " + outcomes);
        System.exit(0);
    }

    private static byte[] template(SegmentOptions options) throws IOException {
        try (Segment segment = Segment.open(options, "template")) {
            int service = segment.directory().declare("svc", DirectoryDescriptor.SERVICE, new String[0], new long[0],
                    index -> new long[] {0, 0});
            segment.directory().provide(service);
            segment.lanes().open(service, segment.peerId());
            segment.slotPool().allocate(100);
            segment.slotPool().allocate(3000);
        }
        byte[] bytes = Files.readAllBytes(options.path());
        Files.delete(options.path());
        return bytes;
    }

    private static byte[] mutate(byte[] template, long[][] parts, SplittableRandom random) {
        int kind = random.nextInt(10);
        if (kind == 0) { // a random file
            byte[] bytes = new byte[random.nextInt(0, 3 * 4096)];
            random.nextBytes(bytes);
            return bytes;
        }
        if (kind == 1) { // truncated
            return Arrays.copyOf(template, random.nextInt(0, template.length));
        }
        byte[] bytes = template.clone();
        int edits = random.nextInt(1, 9);
        for (int e = 0; e < edits; e++) {
            long[] part = kind < 4 ? parts[0] : parts[random.nextInt(parts.length)];
            int at = (int) random.nextLong(part[0], part[1]);
            if (random.nextBoolean()) {
                at &= ~7;
                long value = random.nextBoolean() ? INTERESTING[random.nextInt(INTERESTING.length)] : random.nextLong();
                for (int b = 0; b < 8 && at + b < bytes.length; b++) {
                    bytes[at + b] = (byte) (value >>> (8 * b));
                }
            } else {
                bytes[at] = (byte) random.nextInt(256);
            }
        }
        return bytes;
    }

    /** Attaches as a peer and uses every part; then inspects the file as the CLI does. */
    private static String attachAndUse(SegmentOptions options) {
        SegmentUser.inspect(options.path());
        try (Segment segment = Segment.open(options, "fuzzer")) {
            segment.recoverDeadPeers();
            segment.peers();
            segment.directory().entries();
            segment.directory().lookup("svc");
            segment.lanes().lanes();
            segment.leases().leases();
            SlotPool pool = segment.slotPool();
            pool.stats();
            for (int c = 0; c < pool.classCount(); c++) {
                pool.freeListLength(c);
                long ref = pool.allocateFromClass(c);
                if (ref >= 0) {
                    pool.data(ref).fill((byte) 1);
                    pool.free(ref);
                }
            }
            if (segment.monitorFailure() != null) {
                throw segment.monitorFailure();
            }
            return "attached";
        }
    }
}
