package dev.shm.core.segment;

import static dev.shm.core.testing.ChildSupport.await;
import static dev.shm.core.testing.ChildSupport.say;

import dev.shm.core.internal.Processes;
import dev.shm.core.lane.Lane;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.memory.MemfdBuffer;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.testing.ChildSupport;
import dev.shm.core.lane.LaneDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The other processes of the segment's cross-process tests; each scenario is a subcommand.
 */
public final class SegmentChild {

    private SegmentChild() {
    }

    public static void main(String[] args) throws Exception {
        ChildSupport.begin(Duration.ofSeconds(120));
        SegmentOptions options = TestSegments.options(Path.of(args[1]), args[2]);
        try {
            switch (args[0]) {
                case "attach-detach" -> attachDetach(options, Integer.parseInt(args[3]));
                case "create-race" -> createRace(options);
                case "hold" -> hold(options, Long.parseLong(args[3]));
                case "stall" -> stall(options);
                case "hold-directory-lock" -> holdDirectoryLock(options);
                case "churn" -> churn(options, Integer.parseInt(args[3]), Integer.parseInt(args[4]));
                case "grow" -> grow(options, Integer.parseInt(args[3]));
                case "squat" -> squat(options);
                case "serve" -> serve(options);
                case "share" -> share(options);
                case "reserve-slow" -> reserve(options.withLiveness(Duration.ofMinutes(1), Duration.ofMinutes(2)));
                default -> throw new IllegalArgumentException("unknown scenario " + args[0]);
            }
        } catch (Throwable t) {
            say("FAILED " + t);
            t.printStackTrace(System.out);
            System.exit(1);
        }
        System.exit(0);
    }

    /** Attaches, reserves an entry for a child it never spawns, reports both ids and waits to be killed. */
    private static void reserve(SegmentOptions options) {
        Segment segment = Segment.open(options, "reserver");
        say("RESERVED " + segment.peerId() + " " + segment.reservePeer());
        await("EXIT");
    }

    /** Attaches and detaches cleanly, again and again, using a slot each time. */
    private static void attachDetach(SegmentOptions options, int rounds) {
        say("READY");
        await("GO");
        for (int round = 0; round < rounds; round++) {
            try (Segment segment = Segment.open(options, "churner-" + Processes.pid())) {
                long ref = segment.slotPool().allocate(100);
                if (ref < 0 || !segment.slotPool().free(ref)) {
                    throw new AssertionError("slot round trip failed: " + ref);
                }
            }
        }
        say("DONE");
    }

    /** Waits for the starting shot, then creates-or-attaches, and reports what it found. */
    private static void createRace(SegmentOptions options) throws Exception {
        say("READY");
        await("GO");
        try (Segment segment = Segment.open(options, "racer")) {
            say("ATTACHED " + segment.isCreator() + " " + Files.getAttribute(options.path(), "unix:ino") + " "
                    + segment.peerId());
            await("EXIT");
        }
    }

