package dev.shm.core.lane;

import dev.shm.core.memory.MemfdBuffer;
import dev.shm.core.segment.LeaseTable;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The memfd buffers that one writer of lanes hands out in {@code MEMFD_REF} frames, for records
 * larger than the segment's largest slot class.
 *
 * <p>The protocol, between the two processes of a lane:
 * <ol>
 *   <li>the writer fills a sealed memfd, registers it in the segment's {@link LeaseTable} and writes
 *       a frame that names the lease, its generation, an offset and a length ({@link #stage},
 *       {@link Lane#offerMemfd}, {@link #written});</li>
 *   <li>the reader looks the lease up, opens the memfd ({@link LeaseTable#open}), reads the record
 *       and ends the lease ({@link LeaseTable#release}): it is the frame's one reader;</li>
 *   <li>the writer closes a buffer once it finds the lease ended ({@link #reclaim}), or ends the
 *       lease and closes the buffer itself when the lane it went out on was reset (the reader died
 *       or left, and may never read it) or when the writer closes ({@link #close}).</li>
 * </ol>
 * A writer that dies leaves its leases to recovery, which drops them, and its descriptors to the
 * kernel; a reader then finds the lease gone and drops the frame as stale.
 *
 * <p>Thread-safety: safe from several threads (each writing its own lanes); after {@link #close}
 * nothing is staged any more.
 */
public final class LaneMemfds implements AutoCloseable {

    private static final AtomicLong NAMES = new AtomicLong();

    /** A memfd filled and leased, not yet handed over or not yet given back. */
    public record Staged(LeaseTable.Lease lease, MemfdBuffer buffer, Lane lane) {
    }

    private final LeaseTable leases;
    private final String name;
    private final ArrayDeque<Staged> handedOut = new ArrayDeque<>();
    private boolean closed;

    /**
     * Tracks the memfds of one writer.
     *
     * @param leases the segment's lease table
     * @param name what writes, for the memfds' names ({@code /proc/<pid>/fd} shows {@code memfd:shm-<name>-<n>})
     */
    public LaneMemfds(LeaseTable leases, String name) {
        this.leases = leases;
        this.name = name;
    }

    /**
     * Fills a new sealed memfd with a record, {@code head} then, when not null, {@code tail}, and
     * leases it. Buffers whose leases ended are closed first.
     *
     * @param head the record's first part, from offset 0
     * @param headLength its length
     * @param tail the rest, or {@code null}
     * @return the staged buffer, or {@code null} when the lease table is full or this was closed
     */
    public Staged stage(MemorySegment head, long headLength, byte[] tail) {
        if (reclaim() < 0) {
            return null;
        }
        LeaseTable.Leased leased = leases.registerCopy("shm-" + name + "-" + NAMES.incrementAndGet(), head, 0,
                headLength, tail == null ? null : MemorySegment.ofArray(tail), tail == null ? 0 : tail.length);
        return leased == null ? null : new Staged(leased.lease(), leased.buffer(), null);
    }

    /**
     * Records that the frame naming {@code staged} went out on {@code lane}: its reader ends the lease.
     *
     * @param staged the buffer
     * @param lane the lane the frame was written to
     */
    public void written(Staged staged, Lane lane) {
        synchronized (this) {
            if (!closed) {
                handedOut.add(new Staged(staged.lease(), staged.buffer(), lane));
                return;
            }
        }
        discard(staged); // closed meanwhile: its reader finds the lease gone and drops the frame
    }

    /**
     * Gives back a buffer whose frame was not written: ends its lease and closes it.
     *
     * @param staged the buffer
     */
    public void discard(Staged staged) {
        try {
            leases.release(staged.lease());
        } catch (IllegalStateException closed) {
            // the segment's mapping is gone, and the lease with it (its detach dropped this peer's)
        } finally {
            staged.buffer().close();
        }
    }

    /**
     * Closes the buffers whose leases their readers ended, and ends and closes those whose lanes were
     * reset.
     *
     * @return how many buffers are still handed out; -1 once closed
     */
    public synchronized int reclaim() {
        if (closed) {
            return -1;
        }
        if (handedOut.isEmpty()) {
            return 0;
        }
        for (Iterator<Staged> it = handedOut.iterator(); it.hasNext(); ) {
            Staged s = it.next();
            boolean ended = leases.lookup(s.lease().index(), s.lease().generation()) == null;
            if (ended || s.lane().isReset()) {
                it.remove();
                try {
                    if (!ended) {
                        leases.release(s.lease()); // the lease before the fd (LeaseTable#open)
                    }
                } finally {
                    s.buffer().close();
                }
            }
        }
        return handedOut.size();
    }

    /**
     * Returns how many buffers are handed out and not yet found given back.
     *
     * @return the count
     */
    public synchronized int pending() {
        return handedOut.size();
    }

    /**
     * Ends the leases of every buffer still handed out and closes them: their frames will not be read.
     * After the segment was closed only the buffers are closed (its detach dropped this peer's leases).
     */
    @Override
    public synchronized void close() {
        closed = true;
        for (Staged s; (s = handedOut.poll()) != null; ) {
            discard(s);
        }
    }
}
