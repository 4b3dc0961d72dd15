package dev.shm.core.segment;

import static dev.shm.core.testing.ChildSupport.say;

import dev.shm.core.ShmException;
import dev.shm.core.lane.LaneDescriptor;
import dev.shm.core.pool.SlotPoolDescriptor;
import dev.shm.core.segment.SegmentDescriptor.Layout;
import dev.shm.core.testing.ChildJvm;
import dev.shm.core.testing.Fuzzer;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Writes random and plausible words over a live segment (its header, peer table, counters,
 * directory, lane table and lane buffers, lease table, pool classes and slot words, and the ring of
 * the channel that both processes use) while this peer and a partner process
 * ({@link LiveSegmentPartnerChild}) use it, then both go on using every part of it for longer than
 * the liveness timeout ({@link SegmentUser}: pool allocations and frees, lane frames of all three
 * kinds between them, read and decoded, memfd leases, channel declarations and traffic, peer
 * reservations, recovery rounds, the inspector that the CLI uses); the partner detaches, then this
 * peer. A damaged entry that says a peer is attached is one whose process holds no lock, so
 * recovery runs over damaged state too. Runs in a child JVM with a small heap, so that a crash, a
 * hang (a watchdog halts an iteration that runs too long, after printing every thread's stack) or a
 * huge allocation fails the test instead of the build. Every step must succeed or fail with an
 * {@link ShmException}; so must the segment's monitor. Prints {@code FUZZED <iterations> <outcomes>}.
 * Arguments as {@link Fuzzer} gives them: directory, seed, iterations, life in seconds, and
 * optionally an iteration seed to run alone (from a failure's message), which prints each edit.
 */
public final class LiveSegmentFuzzChild {

    private static final long[] INTERESTING = {0, 1, -1, 7, 8, 64, 255, 256, 4095, 4096, 4097, 1L << 31,
            (1L << 31) - 1, -(1L << 31), 1L << 32, Long.MAX_VALUE, Long.MIN_VALUE, 1L << 40, 1L << 48, 0xFFFF, 0xFF_FFFF};
    private static final Duration LIVENESS = Duration.ofMillis(100);
    private static final long EXERCISE_NANOS = TimeUnit.MILLISECONDS.toNanos(250);
    private static final Duration HUNG = Duration.ofSeconds(20);
    private static final Duration PARTNER_PATIENCE = Duration.ofSeconds(18);

    private static String life;
    private static ChildJvm partner;

    private LiveSegmentFuzzChild() {
    }

    public static void main(String[] args) {
        Path directory = Path.of(args[0]);
        life = args[3];
        partner = startPartner();
        Map<String, Integer> outcomes = Fuzzer.run(args, HUNG,
                (i, random, steps) -> new Run(options(directory, "live" + i), random, steps).run());
        partner.close();
        say("FUZZED " + args[2] + " " + outcomes);
        System.exit(0);
    }

    private static ChildJvm startPartner() {
        return ChildJvm.builder(LiveSegmentPartnerChild.class)
                .jvmArgs("-Xmx96m", "-XX:+ExitOnOutOfMemoryError", "-Dshm.lockPatienceMillis=2000")
                .args(life)
                .start();
    }

    /** The options of an iteration's segment, for the fuzzer and its partner alike. */
    static SegmentOptions options(Path directory, String name) {
        return TestSegments.options(directory, name).withLiveness(Duration.ofMillis(10), LIVENESS);
    }

    /** Adds a partner's tally, {@code {name=count, ...}}, to an iteration's steps. */
    private static void merge(List<String> steps, String tally) {
        String inner = tally.replace("{", "").replace("}", "").trim();
        if (inner.isEmpty()) {
            return;
        }
        for (String entry : inner.split(", ")) {
            int eq = entry.lastIndexOf('=');
            steps.addAll(Collections.nCopies(Integer.parseInt(entry.substring(eq + 1)), entry.substring(0, eq)));
        }
    }

    /**
     * One iteration: a segment that this peer provides a service and a channel in, the partner
     * attached to it (a client of the service, a member of a group), traffic, the damage, more
     * traffic from both, the partner's detach, this peer's close. In one iteration of 6 the partner
     * is killed with SIGKILL early in the traffic instead (a new one starts for the next iteration),
     * so that its recovery runs over the damage too.
     */
    private static final class Run {
        private final SegmentOptions options;
        private final SplittableRandom random;
        private final List<String> steps;
        private final Layout layout;
        private Segment segment;

        Run(SegmentOptions options, SplittableRandom random, List<String> steps) {
            this.options = options;
            this.random = random;
            this.steps = steps;
            this.layout = Layout.of(options);
        }

        void run() throws Exception {
            segment = Segment.open(options, "fuzzer");
            SegmentUser user = new SegmentUser(segment, random, steps);
            boolean attached = false;
            boolean killed = false;
            try {
                user.provide();
                user.subscribe("billing", true);
                partner.send("ATTACH " + options.directory() + " " + options.name() + " " + segment.peerId() + " "
                        + random.nextLong());
                attached = true;
                partner.awaitLine("ATTACHED", PARTNER_PATIENCE);
                int before = random.nextInt(0, 24);
                for (int m = 0; m < before; m++) {
                    user.act(random.nextInt(8));
                }
                int edits = random.nextInt(1, 6);
                for (int e = 0; e < edits; e++) {
                    damage();
                }
                long until = System.nanoTime() + EXERCISE_NANOS;
                long killAt = random.nextInt(6) == 0 ? until - EXERCISE_NANOS + random.nextLong(EXERCISE_NANOS / 3)
                        : Long.MAX_VALUE;
                while (System.nanoTime() - until < 0) {
                    if (!killed && killAt != Long.MAX_VALUE && System.nanoTime() - killAt >= 0) {
                        partner.kill(); // mid-use: recovery of what it held runs from here, over the damage
                        killed = true;
                        steps.add("kill");
                    }
                    if (random.nextInt(1000) == 0) { // now and then more damage, while both use the segment
                        damage();
                    }
                    user.act(random.nextInt(20));
                }
            } finally {
                if (killed) {
                    partner.close();
                    partner = startPartner();
                } else if (attached) {
                    partner.send("DETACH");
                    merge(steps, partner.awaitLine("DETACHED", PARTNER_PATIENCE));
                }
                user.close();
            }
        }

        // ------------------------------------------------------------ damage

        /** One edit of the live file, through a mapping of its own, at a word of a part chosen at random. */
        private void damage() throws Exception {
            try (Arena arena = Arena.ofConfined();
                    FileChannel file = FileChannel.open(options.path(), StandardOpenOption.READ,
                            StandardOpenOption.WRITE)) {
                MemorySegment memory = file.map(FileChannel.MapMode.READ_WRITE, 0, file.size(), arena);
                long at = target(memory) & ~7L;
                if (at < 0 || at + 8 > memory.byteSize()) {
                    return;
                }
                long old = memory.get(ValueLayout.JAVA_LONG, at);
                long value = value(old);
                if (Fuzzer.replaying()) {
                    say("DAMAGE at " + at + ": 0x" + Long.toHexString(old) + " -> 0x" + Long.toHexString(value));
                }
                memory.set(ValueLayout.JAVA_LONG, at, value);
            }
        }

        private long target(MemorySegment memory) {
            int part = random.nextInt(15);
            return switch (part) {
                case 0 -> random.nextBoolean() ? random.nextInt(0, 256)
                        : pick(SegmentDescriptor.CURRENT_SIZE_OFFSET, SegmentDescriptor.HOST_GOODBYE_OFFSET,
                                SegmentDescriptor.HEARTBEAT_INTERVAL_OFFSET, SegmentDescriptor.LIVENESS_TIMEOUT_OFFSET);
                case 1, 2 -> layout.peerTableOffset() + (long) random.nextInt(layout.maxPeers()) * PeerDescriptor.LENGTH
                        + pick(PeerDescriptor.STATE_OFFSET, PeerDescriptor.PID_OFFSET, PeerDescriptor.START_TIME_OFFSET,
                                PeerDescriptor.HEARTBEAT_OFFSET, PeerDescriptor.PID_NAMESPACE_OFFSET,
                                PeerDescriptor.NAME_OFFSET);
                case 3 -> layout.countersOffset() + (long) random.nextInt(8) * SegmentDescriptor.COUNTER_RECORD_LENGTH
                        + 8L * random.nextInt(SegmentDescriptor.COUNTER_RECORD_LENGTH / 8);
                case 4 -> layout.directoryOffset() + (long) random.nextInt(3) * DirectoryDescriptor.LENGTH
                        + pick(DirectoryDescriptor.STATE_OFFSET, DirectoryDescriptor.TYPE_OFFSET,
                                DirectoryDescriptor.PARAM_COUNT_OFFSET, DirectoryDescriptor.PARAMS_OFFSET,
                                DirectoryDescriptor.STRUCTURE_OFFSET_OFFSET, DirectoryDescriptor.STRUCTURE_LENGTH_OFFSET,
                                DirectoryDescriptor.PROVIDER_OFFSET, DirectoryDescriptor.DOORBELL_OFFSET);
                case 5 -> layout.laneTableOffset() + (long) random.nextInt(2) * LaneDescriptor.ENTRY_LENGTH
                        + pick(LaneDescriptor.STATE_OFFSET, LaneDescriptor.SERVICE_OFFSET,
                                LaneDescriptor.BUFFER_OFFSET_OFFSET);
                case 6, 7 -> laneWord(memory);
                case 8 -> layout.leaseTableOffset() + (long) random.nextInt(3) * LeaseDescriptor.LENGTH
                        + pick(LeaseDescriptor.STATE_OFFSET, LeaseDescriptor.PID_OFFSET, LeaseDescriptor.FD_OFFSET,
                                LeaseDescriptor.SIZE_OFFSET, LeaseDescriptor.START_TIME_OFFSET);
                case 9 -> classEntry(random.nextInt(layout.slotClassCount()))
                        + pick(SlotPoolDescriptor.SLOT_SIZE_OFFSET, SlotPoolDescriptor.EXTENT_COUNT_OFFSET,
                                SlotPoolDescriptor.TOTAL_SLOTS_OFFSET, SlotPoolDescriptor.GROWTH_RECORD_OFFSET,
                                SlotPoolDescriptor.HEAD_OFFSET, SlotPoolDescriptor.HEAD_OFFSET,
                                SlotPoolDescriptor.RECLAIMED_OFFSET, SlotPoolDescriptor.EXTENTS_OFFSET,
                                SlotPoolDescriptor.EXTENTS_OFFSET + 8);
                case 13, 14 -> ringWord(memory);
                default -> slotWord(memory);
            };
        }

        /** A word of the channel's ring (both processes use it: one group's member, or two groups), or -1. */
        private long ringWord(MemorySegment memory) {
            for (int i = 0; i < 3; i++) {
                long entry = layout.directoryOffset() + (long) i * DirectoryDescriptor.LENGTH;
                if (memory.get(ValueLayout.JAVA_INT, entry + DirectoryDescriptor.TYPE_OFFSET) == DirectoryDescriptor.CHANNEL) {
                    long offset = memory.get(ValueLayout.JAVA_LONG, entry + DirectoryDescriptor.STRUCTURE_OFFSET_OFFSET);
                    long length = memory.get(ValueLayout.JAVA_LONG, entry + DirectoryDescriptor.STRUCTURE_LENGTH_OFFSET);
                    return offset < layout.extentsOffset() || length < 8 || length > (1 << 24) ? -1
                            : offset + 8 * random.nextLong(length / 8);
                }
            }
            return -1;
        }

        private long classEntry(int c) {
            return layout.poolOffset() + (long) c * SlotPoolDescriptor.CLASS_ENTRY_LENGTH;
        }

        /** A control word or a frame word of a lane buffer that the table names, or -1. */
        private long laneWord(MemorySegment memory) {
            long entry = layout.laneTableOffset() + (long) random.nextInt(2) * LaneDescriptor.ENTRY_LENGTH;
            long buffer = memory.get(ValueLayout.JAVA_LONG, entry + LaneDescriptor.BUFFER_OFFSET_OFFSET);
            int capacity = memory.get(ValueLayout.JAVA_INT, entry + LaneDescriptor.CAPACITY_OFFSET);
            if (buffer < layout.extentsOffset() || capacity <= 0 || capacity > (1 << 20)) {
                return -1;
            }
            long direction = buffer + (random.nextBoolean() ? 0 : LaneDescriptor.directionLength(capacity));
            return direction + (random.nextInt(3) == 0 ? LaneDescriptor.DATA_OFFSET + 8L * random.nextInt(64)
                    : pick(LaneDescriptor.WRITE_OFFSET, LaneDescriptor.LAST_OFFSET, LaneDescriptor.WRITING_OFFSET,
                            LaneDescriptor.READ_OFFSET, LaneDescriptor.READING_OFFSET, LaneDescriptor.DOORBELL_OFFSET));
        }

        /** A slot's meta or next word in the first extent of a class, or -1. */
        private long slotWord(MemorySegment memory) {
            long extent = classEntry(random.nextInt(layout.slotClassCount())) + SlotPoolDescriptor.EXTENTS_OFFSET;
            long offset = memory.get(ValueLayout.JAVA_LONG, extent + SlotPoolDescriptor.EXTENT_OFFSET_OFFSET);
            int count = memory.get(ValueLayout.JAVA_INT, extent + SlotPoolDescriptor.EXTENT_COUNT_FIELD_OFFSET);
            if (offset < layout.extentsOffset() || count <= 0 || count > (1 << 20)) {
                return -1;
            }
            return offset + (long) random.nextInt(Math.min(count, 64)) * SlotPoolDescriptor.META_LENGTH
                    + pick(SlotPoolDescriptor.META_WORD_OFFSET, SlotPoolDescriptor.NEXT_OFFSET);
        }

        /**
         * A new value for a word: random, interesting, or the old word with one field changed as a
         * protocol step could have (a state, a peer or owner, an epoch or generation, an index or position).
         */
        private long value(long old) {
            int me = segment.peerId();
            int peer = pick(me, me, 0, 1, 7, 0xFF);
            return switch (random.nextInt(9)) {
                case 0 -> old ^ ((long) random.nextInt(1, 256) << (8 * random.nextInt(8))); // one byte's bits
                case 1 -> random.nextLong();
                case 2 -> INTERESTING[random.nextInt(INTERESTING.length)];
                case 3 -> (old & ~0xFFL) | random.nextInt(6); // a state in the low byte
                case 4 -> (old & ~0xFF00L) | ((long) peer << 8); // a peer in the second byte (slot owner, lane client)
                case 5 -> (old & ~0xFFFF_0000L) | ((long) (peer == 0xFF ? 0xFFFF : peer) << 16); // actor, owner
                case 6 -> (old & ~0xFF00_0000L) | ((long) peer << 24); // pool head's peer, lane releaser
                case 7 -> old + ((long) pick(-1, 1, 2) << 32); // epoch, generation
                default -> old + pick(-1, 1, 8, -8, 64, 4096); // index, position, length
            };
        }

        private int pick(int... values) {
            return values[random.nextInt(values.length)];
        }
    }
}