    /**
     * Attaches and takes resources of every kind: slots it owns, slots in flight in a lane to the
     * service "sink" that the parent provides, inline frames, a memfd lease. Then churns them until
     * it is killed.
     */
    private static void hold(SegmentOptions options, long seed) {
        say("READY");
        await("GO");
        Segment segment = Segment.open(options, "holder");
        SlotPool pool = segment.slotPool();
        int service = segment.directory().lookup("sink").orElseThrow();
        int provider = segment.directory().entry(service).provider();
        LaneTable.LanePair pair = segment.lanes().open(service, provider);
        List<Long> owned = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            owned.add(pool.allocate(100));
            owned.add(pool.allocate(1000));
        }
        for (int i = 0; i < 5; i++) {
            long ref = pool.allocate(100);
            check(pair.toService().offerSlot(ref, 100));
            check(pair.toService().offerInline(MemorySegment.ofArray(new byte[32]), 0, 32));
        }
        MemfdBuffer buffer = MemfdBuffer.create("holder", 4096);
        segment.leases().register(buffer);
        say("HOLDING " + segment.peerId() + " " + pool.ownedBy(segment.peerId()));
        SplittableRandom random = new SplittableRandom(seed);
        while (true) { // killed from outside at a random moment
            if (random.nextBoolean() && owned.size() < 40) {
                long ref = pool.allocate(random.nextInt(1, 4000));
                if (ref >= 0) {
                    owned.add(ref);
                }
            } else if (!owned.isEmpty()) {
                long ref = owned.remove(random.nextInt(owned.size()));
                if (random.nextInt(4) == 0 && pair.toService().offerSlot(ref, 8) == Lane.OK) {
                    continue; // in flight now; the parent never reads it
                }
                if (!pool.free(ref)) {
                    throw new AssertionError("own slot refused");
                }
            }
        }
    }

    private static void check(int outcome) {
        if (outcome != Lane.OK) {
            throw new AssertionError("lane outcome " + outcome);
        }
    }

    /** Takes the segment's directory lock and keeps it until told to let go (the parent stops this process meanwhile). */
    private static void holdDirectoryLock(SegmentOptions options) {
        try (Segment segment = Segment.open(options, "locker")) {
            segment.withDirectoryLock(() -> {
                say("LOCKED");
                await("RELEASE");
                return null;
            });
            say("RELEASED");
            await("EXIT");
        }
    }

    /** Attaches, takes slots, and checks them again after the parent stopped and continued it. */
    private static void stall(SegmentOptions options) {
        try (Segment segment = Segment.open(options, "staller")) {
            SlotPool pool = segment.slotPool();
            List<Long> refs = new ArrayList<>();
            for (int i = 0; i < 5; i++) {
                refs.add(pool.allocate(100));
            }
            say("READY " + segment.peerId());
            await("CHECK");
            for (long ref : refs) {
                if (!pool.isCurrent(ref) || pool.ownerOf(ref) != segment.peerId() || !pool.free(ref)) {
                    throw new AssertionError("slot " + Long.toHexString(ref) + " was taken while stopped");
                }
            }
            say("INTACT");
        }
    }

    /**
     * Allocates and frees from several threads, marking each slot with its owner and checking the
     * mark before freeing: a slot handed out twice shows as a changed mark.
     */
    private static void churn(SegmentOptions options, int threads, int iterations) throws InterruptedException {
        try (Segment segment = Segment.open(options, "churn-" + Processes.pid())) {
            say("READY");
            await("GO");
            AtomicLong violations = new AtomicLong();
            AtomicLong allocations = new AtomicLong();
            List<Thread> workers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int thread = t;
                workers.add(Thread.ofPlatform().start(() -> churnLoop(segment.slotPool(), thread, iterations,
                        violations, allocations)));
            }
            for (Thread worker : workers) {
                worker.join();
            }
            say("DONE " + violations.get() + " " + allocations.get());
            await("EXIT");
        }
    }

    static void churnLoop(SlotPool pool, int thread, int iterations, AtomicLong violations, AtomicLong allocations) {
        SplittableRandom random = new SplittableRandom(thread * 31L + Processes.pid());
        long[] held = new long[8];
        long[] marks = new long[8];
        int count = 0;
        for (int i = 0; i < iterations; i++) {
            if (count < held.length && (count == 0 || random.nextBoolean())) {
                long ref = pool.allocate(random.nextBoolean() ? 100 : 3000);
                if (ref < 0) {
                    continue;
                }
                long mark = (Processes.pid() << 32) | ((long) thread << 24) | (i & 0xFFFFFF);
                pool.data(ref).set(ValueLayout.JAVA_LONG, 0, mark);
                held[count] = ref;
                marks[count] = mark;
                count++;
                allocations.incrementAndGet();
            } else {
                int k = random.nextInt(count);
                long ref = held[k];
                if (pool.data(ref).get(ValueLayout.JAVA_LONG, 0) != marks[k] || !pool.free(ref)) {
                    violations.incrementAndGet();
                }
                held[k] = held[count - 1];
                marks[k] = marks[count - 1];
                count--;
            }
        }
        for (int k = 0; k < count; k++) {
            if (pool.data(held[k]).get(ValueLayout.JAVA_LONG, 0) != marks[k] || !pool.free(held[k])) {
                violations.incrementAndGet();
            }
        }
    }

    /** Exhausts the small class, which then grows by an extent, and leaves the new slots free. */
    private static void grow(SegmentOptions options, int count) {
        try (Segment segment = Segment.open(options, "grower")) {
            SlotPool pool = segment.slotPool();
            long total = pool.grow(0, count);
            say("GREW " + total + " " + pool.stats().getFirst().extents());
            await("EXIT");
        }
    }

    /** Attaches, declares a channel and takes a slot, then waits to be killed: leaves a stale segment. */
    private static void squat(SegmentOptions options) {
        Segment segment = Segment.open(options, "squatter");
        segment.directory().declare("kept", DirectoryDescriptor.CHANNEL, new String[] {"capacity"}, new long[] {64},
                index -> new long[] {0, 0});
        long ref = segment.slotPool().allocate(100);
        say("READY " + segment.peerId() + " " + ref);
        await("EXIT");
    }

    /**
     * Provides the service "echo": answers each request frame with an inline reply that says what it
     * found — the inline text, the long in a slot it claims, or the long in a leased memfd — or that
     * the reference was stale. Stops serving at the request "bye", and leaves at "EXIT".
     */
    private static void serve(SegmentOptions options) {
        try (Segment segment = Segment.open(options, "echo-server")) {
            int service = segment.directory().declare("echo", DirectoryDescriptor.SERVICE, new String[0], new long[0],
                    index -> new long[] {0, 0});
            segment.directory().provide(service);
            say("READY");
            SlotPool pool = segment.slotPool();
            boolean[] bye = {false};
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (!bye[0]) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("no 'bye' within 60 s");
                }
                for (LaneTable.LanePair pair : segment.lanes().lanesOf(service)) {
                    pair.toService().poll((type, payload) -> {
                        String reply = switch (type) {
                            case LaneDescriptor.INLINE -> {
                                String text = new String(payload.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
                                bye[0] |= text.equals("bye");
                                yield "inline:" + text;
                            }
                            case LaneDescriptor.SLOT_REF -> {
                                long ref = Lane.slotRef(payload);
                                if (!pool.transfer(ref, segment.peerId())) {
                                    yield "stale-slot";
                                }
                                long value = pool.data(ref).get(ValueLayout.JAVA_LONG, 0);
                                pool.free(ref);
                                yield "slot:" + value + "/" + Lane.slotLength(payload);
                            }
                            case LaneDescriptor.MEMFD_REF -> {
                                var lease = segment.leases().lookup(Lane.memfdLease(payload), Lane.memfdGeneration(payload));
                                if (lease == null) {
                                    yield "stale-lease";
                                }
                                try (MemfdBuffer buffer = MemfdBuffer.open(lease.pid(), lease.fd(), lease.size())) {
                                    yield "memfd:" + buffer.getLong(Lane.memfdOffset(payload)) + "/"
                                            + Lane.memfdLength(payload);
                                }
                            }
                            default -> "unknown:" + type;
                        };
                        byte[] bytes = reply.getBytes(StandardCharsets.UTF_8);
                        while (pair.toClient().offerInline(MemorySegment.ofArray(bytes), 0, bytes.length) == Lane.FULL) {
                            Thread.onSpinWait();
                        }
                    }, 16);
                }
                Thread.onSpinWait();
            }
            say("SERVED");
            await("EXIT"); // leaving resets the lanes: the client reads its replies first
        }
    }

    /** Allocates a slot, writes 77 into it, shares it with two more references, and waits to be killed. */
    private static void share(SegmentOptions options) {
        Segment segment = Segment.open(options, "sharer");
        SlotPool pool = segment.slotPool();
        long ref = pool.allocate(64);
        pool.data(ref).set(ValueLayout.JAVA_LONG, 0, 77);
        check(pool.retain(ref) && pool.retain(ref) ? Lane.OK : Lane.FULL);
        long other = pool.allocate(64); // an unshared one, freed by recovery
        say("SHARED " + ref + " " + other);
        await("EXIT");
    }
}
