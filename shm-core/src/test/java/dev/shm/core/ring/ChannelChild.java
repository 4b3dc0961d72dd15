package dev.shm.core.ring;

import static dev.shm.core.testing.ChildSupport.await;
import static dev.shm.core.testing.ChildSupport.say;

import dev.shm.core.MemfdUnavailableException;
import dev.shm.core.internal.Processes;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentOptions;
import dev.shm.core.testing.ChildSupport;
import dev.shm.core.testing.TestNative;
import java.io.BufferedOutputStream;
import java.io.DataOutputStream;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.foreign.Arena;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** The producer and consumer processes of the channel's cross-process tests. */
public final class ChannelChild {

    static final String CHANNEL = "orders";

    private ChannelChild() {
    }

    public static void main(String[] args) throws Exception {
        ChildSupport.begin(Duration.ofSeconds(Long.getLong("shm.child.lifeSeconds", 300)));
        SegmentOptions options = ChannelProcessesTest.segmentOptions(Path.of(args[1]));
        try {
            switch (args[0]) {
                case "produce" -> produce(options, Integer.parseInt(args[2]), Integer.parseInt(args[3]));
                case "consume" -> consume(options, args[2], Path.of(args[3]));
                case "hold" -> hold(options, args[2]);
                case "stream" -> stream(options, Integer.parseInt(args[2]), Integer.parseInt(args[3]), Path.of(args[4]));
                case "tally" -> tally(options, args[2], Path.of(args[3]), Integer.parseInt(args[4]),
                        Integer.parseInt(args[5]), Path.of(args[6]), Long.parseLong(args[7]));
                case "claim-and-hold" -> claimAndHold(options, Boolean.parseBoolean(args[2]));
                case "release-and-hold" -> releaseAndHold(options, Long.parseLong(args[2]));
                case "attach" -> attach(options);
                case "sp-stream" -> singleProducerStream(options, Integer.parseInt(args[2]), Integer.parseInt(args[3]),
                        args[4], Integer.parseInt(args[5]));
                case "starved" -> starved(options, SubscriptionMode.valueOf(args[2]), Long.parseLong(args[3]),
                        Long.parseLong(args[4]));
                case "close-with-memfds" -> closeWithMemfds(options, Long.parseLong(args[2]));
                case "lap-optional" -> lapOptional(options, Integer.parseInt(args[2]), Integer.parseInt(args[3]));
                case "sleep" -> sleep(ChannelProcessesTest.sleeperSegmentOptions(Path.of(args[1])), args[2],
                        Integer.parseInt(args[3]));
                default -> throw new IllegalArgumentException("unknown role " + args[0]);
            }
        } catch (Throwable t) {
            say("FAILED " + t);
            t.printStackTrace(System.out);
            System.exit(1);
        }
        System.exit(0);
    }

    /** The length of message {@code index}: mostly inline, some in pool slots, a few through a memfd. */
    static int lengthOf(int index) {
        if (index % 5000 == 4999) {
            return 10_000;
        }
        int kind = index % 10;
        return kind < 7 ? 16 + (index * 7) % 64 : 100 + (index * 131) % 3900;
    }

