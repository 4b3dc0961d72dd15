package dev.shm.core.ring;

import static dev.shm.core.ring.RingDescriptor.*;
import static dev.shm.core.testing.ChildSupport.say;

import dev.shm.core.ShmException;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentOptions;
import dev.shm.core.segment.TestSegments;
import dev.shm.core.testing.Fuzzer;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Writes random and plausible words over a live ring (its descriptor and cursor, group table, slot
 * headers and bodies, claim words and release entries) between sends and polls, then goes on
 * sending, polling, joining and declaring for longer than the liveness timeout, and closes. Runs in
 * a child JVM with a small heap, so that a crash, a hang (a watchdog halts an iteration that runs
 * too long, after printing every thread's stack) or a huge allocation fails the test instead of the
 * build. Every step must succeed or fail with an {@link ShmException}; the segment's monitor must
 * not fail. Prints {@code FUZZED <iterations> <outcomes>}. Arguments: directory, seed, iterations,
 * life in seconds, and optionally an iteration seed to run alone (from a failure's message).
 */
public final class RingFuzzChild {

    private static final long[] INTERESTING = {0, 1, -1, 7, 15, 16, 17, 127, 128, 4095, 4096, 4097, 1L << 31,
            (1L << 31) - 1, -(1L << 31), 1L << 32, Long.MAX_VALUE, Long.MIN_VALUE, 1L << 40, 1L << 48, (1L << 48) - 1};
    private static final int CAPACITY = 16;
    private static final int SLOT_SIZE = 128;
    private static final int MAX_GROUPS = 4;
    private static final int[] SIZES = {0, 1, 20, SLOT_SIZE - SLOT_BODY_OFFSET, SLOT_SIZE - SLOT_BODY_OFFSET + 1, 200,
            256, 3000, 4096, 4097, 9000};
    private static final Duration LIVENESS = Duration.ofMillis(100);
    /** How long each iteration goes on after the damage: past the liveness timeout, so takeovers happen. */
    private static final long EXERCISE_NANOS = TimeUnit.MILLISECONDS.toNanos(250);
    private static final Duration HUNG = Duration.ofSeconds(20);

    private RingFuzzChild() {
    }

    public static void main(String[] args) {
        Path directory = Path.of(args[0]);
        Map<String, Integer> outcomes = Fuzzer.run(args, HUNG, (i, random, steps) -> run(
                TestSegments.options(directory, "fuzz" + i).withLiveness(Duration.ofMillis(10), LIVENESS), random,
                steps));
        say("FUZZED " + args[2] + " " + outcomes);
        System.exit(0);
    }

    private static void run(SegmentOptions options, SplittableRandom random, List<String> steps) throws Exception {
        boolean single = random.nextBoolean();
        SubscriptionMode mode = random.nextBoolean() ? SubscriptionMode.EXCLUSIVE : SubscriptionMode.SHARED;
        ChannelOptions channelOptions = ChannelOptions.defaults().withCapacity(CAPACITY).withSlotSize(SLOT_SIZE)
                .withMaxGroups(MAX_GROUPS).withSingleProducer(single)
                .withBackpressure(random.nextInt(4) == 0 ? Backpressure.FAIL : Backpressure.BLOCK)
                .withSendTimeout(Duration.ofMillis(20));
        try (Segment segment = Segment.open(options, "fuzzer")) {
            Channel channel = Channel.declare(segment, "orders", channelOptions);
            List<Subscription> subscriptions = new ArrayList<>();
            try {
                // Most runs have a required group; the others only optional ones, which producers may lap.
                subscriptions.add(channel.subscribe("billing", random.nextInt(4) != 0, mode));
                if (random.nextBoolean()) {
                    subscriptions.add(channel.subscribe("audit", false));
                }
                Ring ring = ChannelProcessesTest.ring(channel);
                // Some traffic before the damage: read and unread messages of every kind in the ring.
                int before = random.nextInt(0, 2 * CAPACITY);
                for (int m = 0; m < before; m++) {
                    step(steps, "send", () -> send(channel, random));
                    if (random.nextInt(3) == 0) {
                        Subscription s = subscriptions.get(random.nextInt(subscriptions.size()));
                        step(steps, "poll", () -> poll(s, random.nextInt(1, 4)));
                    }
                }
                int edits = random.nextInt(1, 6);
                for (int e = 0; e < edits; e++) {
                    damage(ring, segment.peerId(), random);
                }
                long until = System.nanoTime() + EXERCISE_NANOS;
                while (System.nanoTime() - until < 0) {
                    switch (random.nextInt(13)) {
                        case 0, 1, 2, 3 -> step(steps, "send", () -> send(channel, random));
                        case 4, 5, 6, 7, 8 -> {
                            Subscription s = subscriptions.get(random.nextInt(subscriptions.size()));
                            step(steps, "poll", () -> poll(s, random.nextInt(1, 8)));
                        }
                        case 9 -> step(steps, "stats", channel::stats);
                        case 12 -> {
                            Subscription s = subscriptions.get(random.nextInt(subscriptions.size()));
                            step(steps, "take", () -> s.take(m -> m.toByteArray(), 4, Duration.ofMillis(5)));
                        }
                        case 10 -> step(steps, "join", () -> {
                            if (subscriptions.size() < 4) {
                                subscriptions.add(channel.subscribe("late" + subscriptions.size(),
                                        random.nextBoolean(), random.nextBoolean() ? SubscriptionMode.SHARED
                                                : SubscriptionMode.EXCLUSIVE));
                            }
                        });
                        default -> step(steps, "declare", () -> Channel.declare(segment, "orders", channelOptions).close());
                    }
                }
            } finally {
                for (Subscription s : subscriptions) {
                    step(steps, "unsubscribe", s::close);
                }
                step(steps, "close", channel::close);
            }
            segment.recoverDeadPeers();
            if (segment.monitorFailure() != null) {
                throw new AssertionError("the segment's monitor failed", segment.monitorFailure());
            }
        }
    }

    private interface Step {
        void run() throws Exception;
    }

    /** Runs a step; a {@link ShmException} is an outcome (named in the tally), anything else fails. */
    private static void step(List<String> steps, String name, Step step) throws Exception {
        try {
            step.run();
            steps.add(name);
        } catch (ShmException e) {
            steps.add(name + ":" + e.getClass().getSimpleName());
        }
    }

    private static void send(Channel channel, SplittableRandom random) {
        int length = SIZES[random.nextInt(SIZES.length)];
        byte[] payload = new byte[length];
        random.nextBytes(payload);
        channel.send(MemorySegment.ofArray(payload), 0, length, 10, TimeUnit.MILLISECONDS);
    }

    /** Polls, reading every byte of every message handed out (a pool slot's or a memfd's too). */
    private static void poll(Subscription subscription, int limit) {
        subscription.poll(message -> {
            byte[] bytes = message.toByteArray();
            if (bytes.length != message.length()) {
                throw new AssertionError("a message of " + message.length() + " bytes read as " + bytes.length);
            }
        }, limit);
    }

    /** One edit of the ring's memory, in a part chosen at random, with a random or plausible value. */
    private static void damage(Ring ring, int me, SplittableRandom random) {
        MemorySegment memory = ring.memory;
        long slots = headerLength(MAX_GROUPS);
        long claims = claimsOffset(CAPACITY, SLOT_SIZE, MAX_GROUPS);
        long releases = releasesOffset(CAPACITY, SLOT_SIZE, MAX_GROUPS);
        long end = length(CAPACITY, SLOT_SIZE, MAX_GROUPS);
        long at;
        int part = random.nextInt(10);
        if (part == 0) { // descriptor, cursor, futex words
            at = random.nextLong(0, GROUPS_OFFSET);
        } else if (part <= 2) { // group table
            at = GROUPS_OFFSET + random.nextInt(MAX_GROUPS) * (long) GROUP_LENGTH
                    + (random.nextBoolean() ? random.nextInt(GROUP_LENGTH) : pick(random, GROUP_STATE_OFFSET,
                    GROUP_FLAGS_OFFSET, GROUP_START_OFFSET, GROUP_MEMBERS_OFFSET, GROUP_HOLDER_OFFSET, GROUP_DONE_OFFSET,
                    GROUP_NEXT_OFFSET));
        } else if (part <= 5) { // a slot's header, type and length, or body
            at = slots + random.nextInt(CAPACITY) * (long) SLOT_SIZE
                    + pick(random, SLOT_HEADER_OFFSET, SLOT_TYPE_OFFSET, SLOT_LENGTH_OFFSET, SLOT_BODY_OFFSET,
                    SLOT_BODY_OFFSET + 8, SLOT_BODY_OFFSET + 12);
        } else if (part <= 7) { // claim words
            at = claims + 8L * random.nextInt(CAPACITY * MAX_GROUPS);
        } else { // release entries
            at = releases + RELEASE_ENTRY_LENGTH * (long) random.nextInt(CAPACITY) + pick(random, 0, RELEASE_REF_OFFSET);
        }
        at = Math.min(at, end - 8);
        long cursor = ring.cursor();
        switch (random.nextInt(6)) {
            case 0 -> {
                byte value = (byte) random.nextInt(256);
                if (Fuzzer.replaying()) {
                    say("DAMAGE at " + at + ": byte 0x" + Integer.toHexString(value & 0xFF));
                }
                memory.set(ValueLayout.JAVA_BYTE, at, value);
            }
            case 1 -> store(memory, at, random.nextLong());
            case 2 -> store(memory, at, INTERESTING[random.nextInt(INTERESTING.length)]);
            case 3 -> store(memory, at, typeAndLength(random.nextInt(5),
                    (int) INTERESTING[random.nextInt(INTERESTING.length)]));
            default -> { // a word a protocol step could have written, for a nearby sequence and a likely peer
                long sequence = cursor + random.nextInt(-3 * CAPACITY, 2 * CAPACITY);
                int peer = pick(random, me, me, 0, 1, 7, 200, NO_PEER);
                store(memory, at, word(sequence, peer, random.nextInt(6)));
            }
        }
    }

    private static void store(MemorySegment memory, long at, long value) {
        long aligned = at & ~7L;
        if (Fuzzer.replaying()) {
            say("DAMAGE at " + aligned + ": 0x" + Long.toHexString(value));
        }
        Ring.LONG.setVolatile(memory, aligned, value);
    }

    private static int pick(SplittableRandom random, int... values) {
        return values[random.nextInt(values.length)];
    }
}
