package dev.shm.core.segment;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/** Small segments for tests: quick to create, quick to scan. */
public final class TestSegments {

    private TestSegments() {
    }

    /**
     * Options for a small segment in {@code directory}: 8 peers, two slot classes (64 x 256 B,
     * 16 x 4 KiB), 8 lanes of 4 KiB, 50 ms heartbeats, a 1 s liveness timeout.
     *
     * @param directory where the file goes
     * @param name the segment's name
     * @return the options
     */
    public static SegmentOptions options(Path directory, String name) {
        return SegmentOptions.named(name)
                .withDirectory(directory)
                .withSize(16L << 20)
                .withMaxPeers(8)
                .withLiveness(Duration.ofMillis(50), Duration.ofSeconds(1))
                .withSlotClasses(List.of(new SlotClass(256, 64), new SlotClass(4096, 16)))
                .withLanes(8, 4096);
    }
    /**
     * Kills peer {@code dead} with {@code kill}, claims its recovery for {@code segment}'s process and
     * holds it, as a recoverer does while it works: the entry stays {@code RECOVERING}, naming this
     * live process as its actor, until the returned hold closes. This process's own recoveries (its
     * monitor's) take the same lock, from before the kill, so none of them gets there first; they wait
     * until the hold closes, which gives the claim back for the next recovery round to run. Close it
     * on the thread that took it.
     *
     * @param segment this process's segment
     * @param dead the peer to kill
     * @param kill kills its process
     * @param patience how long to wait for its process to count as dead
     * @return the hold
     * @throws Exception when the peer does not count as dead within the patience
     */
    public static AutoCloseable killAndHoldRecovery(Segment segment, int dead, Runnable kill, Duration patience)
            throws Exception {
        java.lang.reflect.Field lockField = Segment.class.getDeclaredField("recoveryLock");
        java.lang.reflect.Field memoryField = Segment.class.getDeclaredField("memory");
        lockField.setAccessible(true);
        memoryField.setAccessible(true);
        java.util.concurrent.locks.ReentrantLock lock = (java.util.concurrent.locks.ReentrantLock) lockField.get(segment);
        PeerTable peers = ((SegmentMemory) memoryField.get(segment)).peers;
        lock.lock();
        try {
            kill.run();
            long deadline = System.nanoTime() + patience.toNanos();
            PeerTable.Claim claim;
            while ((claim = peers.claimRecovery(dead, segment.peerId())) == null) {
                PeerInfo info = segment.peer(dead);
                if (info.state() == PeerState.EMPTY || System.nanoTime() - deadline > 0) {
                    throw new IllegalStateException("peer " + dead + " cannot be claimed for recovery within "
                            + patience + ": " + info);
                }
                Thread.sleep(5);
            }
            PeerTable.Claim held = claim;
            return () -> {
                try {
                    peers.abandonRecovery(dead, held);
                } finally {
                    lock.unlock();
                }
            };
        } catch (Exception | Error e) {
            lock.unlock();
            throw e;
        }
    }
}