    /** Fills a message: producer, index, checksum, then bytes derived from both. */
    static void fill(MemorySegment buffer, int producer, int index, int length) {
        buffer.set(ValueLayout.JAVA_INT_UNALIGNED, 0, producer);
        buffer.set(ValueLayout.JAVA_INT_UNALIGNED, 4, index);
        for (int i = 16; i < length; i++) {
            buffer.set(ValueLayout.JAVA_BYTE, i, (byte) (producer * 31 + index * 17 + i));
        }
        buffer.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, checksum(buffer, 0, length));
    }

    /** A checksum of everything but the checksum field itself. */
    static long checksum(MemorySegment buffer, long offset, long length) {
        long h = 1125899906842597L + length;
        for (long i = 0; i < length; i++) {
            if (i >= 8 && i < 16) {
                continue;
            }
            h = 31 * h + buffer.get(ValueLayout.JAVA_BYTE, offset + i);
        }
        return h;
    }

    private static void produce(SegmentOptions options, int producer, int count) {
        try (Segment segment = Segment.open(options, "producer-" + producer);
             Channel channel = Channel.declare(segment, CHANNEL, ChannelProcessesTest.CHANNEL_OPTIONS)) {
            MemorySegment buffer = MemorySegment.ofArray(new long[10_000 / 8 + 8]);
            say("READY");
            await("GO");
            for (int index = 0; index < count; index++) {
                int length = lengthOf(index);
                fill(buffer, producer, index, length);
                SendOutcome outcome;
                while ((outcome = channel.send(buffer, 0, length)) != SendOutcome.SENT) {
                    if (outcome != SendOutcome.NO_BUFFER && outcome != SendOutcome.TIMEOUT) {
                        throw new IllegalStateException("send " + index + ": " + outcome);
                    }
                    Thread.onSpinWait(); // pool slots come back as the consumers catch up
                }
                if (index % 1000 == 0) {
                    say("SENT " + index);
                }
            }
            say("SENT " + count);
            // Every 5,000th message is a memfd payload, the last of the three-producer test's 70,000 too:
            // it lives in this process, and close lets go of it if a group has not read it within the
            // send timeout (200 ms here), which a consumer JVM behind by more than that on a busy
            // machine would count lost.
            awaitGroupsDone(channel);
        }
        say("DONE");
    }

    /**
     * Finishes the group's messages of producers other than 7, then claims the first message of
     * producer 7 and never finishes it: the parent kills this process mid-message.
     */
    private static void hold(SegmentOptions options, String group) throws Exception {
        Segment segment = Segment.open(options, "holder");
        Channel channel = Channel.declare(segment, CHANNEL, ChannelProcessesTest.CHANNEL_OPTIONS);
        Subscription subscription = subscribe(channel, group);
        say("READY");
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (System.nanoTime() < deadline) {
            subscription.take(m -> {
                if (m.buffer().get(ValueLayout.JAVA_INT_UNALIGNED, m.offset()) != 7) {
                    return;
                }
                say("HOLDING " + m.buffer().get(ValueLayout.JAVA_INT_UNALIGNED, m.offset() + 4));
                try {
                    Thread.sleep(Duration.ofMinutes(5));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, 1, Duration.ofMillis(100));
        }
    }

    /**
     * Takes {@code count} messages of channel {@code name} one at a time with the BLOCKING wait
     * strategy (a futex sleep between messages), saying {@code GOT <index>} for each.
     */
    private static void sleep(SegmentOptions options, String name, int count) {
        try (Segment segment = Segment.open(options, "sleeper");
             Channel channel = Channel.declare(segment, name,
                     ChannelProcessesTest.sleeperChannelOptions(name).withWaitStrategy(WaitStrategy.BLOCKING));
             Subscription subscription = channel.subscribe("sleepers", true)) {
            say("READY");
            int got = 0;
            while (got < count) {
                got += subscription.take(m -> say("GOT " + m.buffer().get(ValueLayout.JAVA_INT_UNALIGNED, m.offset())),
                        1, Duration.ofSeconds(60));
            }
        }
    }

    /**
     * The single producer of channel {@code sp}: sends messages {@code 0..quota-1} as producer
     * {@code producer}, in bursts of 16, saying {@code SENT <n>} after every 64 sends that returned SENT, and
     * {@code DONE} at the end. Its payloads are inline or in pool slots, never a memfd (those die
     * with their sender, and this process is killed). After {@code at} sends it leaves a state that a
     * kill at one moment of a send leaves, says so, and waits to be killed, as {@code dies} says:
     * {@code claimed} claims the next slot ({@code CLAIMED}); {@code torn} writes the next slot's type
     * and half a payload without a mark, as an inline send with no group that may be lapped does
     * before it publishes ({@code TORN}); {@code published} sends one more message and moves the
     * ring's cursor back over it, as if killed before its store of the cursor ({@code PUBLISHED <n>},
     * n counting that message); {@code none} never dies on purpose.
     */
    private static void singleProducerStream(SegmentOptions options, int producer, int quota, String dies, int at)
            throws Exception {
        try (Segment segment = Segment.open(options, "sp-producer-" + producer);
             Channel channel = Channel.declare(segment, "sp", ChannelProcessesTest.SINGLE_PRODUCER_OPTIONS)) {
            MemorySegment buffer = MemorySegment.ofArray(new long[4096 / 8]);
            say("READY " + segment.peerId());
            int index = 0;
            while (index < quota) {
                if (index == at && dies.equals("claimed")) {
                    java.lang.reflect.Method claim = Channel.class.getDeclaredMethod("claim", long.class);
                    claim.setAccessible(true);
                    say("CLAIMED " + claim.invoke(channel, Duration.ofSeconds(30).toNanos()));
                    Thread.sleep(Duration.ofMinutes(5));
                }
                if (index == at && dies.equals("torn")) {
                    // Claimed as a send claims it (waiting for room: the consumer may be a lap behind),
                    // then half-written.
                    java.lang.reflect.Method claim = Channel.class.getDeclaredMethod("claim", long.class);
                    claim.setAccessible(true);
                    long sequence = (long) claim.invoke(channel, Duration.ofSeconds(30).toNanos());
                    Ring ring = ChannelProcessesTest.ring(channel);
                    long slot = ring.slot(sequence);
                    ring.memory.set(ValueLayout.JAVA_LONG, slot + RingDescriptor.SLOT_TYPE_OFFSET,
                            RingDescriptor.typeAndLength(RingDescriptor.INLINE, 64));
                    ring.memory.asSlice(slot + RingDescriptor.SLOT_BODY_OFFSET, 32).fill((byte) 0x5A);
                    say("TORN " + index);
                    Thread.sleep(Duration.ofMinutes(5));
                }
                int length = Math.min(lengthOf(index), 4000);
                fill(buffer, producer, index, length);
                SendOutcome outcome = channel.send(buffer, 0, length);
                if (outcome == SendOutcome.SENT) {
                    if (index == at && dies.equals("published")) {
                        Ring ring = ChannelProcessesTest.ring(channel);
                        Ring.LONG.setVolatile(ring.memory, (long) RingDescriptor.CURSOR_OFFSET, ring.cursor() - 1);
                        say("PUBLISHED " + (index + 1));
                        Thread.sleep(Duration.ofMinutes(5));
                    }
                    index++;
                    if (index % 64 == 0) {
                        say("SENT " + index);
                    }
                    if (index % 16 == 0) {
                        java.util.concurrent.locks.LockSupport.parkNanos(500_000); // bursts: mid-stream for a while
                    }
                } else if (outcome != SendOutcome.NO_BUFFER && outcome != SendOutcome.TIMEOUT) {
                    throw new IllegalStateException("send " + index + ": " + outcome);
                }
            }
            say("DONE");
        }
    }

    /**
     * Sends {@code count} messages of {@code length} bytes on the lapped channel as fast as its required
     * group {@code billing}, consumed by a second thread of this process, lets it: each has its index in
     * every 8-byte word, so that a reader lapped while it copies would see two indices. (The slot's
     * inline capacity, or more: in a pool slot.)
     */
    private static void lapOptional(SegmentOptions options, int count, int length) throws Exception {
        try (Segment segment = Segment.open(options, "lapping-producer");
             Channel channel = Channel.declare(segment, "lapped", ChannelProcessesTest.LAPPED_OPTIONS);
             Subscription billing = channel.subscribe("billing", true, SubscriptionMode.EXCLUSIVE)) {
            long[] consumed = new long[1];
            Thread consumer = Thread.ofPlatform().start(() -> {
                long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                while (consumed[0] < count && System.nanoTime() < deadline) {
                    consumed[0] += billing.poll(m -> { }, 256);
                }
            });
            say("READY");
            MemorySegment buffer = MemorySegment.ofArray(new long[length / 8]);
            for (int index = 0; index < count; index++) {
                for (int word = 0; word < length / 8; word++) {
                    buffer.setAtIndex(ValueLayout.JAVA_LONG, word, index);
                }
                SendOutcome outcome = channel.send(buffer, 0, length);
                if (outcome != SendOutcome.SENT) {
                    throw new IllegalStateException("send " + index + ": " + outcome);
                }
            }
            consumer.join(Duration.ofSeconds(60));
            say("DONE " + consumed[0]);
        }
    }

    /** Maps {@code file} (which the parent sized) read-write for the life of this process. */
    static MemorySegment map(Path file) throws java.io.IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            return channel.map(FileChannel.MapMode.READ_WRITE, 0, channel.size(), Arena.global());
        }
    }

    /**
     * Streams messages {@code 0..quota-1} of producer {@code producer} in short bursts until told to
     * STOP, recording in {@code progress} how many sends returned SENT. The record is a store to a
     * shared file mapping, so it survives a SIGKILL: every message below it was reported sent.
     */
    private static void stream(SegmentOptions options, int producer, int quota, Path progress) throws Exception {
        MemorySegment sent = map(progress);
        try (Segment segment = Segment.open(options, "producer-" + producer);
             Channel channel = Channel.declare(segment, CHANNEL, ChannelProcessesTest.CHANNEL_OPTIONS)) {
            MemorySegment buffer = MemorySegment.ofArray(new long[10_000 / 8 + 8]);
            java.util.concurrent.CountDownLatch stop = stopLatch();
            say("READY");
            int index = 0;
            while (index < quota && stop.getCount() > 0) {
                int length = lengthOf(index);
                fill(buffer, producer, index, length);
                SendOutcome outcome = channel.send(buffer, 0, length);
                if (outcome == SendOutcome.SENT) {
                    index++;
                    LONG.setRelease(sent, 0L, (long) index);
                    if (index % 8 == 0) {
                        java.util.concurrent.locks.LockSupport.parkNanos(500_000); // bursts: mid-stream for a while
                    }
                } else if (outcome != SendOutcome.NO_BUFFER && outcome != SendOutcome.TIMEOUT) {
                    throw new IllegalStateException("send " + index + ": " + outcome);
                }
            }
            stop.await();
            // A group whose member the test just killed is without one for longer than the send
            // timeout (recovery, then a new JVM).
            awaitGroupsDone(channel);
        }
        say("DONE");
    }

    /**
     * A graceful stop of a producer: waits, up to 30 s, until every group is done with everything sent
     * so far. {@link Channel#close} ends the leases of the memfd payloads that a required group has not
     * read within the send timeout (the delivery contract's one loss without a crash, tested by
     * {@code ChannelProcessesTest#closingASenderKeepsItsMemfdPayloadsForTheRequiredGroupsUpToTheSendTimeout}).
     */
    static void awaitGroupsDone(Channel channel) {
        long cursor = channel.stats().cursor();
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (channel.stats().groups().stream().anyMatch(g -> g.done() < cursor)
                && System.nanoTime() - deadline < 0) {
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
        }
    }

    /**
     * Sends memfd messages 0, 1 and 2 (index and checksum as {@link #fill} writes them) on a channel
     * whose send timeout is {@code timeoutMillis}, says {@code SENT}; on {@code CLOSE} says {@code
     * CLOSING}, closes the channel and says {@code CLOSED <milliseconds the close took>}; stays
     * attached until {@code EXIT}.
     */
    private static void closeWithMemfds(SegmentOptions options, long timeoutMillis) throws Exception {
        try (Segment segment = Segment.open(options, "closing-sender")) {
            Channel channel = Channel.declare(segment, CHANNEL,
                    ChannelProcessesTest.CHANNEL_OPTIONS.withSendTimeout(Duration.ofMillis(timeoutMillis)));
            int length = lengthOf(4999); // above the largest slot class: a memfd
            MemorySegment buffer = MemorySegment.ofArray(new long[length / 8 + 1]);
            for (int index = 0; index < 3; index++) {
                fill(buffer, 0, index, length);
                SendOutcome outcome = channel.send(buffer, 0, length);
                if (outcome != SendOutcome.SENT) {
                    throw new IllegalStateException("send " + index + ": " + outcome);
                }
            }
            say("SENT");
            await("CLOSE");
            say("CLOSING");
            long began = System.nanoTime();
            channel.close();
            say("CLOSED " + Duration.ofNanos(System.nanoTime() - began).toMillis());
            await("EXIT");
        }
    }

    /** A latch that opens when the parent says STOP. */
    private static java.util.concurrent.CountDownLatch stopLatch() {
        java.util.concurrent.CountDownLatch stop = new java.util.concurrent.CountDownLatch(1);
        Thread.ofPlatform().daemon().start(() -> {
            await("STOP");
            stop.countDown();
        });
        return stop;
    }

    /** Offsets in a tally file: two header ints, then per message an unflagged and a redelivered count. */
    static final long TALLY_BAD = 0;
    static final long TALLY_DISORDER = 4;
    static final long TALLY_COUNTS = 16;

    /** The size of a tally file for {@code producers} producers of {@code quota} messages each. */
    static long tallySize(int producers, int quota) {
        return TALLY_COUNTS + 8L * producers * quota;
    }

    /**
     * Consumes the group and counts each message into a shared tally file, before the message is
     * done: a SIGKILL loses no count, and one killed after counting yields a redelivered count.
     * Also counts bad checksums, and per-producer order when this is the group's only member.
     * Each message takes at least {@code workMicros}; while it is in the handler, the first long of
     * {@code busyFile} is 1, so that the parent can kill this process mid-message.
     */
    private static void tally(SegmentOptions options, String group, Path file, int producers, int quota,
            Path busyFile, long workMicros) throws Exception {
        MemorySegment tally = map(file);
        MemorySegment busy = map(busyFile);
        int[] last = new int[producers];
        java.util.Arrays.fill(last, -1);
        try (Segment segment = Segment.open(options, "tally-" + group);
             Channel channel = Channel.declare(segment, CHANNEL, ChannelProcessesTest.CHANNEL_OPTIONS);
             Subscription subscription = subscribe(channel, group)) {
            MessageHandler counter = m -> {
                MemorySegment b = m.buffer();
                long o = m.offset();
                if (m.length() < 16) {
                    INT.getAndAdd(tally, TALLY_BAD, 1);
                    return;
                }
                int producer = b.get(ValueLayout.JAVA_INT_UNALIGNED, o);
                int index = b.get(ValueLayout.JAVA_INT_UNALIGNED, o + 4);
                if (producer < 0 || producer >= producers || index < 0 || index >= quota
                        || m.length() != lengthOf(index)
                        || b.get(ValueLayout.JAVA_LONG_UNALIGNED, o + 8) != checksum(b, o, m.length())) {
                    INT.getAndAdd(tally, TALLY_BAD, 1);
                    return;
                }
                if (index <= last[producer]) {
                    INT.getAndAdd(tally, TALLY_DISORDER, 1);
                }
                last[producer] = index;
                long at = TALLY_COUNTS + 8L * ((long) producer * quota + index) + (m.isRedelivered() ? 4 : 0);
                INT.getAndAdd(tally, at, 1);
            };
            long workNanos = workMicros * 1000;
            MessageHandler handler = m -> {
                LONG.setVolatile(busy, 0L, 1L);
                long start = System.nanoTime();
                counter.onMessage(m);
                while (System.nanoTime() - start < workNanos) {
                    Thread.onSpinWait();
                }
                LONG.setVolatile(busy, 0L, 0L);
            };
            java.util.concurrent.CountDownLatch stop = stopLatch();
            say("READY");
            while (stop.getCount() > 0) {
                subscription.take(handler, 64, Duration.ofMillis(20));
            }
            while (subscription.poll(handler, 256) > 0) {
                // drain what is left
            }
        }
        say("DONE");
    }

    /**
     * Claims a sequence as a producer would and never publishes it: the parent kills this process
     * between claim and publish. With {@code unmarked}, only the cursor moves (a death right after
     * the cursor's compare-and-set, before the slot names its writer).
     */
    private static void claimAndHold(SegmentOptions options, boolean unmarked) throws Exception {
        Segment segment = Segment.open(options, "claimer");
        Channel channel = Channel.declare(segment, CHANNEL, ChannelProcessesTest.CHANNEL_OPTIONS);
        long sequence;
        if (unmarked) {
            Ring ring = ChannelProcessesTest.ring(channel);
            sequence = ring.cursor();
            if (!Ring.LONG.compareAndSet(ring.memory, (long) RingDescriptor.CURSOR_OFFSET, sequence, sequence + 1)) {
                throw new IllegalStateException("the cursor moved under the claimer");
            }
        } else {
            java.lang.reflect.Method claim = Channel.class.getDeclaredMethod("claim", long.class);
            claim.setAccessible(true);
            sequence = (long) claim.invoke(channel, Duration.ofSeconds(30).toNanos());
        }
        say("CLAIMED " + sequence);
        Thread.sleep(Duration.ofMinutes(5));
    }

    /** Attaches to the segment, which then recovers the peers that die (its monitor does), and stays until killed. */
    private static void attach(SegmentOptions options) throws Exception {
        Segment segment = Segment.open(options, "bystander");
        say("READY " + segment.peerId());
        Thread.sleep(Duration.ofMinutes(5));
    }

    /**
     * Wins the release word of {@code sequence}'s pool payload, as a peer that frees the pool slot
     * does first, and stays there until killed: the state of a freer that dies before the pool slot
     * is free.
     */
    private static void releaseAndHold(SegmentOptions options, long sequence) throws Exception {
        Segment segment = Segment.open(options, "releaser");
        Channel channel = Channel.declare(segment, CHANNEL, ChannelProcessesTest.CHANNEL_OPTIONS);
        Ring ring = ChannelProcessesTest.ring(channel);
        long releaseAt = ring.releaseWord(sequence);
        long pending = RingDescriptor.word(sequence, RingDescriptor.NO_PEER, RingDescriptor.PENDING);
        if (!Ring.LONG.compareAndSet(ring.memory, releaseAt, pending,
                RingDescriptor.word(sequence, ring.me, RingDescriptor.RELEASING))) {
            throw new IllegalStateException("the release word of " + sequence + " is not pending");
        }
        say("RELEASING " + ring.me);
        Thread.sleep(Duration.ofMinutes(5));
    }

    /**
     * Reads memfd message 0, then runs out of descriptors and polls for message 1 until the poll has
     * failed twice ({@code UNAVAILABLE <message>}), says whether the sender (pid, start time) still
     * counts as alive while its stat cannot be read, gets its descriptors back and takes message 1
     * ({@code GOT <index> <checksum ok> <redelivered>}, then {@code MORE <further messages>} and
     * {@code LOST <count>}). A shared member finds it although the group's next has moved beyond it.
     */
    private static void starved(SegmentOptions options, SubscriptionMode mode, long senderPid, long senderStart)
            throws Exception {
        try (Segment segment = Segment.open(options, "starved");
             Channel channel = Channel.declare(segment, CHANNEL, ChannelProcessesTest.CHANNEL_OPTIONS);
             Subscription subscription = channel.subscribe("starved", true, mode)) {
            List<String> got = new ArrayList<>();
            MessageHandler handler = m -> {
                MemorySegment b = m.buffer();
                long o = m.offset();
                int index = b.get(ValueLayout.JAVA_INT_UNALIGNED, o + 4);
                boolean ok = m.length() == lengthOf(4999)
                        && b.get(ValueLayout.JAVA_LONG_UNALIGNED, o + 8) == checksum(b, o, m.length());
                got.add("GOT " + index + " " + ok + " " + m.isRedelivered());
            };
            say("READY");
            if (subscription.take(handler, 1, Duration.ofSeconds(30)) != 1) {
                throw new IllegalStateException("no message 0");
            }
            say(got.removeFirst());
            await("SENT 1");
            TestNative.loadMemfdFailureClasses();
            List<String> failures = new ArrayList<>();
            String alive;
            long soft = TestNative.exhaustDescriptors();
            try {
                long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
                while (failures.size() < 2 && got.isEmpty() && System.nanoTime() - deadline < 0) {
                    try {
                        subscription.poll(handler, 1);
                    } catch (MemfdUnavailableException e) {
                        failures.add(e.getMessage());
                    }
                }
                alive = "ALIVE " + (Processes.startTime(senderPid) == Processes.UNREADABLE) + " "
                        + Processes.mayBeAlive(senderPid, senderStart, Processes.pidNamespace());
            } finally {
                TestNative.restoreDescriptorLimit(soft);
            }
            for (String failure : failures) {
                say("UNAVAILABLE " + failure);
            }
            say(alive);
            if (mode == SubscriptionMode.SHARED) {
                // Another member may pass a message while it is claimed here, and move the group's next
                // beyond it (it saw the claim, then nothing published yet): as if it had.
                java.lang.reflect.Field field = Subscription.class.getDeclaredField("group");
                field.setAccessible(true);
                Ring ring = ChannelProcessesTest.ring(channel);
                Ring.LONG.setRelease(ring.memory, ring.group((int) field.get(subscription)) + RingDescriptor.GROUP_NEXT_OFFSET, 2L);
            }
            if (subscription.take(handler, 1, Duration.ofSeconds(30)) == 1) {
                say(got.removeFirst());
            }
            say("MORE " + subscription.poll(handler, 10) + " " + got);
            say("LOST " + channel.stats().groups().stream().filter(g -> g.name().equals("starved"))
                    .findFirst().orElseThrow().lost());
        }
    }

    /**
     * The group whose one member subscribes {@link SubscriptionMode#EXCLUSIVE} in the cross-process
     * tests (every other group's members are {@link SubscriptionMode#SHARED}).
     */
    static final String EXCLUSIVE_GROUP = "audit";

    static Subscription subscribe(Channel channel, String group) {
        return channel.subscribe(group, true,
                group.equals(EXCLUSIVE_GROUP) ? SubscriptionMode.EXCLUSIVE : SubscriptionMode.SHARED);
    }

    private static final java.lang.invoke.VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();
    private static final java.lang.invoke.VarHandle INT = ValueLayout.JAVA_INT.varHandle();

    private static void consume(SegmentOptions options, String group, Path out) throws Exception {
        try (Segment segment = Segment.open(options, "consumer-" + group);
             Channel channel = Channel.declare(segment, CHANNEL, ChannelProcessesTest.CHANNEL_OPTIONS);
             Subscription subscription = subscribe(channel, group);
             OutputStream file = Files.newOutputStream(out);
             DataOutputStream records = new DataOutputStream(new BufferedOutputStream(file, 1 << 16))) {
            long[] counts = new long[2];
            MessageHandler handler = m -> {
                MemorySegment b = m.buffer();
                long o = m.offset();
                int producer = b.get(ValueLayout.JAVA_INT_UNALIGNED, o);
                int index = b.get(ValueLayout.JAVA_INT_UNALIGNED, o + 4);
                boolean ok = m.length() == lengthOf(index)
                        && b.get(ValueLayout.JAVA_LONG_UNALIGNED, o + 8) == checksum(b, o, m.length());
                try {
                    records.writeInt(producer);
                    records.writeInt(index);
                    records.writeInt((ok ? 0 : 1) | (m.isRedelivered() ? 2 : 0));
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
                counts[0]++;
                if (!ok) {
                    counts[1]++;
                }
            };
            Thread stopper = Thread.ofPlatform().daemon().start(() -> await("STOP"));
            say("READY");
            while (stopper.isAlive()) {
                subscription.take(handler, 256, Duration.ofMillis(20));
            }
            while (subscription.poll(handler, 256) > 0) {
                // drain what is left
            }
            records.flush();
            say("DONE " + counts[0] + " " + counts[1]);
        }
    }
}
