package dev.shm.core.segment;

import dev.shm.core.ShmException;
import dev.shm.core.lane.Lane;
import dev.shm.core.lane.LaneDescriptor;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.memory.MemfdBuffer;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.ring.Channel;
import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.ring.Subscription;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * A peer that uses every part of a segment at random, for the live-segment fuzzer
 * ({@link LiveSegmentFuzzChild}) and its partner process ({@link LiveSegmentPartnerChild}): pool
 * slots, lane frames of all three kinds (references decoded as the gateways do: untrusted), memfd
 * leases, a channel, peer reservations, recovery rounds and the inspector. Each step must succeed
 * or fail with a {@link ShmException}, which is tallied by name; anything else passes out.
 */
final class SegmentUser {

    /** A step of the tally. */
    interface Step {
        void run() throws Exception;
    }

    static final String SERVICE = "svc";
    static final String CHANNEL = "orders";
    private static final int[] SIZES = {1, 100, 256, 257, 1000, 2000, 4096, 4097, 20_000};

    private final Segment segment;
    private final SplittableRandom random;
    private final List<String> steps;
    private final List<Long> held = new ArrayList<>();
    private final List<MemfdBuffer> written = new ArrayList<>();
    private int service = -1;
    private int provider = -1;
    private LaneTable.LanePair pair;
    private Channel channel;
    private Subscription subscription;

    SegmentUser(Segment segment, SplittableRandom random, List<String> steps) {
        this.segment = segment;
        this.random = random;
        this.steps = steps;
    }

    static ChannelOptions channelOptions() {
        return ChannelOptions.defaults().withCapacity(16).withSlotSize(128).withMaxGroups(3)
                .withSendTimeout(Duration.ofMillis(5));
    }

    /** Declares the service and provides it: this peer serves the pairs that others open to it. */
    void provide() throws Exception {
        step("service", () -> {
            service = segment.directory().declare(SERVICE, DirectoryDescriptor.SERVICE, new String[0], new long[0],
                    index -> new long[] {0, 0});
            if (segment.directory().provide(service)) {
                provider = segment.peerId();
            }
        });
        step("pair", this::openPair);
    }

    /** Uses the service that peer {@code provider} provides, as a client. */
    void use(int provider) throws Exception {
        step("service", () -> {
            OptionalInt found = segment.directory().lookup(SERVICE);
            if (found.isPresent()) {
                service = found.getAsInt();
                this.provider = provider;
            }
        });
        step("pair", this::openPair);
    }

    /** Declares the channel and joins {@code group}. */
    void subscribe(String group, boolean required) throws Exception {
        step("channel", () -> {
            channel = Channel.declare(segment, CHANNEL, channelOptions());
            subscription = channel.subscribe(group, required);
        });
    }

    /** Runs a step; a {@link ShmException} is an outcome (named in the tally), anything else passes out. */
    void step(String name, Step step) throws Exception {
        try {
            step.run();
            steps.add(name);
        } catch (ShmException e) {
            steps.add(name + ":" + e.getClass().getSimpleName());
        }
    }

    /** One of 20 uses: {@code choice} below 8 is traffic only (pool, lanes, channel, retain, stats). */
    void act(int choice) throws Exception {
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
            case 16 -> step("inspect", () -> inspect(segment.path()));
            case 17 -> step("reserve", () -> {
                int id = segment.reservePeer();
                segment.releaseReservedPeer(id);
            });
            case 18 -> step("grow", () -> pool.grow(random.nextInt(pool.classCount()), random.nextInt(1, 9)));
            default -> step("declare", () -> {
                Channel.declare(segment, CHANNEL, channelOptions()).close();
                segment.directory().lookup(SERVICE);
                if (service >= 0) {
                    segment.lanes().lanesOf(service);
                }
            });
        }
    }

    /** Reads every part of a segment file as the CLI's {@code stat} does. */
    static void inspect(Path path) {
        try (SegmentInspector inspector = SegmentInspector.open(path)) {
            inspector.peers();
            inspector.directory();
            inspector.lanes();
            inspector.slotPool();
            inspector.leases();
            inspector.isStale();
            inspector.counters().forEach((id, type, owner, label, value) -> { });
        }
    }

    /** Gives back what it holds, leaves the pair and the channel, and detaches; the monitor must not have failed otherwise. */
    void close() throws Exception {
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

    private void openPair() {
        if (service >= 0 && provider >= 0) {
            pair = segment.lanes().open(service, provider);
        }
    }

    private boolean serves() {
        return provider == segment.peerId() && service >= 0;
    }

    /**
     * A lane to write to, with its reader's side: the requests of this peer's pair; or, for the
     * provider, a reply into a pair that it serves (its own pair's replies too).
     */
    private Lane laneToWrite() {
        if (serves() && random.nextBoolean()) {
            List<LaneTable.LanePair> served = segment.lanes().lanesOf(service);
            if (!served.isEmpty()) {
                return served.get(random.nextInt(served.size())).toClient();
            }
        }
        return pair == null ? null : pair.toService();
    }

    /** A frame of one of the three kinds; what is not sent goes back. */
    private void offer() {
        if (pair == null && !serves()) {
            openPair();
            return;
        }
        Lane lane = laneToWrite();
        if (lane == null) {
            openPair();
            return;
        }
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
                // A gateway's writer closes its last memfd at its next write: a reader may find it gone.
                written.add(leased.buffer());
                if (written.size() > 8) {
                    written.removeFirst().close();
                }
            } else {
                segment.leases().release(leased.lease());
                leased.buffer().close();
            }
        }
        if (rc == Lane.RESET && pair != null && (lane == pair.toService())) {
            segment.lanes().close(pair);
            pair = null;
        }
    }

    /** Reads the replies of this peer's pair, or, for the provider, the requests of a pair it serves. */
    private void read() {
        int limit = random.nextInt(1, 5);
        if (serves() && random.nextBoolean()) {
            List<LaneTable.LanePair> served = segment.lanes().lanesOf(service);
            if (!served.isEmpty()) {
                LaneTable.LanePair p = served.get(random.nextInt(served.size()));
                p.toService().poll((type, payload) -> decode(type, payload, p.client()), limit);
                return;
            }
        }
        if (pair == null) {
            openPair();
            return;
        }
        int writer = pair.provider();
        if (pair.toClient().poll((type, payload) -> decode(type, payload, writer), limit) == Lane.RESET) {
            segment.lanes().close(pair);
            pair = null;
        }
    }

    /** Reads a frame; a reference is taken from its writer as a gateway takes it: checked first. */
    private void decode(short type, MemorySegment payload, int writer) {
        payload.toArray(ValueLayout.JAVA_BYTE);
        int me = segment.peerId();
        if (type == LaneDescriptor.SLOT_REF) {
            SlotPool pool = segment.slotPool();
            long ref = Lane.slotRef(payload);
            long length = Lane.slotLength(payload);
            long capacity = pool.capacityOf(ref);
            if (capacity >= 0 && length >= 0 && length <= capacity && pool.transfer(ref, writer, me)) {
                try {
                    pool.data(ref).asSlice(0, length).toArray(ValueLayout.JAVA_BYTE);
                } finally {
                    pool.free(ref);
                }
            }
        } else if (type == LaneDescriptor.MEMFD_REF) {
            LeaseTable leases = segment.leases();
            LeaseTable.Lease lease = leases.lookup(Lane.memfdLease(payload), Lane.memfdGeneration(payload));
            if (lease == null || lease.owner() != writer) {
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
}
