package dev.shm.core.ring;

import dev.shm.core.ShmException;
import dev.shm.core.segment.Directory;
import dev.shm.core.segment.DirectoryDescriptor;
import dev.shm.core.segment.Segment;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

/**
 * Recovers the rings of every channel of a segment when a peer dies — whether or not this process
 * uses them — so that a survivor that never opened a channel still unblocks it (DESIGN §2.5, steps
 * 6 and 7). Every {@link Segment} runs one.
 */
public final class RingRecovery implements Segment.RecoveryParticipant {

    private final Segment segment;
    private final Map<Long, Ring> rings = new HashMap<>();

    private RingRecovery(Segment segment) {
        this.segment = segment;
    }

    /**
     * Creates the participant for a segment.
     *
     * @param segment the segment
     * @return its ring recovery
     */
    public static Segment.RecoveryParticipant of(Segment segment) {
        return new RingRecovery(segment);
    }

    @Override
    public void recover(int dead) {
        for (Directory.Entry entry : segment.directory().entries()) {
            if (entry.type() != DirectoryDescriptor.CHANNEL || entry.params().length != 4) {
                continue;
            }
            try {
                ring(entry).recover(dead);
            } catch (ShmException | IllegalArgumentException | IndexOutOfBoundsException e) {
                // A damaged ring's structure: the other channels are recovered all the same.
                segment.counters().increment(dev.shm.core.counters.SegmentCounters.CORRUPT_FRAMES_REJECTED);
                Ring.LOG.log(System.Logger.Level.WARNING, "channel '" + entry.name() + "': the recovery of dead peer "
                        + dead + " failed on damage and was counted in the segment's corrupt frames rejected: " + e);
            }
        }
    }

    @Override
    public void detached() {
        Ring.forget(segment);
    }

    private Ring ring(Directory.Entry entry) {
        // Keyed by index and offset: an entry removed and declared again maps a new structure.
        long key = ((long) entry.index() << 40) ^ entry.structureOffset();
        Ring ring = rings.get(key);
        if (ring == null) {
            long[] p = entry.params();
            if (p[0] > Integer.MAX_VALUE || p[1] > Integer.MAX_VALUE || p[2] > RingDescriptor.MAX_GROUPS) {
                throw new ChannelException(ChannelException.Reason.LAYOUT_MISMATCH, "channel '" + entry.name()
                        + "' has parameters out of range");
            }
            MemorySegment memory = segment.extents().map(entry.structureOffset(), entry.structureLength());
            RingDescriptor.validate(memory, entry.name(), (int) p[0], (int) p[1], (int) p[2], (int) p[3]);
            ring = new Ring(memory, entry.name(), entry.index(), segment);
            rings.put(key, ring);
        }
        return ring;
    }
}
