package dev.shm.core.segment;

import static dev.shm.core.testing.ChildSupport.say;

import dev.shm.core.ShmException;
import dev.shm.core.lane.Lane;
import dev.shm.core.lane.LaneDescriptor;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.memory.MemfdBuffer;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.pool.SlotPoolDescriptor;
import dev.shm.core.ring.Channel;
import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.ring.Subscription;
import dev.shm.core.segment.SegmentDescriptor.Layout;
import dev.shm.core.testing.ChildSupport;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * Writes random and plausible words over a live segment (its header, peer table, counters,
 * directory, lane table and lane buffers, lease table, pool classes and slot words) while this peer
 * uses it, then goes on using every part of it for longer than the liveness timeout (pool
 * allocations and frees, lane frames of all three kinds read and decoded, memfd leases, channel
 * declarations and traffic, peer reservations, recovery rounds, the inspector that the CLI uses)
 * and closes it. A damaged entry that says a peer is attached is one whose process holds no lock, so
 * recovery runs over damaged state too. Runs in a child JVM with a small heap, so that a crash, a
 * hang (a watchdog halts an iteration that runs too long, after printing every thread's stack) or a
 * huge allocation fails the test instead of the build. Every step must succeed or fail with an
 * {@link ShmException}; so must the segment's monitor. Prints {@code FUZZED <iterations> <outcomes>}.
 * Arguments: directory, seed, iterations, life in seconds, and optionally an iteration seed to run
 * alone (from a failure's message), which prints each edit.
 */
public final class LiveSegmentFuzzChild {

    private static final long[] INTERESTING = {0, 1, -1, 7, 8, 64, 255, 256, 4095, 4096, 4097, 1L << 31,
            (1L << 31) - 1, -(1L << 31), 1L << 32, Long.MAX_VALUE, Long.MIN_VALUE, 1L << 40, 1L << 48, 0xFFFF, 0xFF_FFFF};
    private static final int[] SIZES = {1, 100, 256, 257, 1000, 2000, 4096, 4097, 20_000};
    private static final Duration LIVENESS = Duration.ofMillis(100);
    private static final long EXERCISE_NANOS = TimeUnit.MILLISECONDS.toNanos(250);
    private static final long HUNG_NANOS = TimeUnit.SECONDS.toNanos(20);

    private static volatile long iterationStarted;
    private static volatile String iterationName = "";
    private static boolean trace;

    private LiveSegmentFuzzChild() {
    }

    public static void main(String[] args) throws Exception {
        ChildSupport.begin(Duration.ofSeconds(Long.parseLong(args[3])));
        Path directory = Path.of(args[0]);
        long seed = Long.parseLong(args[1]);
        int iterations = Integer.parseInt(args[2]);
        trace = args.length > 4;
        startHangWatch();
        SplittableRandom random = new SplittableRandom(seed);
        Map<String, Integer> outcomes = new TreeMap<>();
        for (int i = 0; i < iterations; i++) {
            long iterationSeed = args.length > 4 ? Long.parseLong(args[4]) : random.nextLong();
            iterationName = "iteration " + i + " (seed " + seed + ", iteration seed " + iterationSeed + ")";
            iterationStarted = System.nanoTime();
            SegmentOptions options = TestSegments.options(directory, "live" + i).withLiveness(Duration.ofMillis(10),
                    LIVENESS);
            List<String> steps = new ArrayList<>();
            try {
                new Run(options, new SplittableRandom(iterationSeed), steps).run();
            } catch (Throwable t) {
                say("FAILED " + iterationName + " after " + steps + ": " + t);
                t.printStackTrace(System.out);
                System.out.flush();
                Runtime.getRuntime().halt(1);
            }
            for (String step : steps) {
                outcomes.merge(step, 1, Integer::sum);
            }
        }
        iterationStarted = 0;
        say("FUZZED " + iterations + " " + outcomes);
        System.exit(0);
    }

    /** Halts the child, after printing every thread's stack, when an iteration runs too long. */
    private static void startHangWatch() {
        Thread.ofPlatform().daemon().name("hang-watch").start(() -> {
            while (true) {
                long started = iterationStarted;
                if (started != 0 && System.nanoTime() - started > HUNG_NANOS) {
                    StringBuilder dump = new StringBuilder("HUNG " + iterationName + "\n");
                    Thread.getAllStackTraces().forEach((thread, stack) -> {
                        dump.append(thread).append('\n');
                        for (StackTraceElement e : stack) {
                            dump.append("    at ").append(e).append('\n');
                        }
                    });
                    System.out.println(dump);
                    System.out.flush();
                    Runtime.getRuntime().halt(2);
                }
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
    }

    private interface Step {
        void run() throws Exception;
    }

    /** One iteration: a segment, its traffic, the damage, more traffic, the close. */
    private static final class Run {
        private final SegmentOptions options;
        private final SplittableRandom random;
        private final List<String> steps;
        private final Layout layout;
        private final List<Long> held = new ArrayList<>();
        private final List<MemfdBuffer> written = new ArrayList<>();
        private Segment segment;
        private int service = -1;
        private LaneTable.LanePair pair;
        private Channel channel;
        private Subscription subscription;

        Run(SegmentOptions options, SplittableRandom random, List<String> steps) {
            this.options = options;
            this.random = random;
            this.steps = steps;
            this.layout = Layout.of(options);
        }

        void run() throws Exception {
            segment = Segment.open(options, "fuzzer");
            try {
                step("service", () -> {
                    service = segment.directory().declare("svc", DirectoryDescriptor.SERVICE, new String[0],
                            new long[0], index -> new long[] {0, 0});
                    segment.directory().provide(service);
                });
                step("pair", this::openPair);
                step("channel", () -> {
                    channel = Channel.declare(segment, "orders", ChannelOptions.defaults().withCapacity(16)
                            .withSlotSize(128).withMaxGroups(2).withSendTimeout(Duration.ofMillis(5)));
                    subscription = channel.subscribe("billing", true);
                });
                int before = random.nextInt(0, 24);
                for (int m = 0; m < before; m++) {
                    act(random.nextInt(8));
                }
                int edits = random.nextInt(1, 6);
                for (int e = 0; e < edits; e++) {
                    damage();
                }
                long until = System.nanoTime() + EXERCISE_NANOS;
                while (System.nanoTime() - until < 0) {
                    act(random.nextInt(20));
                }
            } finally {
                for (Long ref : held) {
                    step("free", () -> segment.slotPool().free(ref));
                }
                if (pair != null) {
                    step("unpair", () -> segment.lanes().close(pair));
                }
                if (subscription != null) {
                    step("unsubscribe", subscription::close);
                }
                if (channel != null) {
                    step("unchannel", channel::close);
                }
                for (MemfdBuffer buffer : written) {
                    buffer.close();
                }
                RuntimeException failure = segment.monitorFailure();
                step("detach", segment::close);
                if (failure != null && !(failure instanceof ShmException)) {
                    throw new AssertionError("the segment's monitor failed", failure);
                }
            }
        }

        /** Runs a step; a {@link ShmException} is an outcome (named in the tally), anything else fails. */
        private void step(String name, Step step) throws Exception {
            try {
                step.run();
                steps.add(name);
            } catch (ShmException e) {
                steps.add(name + ":" + e.getClass().getSimpleName());
            }
        }

        private void act(int choice) throws Exception {
            SlotPool pool = segment.slotPool();
            switch (choice) {
                case 0, 8 -> step("allocate", () -> {
                    long ref = pool.allocate(SIZES[random.nextInt(SIZES.length)]);
                    if (ref >= 0) {
                        pool.data(ref).fill((byte) 7);
                        held.add(ref);
                    }
                    if (held.size() > 12) {
                        pool.free(held.remove(random.nextInt(held.size())));
                    }
                });
                case 1, 9 -> step("free", () -> {
                    if (!held.isEmpty()) {
                        pool.free(held.remove(random.nextInt(held.size())));
                    }
                });
                case 2, 10, 11 -> step("offer", this::offer);
                case 3, 12, 13 -> step("read", this::read);
                case 4 -> step("send", () -> {
                    if (channel != null) {
                        int length = SIZES[random.nextInt(SIZES.length)];
                        channel.send(MemorySegment.ofArray(new byte[length]), 0, length, 5, TimeUnit.MILLISECONDS);
                    }
                });
                case 5, 14 -> step("poll", () -> {
                    if (subscription != null) {
                        subscription.poll(message -> message.toByteArray(), 4);
                    }
                });
                case 6 -> step("retain", () -> {
                    if (!held.isEmpty()) {
                        long ref = held.get(random.nextInt(held.size()));
                        if (pool.retain(ref)) {
                            pool.release(ref);
                        }
                    }
                });
                case 7 -> step("stats", () -> {
                    pool.stats();
                    for (int c = 0; c < pool.classCount(); c++) {
                        pool.freeListLength(c);
                    }
                    pool.ownedBy(segment.peerId());
                    segment.peers();
                    segment.lanes().lanes();
                    segment.leases().leases();
                    segment.directory().entries();
                    segment.counters().forEach((id, type, owner, label, value) -> { });
                });
                case 15 -> step("recover", segment::recoverDeadPeers);
                case 16 -> step("inspect", () -> {
                    try (SegmentInspector inspector = SegmentInspector.open(options.path())) {
                        inspector.peers();
                        inspector.directory();
                        inspector.lanes();
                        inspector.slotPool();
                        inspector.leases();
                        inspector.isStale();
                        inspector.counters().forEach((id, type, owner, label, value) -> { });
                    }
                });
                case 17 -> step("reserve", () -> {
                    int id = segment.reservePeer();
                    segment.releaseReservedPeer(id);
                });
                case 18 -> step("grow", () -> pool.grow(random.nextInt(pool.classCount()), random.nextInt(1, 9)));
                default -> step("declare", () -> {
                    Channel.declare(segment, "orders", ChannelOptions.defaults().withCapacity(16).withSlotSize(128)
                            .withMaxGroups(2)).close();
                    segment.directory().lookup("svc");
                    if (service >= 0) {
                        segment.lanes().lanesOf(service);
                    }
                });
            }
        }

        private void openPair() {
            if (service >= 0) {
                pair = segment.lanes().open(service, segment.peerId());
            }
        }

        private Lane lane() {
            return random.nextBoolean() ? pair.toService() : pair.toClient();
        }

        /** A frame of one of the three kinds into either direction of the pair; what is not sent goes back. */
        private void offer() {
            if (pair == null) {
                openPair();
                return;
            }
            Lane lane = lane();
            int kind = random.nextInt(3);
            int rc;
            if (kind == 0) {
                int length = random.nextInt(0, lane.maxInlineLength() + 1);
                rc = lane.offerInline(MemorySegment.ofArray(new byte[length]), 0, length);
            } else if (kind == 1) {
                SlotPool pool = segment.slotPool();
                long length = random.nextInt(1, 4097);
                long ref = pool.allocate(length);
                if (ref < 0) {
                    return;
                }
                rc = lane.offerSlot(ref, length);
                if (rc != Lane.OK) {
                    pool.free(ref);
                }
            } else {
                int length = random.nextInt(1, 20_000);
                LeaseTable.Leased leased = segment.leases().registerCopy("fuzz", MemorySegment.ofArray(new byte[length]),
                        0, length, null, 0);
                if (leased == null) {
                    return;
                }
                rc = lane.offerMemfd(leased.lease().index(), leased.lease().generation(), 0, length);
                if (rc == Lane.OK) {
                    written.add(leased.buffer());
                } else {
                    segment.leases().release(leased.lease());
                    leased.buffer().close();
                }
            }
            if (rc == Lane.RESET) {
                segment.lanes().close(pair);
                pair = null;
            }
        }

        /** Reads frames from either direction, decoding references as a gateway does: untrusted. */
        private void read() {
            if (pair == null) {
                openPair();
                return;
            }
            int rc = lane().poll(this::decode, random.nextInt(1, 5));
            if (rc == Lane.RESET) {
                segment.lanes().close(pair);
                pair = null;
            }
        }

        private void decode(short type, MemorySegment payload) {
            payload.toArray(ValueLayout.JAVA_BYTE);
            int me = segment.peerId();
            if (type == LaneDescriptor.SLOT_REF) {
                SlotPool pool = segment.slotPool();
                long ref = Lane.slotRef(payload);
                long length = Lane.slotLength(payload);
                long capacity = pool.capacityOf(ref);
                if (capacity >= 0 && length >= 0 && length <= capacity && pool.transfer(ref, me, me)) {
                    try {
                        pool.data(ref).asSlice(0, length).toArray(ValueLayout.JAVA_BYTE);
                    } finally {
                        pool.free(ref);
                    }
                }
            } else if (type == LaneDescriptor.MEMFD_REF) {
                LeaseTable leases = segment.leases();
                LeaseTable.Lease lease = leases.lookup(Lane.memfdLease(payload), Lane.memfdGeneration(payload));
                if (lease == null || lease.owner() != me) {
                    return;
                }
                long offset = Lane.memfdOffset(payload);
                long length = Lane.memfdLength(payload);
                try {
                    if (offset >= 0 && length > 0 && offset <= lease.size() && length <= lease.size() - offset
                            && length < (64 << 20)) {
                        MemfdBuffer buffer = leases.open(lease, offset + length);
                        if (buffer != null) {
                            try (buffer) {
                                buffer.slice(offset, length).toArray(ValueLayout.JAVA_BYTE);
                            }
                        }
                    }
                } finally {
                    leases.release(lease);
                }
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
                if (trace) {
                    say("DAMAGE at " + at + ": 0x" + Long.toHexString(old) + " -> 0x" + Long.toHexString(value));
                }
                memory.set(ValueLayout.JAVA_LONG, at, value);
            }
        }

        private long target(MemorySegment memory) {
            int part = random.nextInt(13);
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
                default -> slotWord(memory);
            };
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
