package dev.shm.core.ring;

import static dev.shm.core.ring.RingDescriptor.*;

import dev.shm.core.MemfdUnavailableException;
import dev.shm.core.internal.Futex;
import dev.shm.core.memory.MemfdBuffer;
import dev.shm.core.segment.LeaseTable;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.time.Duration;

/**
 * One member of a consumer group: it competes with the group's other members, in this and other
 * processes, for the group's messages.
 *
 * <h2>Receiving</h2>
 * {@link #poll} hands the messages available now to a handler; {@link #take} waits for at least
 * one, with the channel's wait strategy, up to a timeout. A member claims a message (a
 * compare-and-set on its group's claim word for the slot), hands it to the handler, then marks it
 * done; the group's done sequence moves on over every finished message, and a pool slot is freed
 * when every required group is done with it.
 *
 * <p>Members of a required group read payloads in place; members of an optional group, which
 * producers may overrun, read a copy that is checked against overrun before it is handed out.
 *
 * <h2>Crashes</h2>
 * A member that dies with a message claimed leaves it to recovery, which hands it back to the group
 * flagged redelivered. A producer that dies between claim and publish leaves a hole that recovery
 * (or, when its slot names no writer, a member after the liveness timeout) fills with a skip; a
 * single producer's slot at the cursor is left to (or given back for) the producer that takes over.
 *
 * <p>Thread-safety: one thread per subscription.
 */
public final class Subscription implements AutoCloseable {

    private final Ring ring;
    private final int group;
    private final boolean required;
    private final boolean exclusive;
    /** Where the group's claim words start. */
    private final long claimBase;
    private final Message message = new Message();
    private final Idler idler;
    private final Futex.Waiter waiter;
    private final long livenessNanos;
    private MemorySegment copy = MemorySegment.NULL;
    private MemorySegment copyView = MemorySegment.NULL;
    /** Finished messages between two moves of the group's done sequence within a batch (a power of two). */
    private static final int ADVANCE_EVERY = 8;
    /** {@code runFrom} in {@link #poll} once the member has passed a sequence it did not finish itself. */
    private static final long NO_RUN = Long.MIN_VALUE;
    private int sinceAdvance;
    /**
     * Set by a delivery that could not open its message's memfd ({@link MemfdUnavailableException}):
     * the poll leaves that message unread, for its next look, instead of finishing it.
     */
    private boolean unread;
    private long holeSequence = -1;
    private long holeSince;
    /**
     * The sequence at which a single-producer ring's member last found nothing, when it first found
     * nothing there, and how many polls in a row found nothing there since.
     */
    private long emptyAt = RESYNC;
    private long emptySince;
    private int emptyPolls;
    /** How long a member finds nothing at one sequence before it looks at the cursor for damage. */
    private static final long CHECK_AFTER_NANOS = 1_000_000;
    /** How often (a power of two) an empty poll reads the clock for that. */
    private static final int CHECK_EVERY = 16;
    private boolean closed;
    /** An exclusive member's next sequence ({@link #RESYNC}: read it from the group's done). */
    private long position = RESYNC;
    private static final long RESYNC = Long.MIN_VALUE;
    /**
     * For an exclusive member, the first sequence no earlier member can have claimed (the cursor when
     * it joined, plus one: a single producer moves the cursor just after it publishes). Below it,
     * claim words may hold an earlier member's DONE, or a REDELIVER that recovery wrote.
     */
    private final long trustFrom;
    /** The ring's memory and its read-only view, where the group's done lives, the inline capacity: read once. */
    private final MemorySegment memory;
    private final MemorySegment readOnly;
    private final long doneAt;
    private final int inlineCapacity;

    Subscription(Ring ring, int group, boolean required, boolean exclusive, WaitStrategy strategy) {
        this.ring = ring;
        this.group = group;
        this.required = required;
        this.exclusive = exclusive;
        this.claimBase = ring.claim(group, 0);
        this.idler = new Idler(strategy);
        this.waiter = strategy == WaitStrategy.BLOCKING ? new Futex.Waiter() : null;
        if (waiter != null) {
            ring.announceSleeper(); // before its first sleep, so that single producers look for sleepers
        }
        this.livenessNanos = ring.segment.options().livenessTimeout().toNanos();
        this.trustFrom = exclusive ? ring.cursor() + 1 : Long.MAX_VALUE;
        this.memory = ring.memory;
        this.readOnly = ring.readOnly;
        this.doneAt = ring.group(group) + GROUP_DONE_OFFSET;
        this.inlineCapacity = ring.inlineCapacity();
    }

    /**
     * Returns the group's name.
     *
     * @return the name
     */
    public String group() {
        return ring.groupName(group);
    }

    /**
     * Hands the messages available now, at most {@code limit}, to {@code handler}.
     *
     * <p>A poll that finds nothing pauses the core once ({@link Thread#onSpinWait()}) before it
     * returns, so that a caller that spins on {@code poll} reads the slot the producer is about to
     * write less often: a reader that takes that line back again and again delays the producer's
     * stores into it (on an AMD EPYC VM, a round trip's mean below its 90th percentile went down by
     * 40 ns with the pause, its 75th percentile by 130 ns: docs/performance.md).
     *
     * @param handler receives each message
     * @param limit the most messages to hand out
     * @return how many were handed out
     * @throws MemfdUnavailableException when this process cannot open the memfd of the next message
     *     now (no free descriptor, for one); the messages before it were handed out, and that one
     *     stays in the ring, unread, for the next poll
     */
    public int poll(MessageHandler handler, int limit) {
        if (closed) {
            throw new IllegalStateException("subscription to group '" + group() + "' of channel '" + ring.name
                    + "' is closed");
        }
        int delivered = exclusive ? pollAlone(handler, limit) : pollShared(handler, limit);
        if (delivered == 0) {
            Thread.onSpinWait();
        }
        return delivered;
    }

    /**
     * An exclusive member of a required group in its steady state: published inline messages at or
     * after {@link #trustFrom}, handed out in place, with the group's done moved past each. The loop
     * of {@link #pollExclusive} for its commonest case, with the ring's memory in a local and no
     * per-message branch for what cannot happen here. Anything else ends it and {@link #pollExclusive}
     * takes over from that message, except an empty poll of a single-producer ring (the previous lap,
     * or the slot being written), which ends at once.
     */
    private int pollAlone(MessageHandler handler, int limit) {
        long n = position;
        if (!required || n == RESYNC || n < trustFrom) {
            return pollExclusive(handler, limit);
        }
        MemorySegment memory = this.memory;
        long start = n;
        int delivered = 0;
        boolean nothingYet = false;
        try {
            while (delivered < limit) {
                long slot = ring.slot(n);
                long h = (long) Ring.LONG.getAcquire(memory, slot);
                if (!isTag(h, n) || state(h) != PUBLISHED) {
                    // Nothing yet from a single producer ends the poll here; the rest (a skip, damage,
                    // a hole or writer to check for several producers) is pollExclusive's.
                    nothingYet = ring.singleProducer && notThereYet(n, h);
                    break;
                }
                long typeAndLength = memory.get(ValueLayout.JAVA_LONG, slot + SLOT_TYPE_OFFSET);
                int length = lengthOf(typeAndLength);
                if (typeOf(typeAndLength) != INLINE || length < 0 || length > inlineCapacity) {
                    break;
                }
                message.set(readOnly, slot + SLOT_BODY_OFFSET, length, n, false, INLINE);
                try {
                    handler.onMessage(message);
                } finally {
                    passAlone(++n);
                }
                delivered++;
            }
        } finally {
            position = n;
            if (n != start) {
                ring.wakeProducers();
            }
        }
        return delivered < limit && !nothingYet ? delivered + pollExclusive(handler, limit - delivered) : delivered;
    }

    /**
     * An exclusive member moves the group's done to {@code next}, past the message it finished: after
     * the handler's reads (release), so producers may reuse the slot from here. Waiting producers are
     * woken every {@link #ADVANCE_EVERY} messages within a batch too.
     */
    private void passAlone(long next) {
        Ring.LONG.setRelease(memory, doneAt, next);
        if ((++sinceAdvance & (ADVANCE_EVERY - 1)) == 0) {
            ring.wakeProducers();
        }
    }

    /**
     * An exclusive member's poll. Nobody else claims the group's messages or moves its sequences while
     * this member lives (recovery does so only once it died), so the member keeps its next sequence
     * here and moves the group's done sequence past each message with a plain ordered store: done
     * is where it stands, and the message at done is the one it may have in hand (recovery hands that
     * one on, flagged redelivered). Claim words are read only below {@link #trustFrom}, where members
     * before this one may have left them; none is written. Anything but a published message, a skip
     * or nothing yet (the previous lap, or the slot being written) goes the shared way (overrun,
     * damage), whose compare-and-sets are correct for one member too.
     */
    private int pollExclusive(MessageHandler handler, int limit) {
        long n = position;
        if (n == RESYNC) {
            n = ring.done(group); // everything below done is finished; claim words say which above are
            if (n == Ring.UNSET) {
                return 0;
            }
        }
        long start = n;
        int delivered = 0;
        boolean shared = false;
        try {
            while (delivered < limit) {
                long slot = ring.slot(n);
                long h = ring.header(slot);
                int state = state(h);
                if (!isTag(h, n) || (state != PUBLISHED && state != SKIP)) {
                    shared = !notThereYet(n, h);
                    break;
                }
                boolean redelivered = false;
                if (n < trustFrom) {
                    long cw = (long) Ring.LONG.getAcquire(memory, claimAt(n));
                    redelivered = isTag(cw, n) && state(cw) == REDELIVER;
                    if (!redelivered && !isBefore(cw, n)) {
                        if (!isTag(cw, n) || (state(cw) != DONE && state(cw) != CLAIMED)) {
                            shared = true; // a claim word no step writes: the shared way counts it
                            break;
                        }
                        // Done by a member before this one (whose claims recovery handed back first).
                        // Recovery of any peer moves done over such words too (Ring.advanceDone): a
                        // compare-and-set, so that done never goes back behind what producers saw.
                        if (!Ring.LONG.compareAndSet(memory, doneAt, n, n + 1)) {
                            n = Math.max(n + 1, (long) Ring.LONG.getAcquire(memory, doneAt));
                        } else {
                            n++;
                        }
                        continue;
                    }
                }
                long typeAndLength = state == PUBLISHED ? memory.get(ValueLayout.JAVA_LONG, slot + SLOT_TYPE_OFFSET) : 0;
                boolean handed = false;
                try {
                    if (state == PUBLISHED) {
                        handed = deliver(handler, n, slot, typeAndLength, redelivered);
                    }
                } finally {
                    if (unread) {
                        unread = false; // done stays at n, and so does this member: the next poll reads it
                    } else {
                        passAlone(++n);
                        if (typeOf(typeAndLength) == SLOT_REF) {
                            ring.releaseIfDone(n - 1);
                        }
                    }
                }
                if (handed) {
                    delivered++;
                }
            }
        } finally {
            position = shared ? RESYNC : n;
            if (n != start) {
                ring.wakeProducers();
            }
        }
        if (shared && delivered < limit) {
            delivered += pollShared(handler, limit - delivered);
        }
        return delivered;
    }

    private int pollShared(MessageHandler handler, int limit) {
        long nextAt = ring.group(group) + GROUP_NEXT_OFFSET;
        // The group's next as this member last saw or set it: the end of the batch moves it on from there.
        long start = (long) Ring.LONG.getAcquire(memory, nextAt);
        long n = redeliverableAtDone(start);
        // This member's run: it finished every sequence from runFrom up to n itself (NO_RUN once it
        // passed one it did not finish), so done moves over the run without a scan of claim words.
        long runFrom = n;
        int delivered = 0;
        boolean finished = false;
        try {
            while (delivered < limit) {
                long slot = ring.slot(n);
                long h = ring.header(slot);
                if (!isTag(h, n)) {
                    if (isTag(h, n - ring.capacity)) {
                        checkHole(n, h, false);
                        break; // not published yet
                    }
                    long done = ring.done(group);
                    if (n < done) {
                        n = done; // everything up to done is finished, and the slot moved on: jump
                        runFrom = n;
                        continue;
                    }
                    if (!required) {
                        if (ring.cursor() <= n) {
                            // Nothing sent at n yet, so no later lap overran it: the previous lap's
                            // writer has not marked it yet, or the header, the group's next or its done
                            // is damaged. Wait here (before, a done damaged past the cursor sent this
                            // loop on past the cursor for good, counting each sequence lost).
                            break;
                        }
                        long oldest = overrun(n);
                        if (Ring.LONG.compareAndSet(memory, nextAt, n, oldest)) {
                            // The batch's end moves next on from here: from the start it read, the
                            // compare-and-set would fail and leave next at oldest, and the members
                            // would look at the batch's messages again (and count them lost again
                            // if lapped meanwhile).
                            start = oldest;
                        }
                        n = oldest;
                        runFrom = NO_RUN;
                        continue;
                    }
                    if (ring.isLaterLap(h, n)) {
                        // A required group's slot cannot move on before the group is done with it: its
                        // next or done was damaged a lap or more behind. Read on from the oldest
                        // message in the ring (it may hand out again messages the group had read).
                        // Before, the header of that later lap, a message other groups still needed,
                        // was taken for damage and replaced by a skip, one slot a liveness timeout.
                        long oldest = lapBehind(ring.cursor());
                        ring.countCorrupt("group '" + group() + "' stood at sequence " + n + ", a lap or more behind"
                                + " its slot (0x" + Long.toHexString(h) + "); moved on to " + oldest);
                        long doneNow = ring.done(group);
                        if (doneNow < oldest) {
                            Ring.LONG.compareAndSet(memory, doneAt, doneNow, oldest);
                        }
                        if (Ring.LONG.compareAndSet(memory, nextAt, n, oldest)) {
                            start = oldest; // as for an overrun above
                        }
                        n = oldest;
                        runFrom = NO_RUN;
                        finished = true; // done moves on over the claim words that say handled, at the end
                        continue;
                    }
                    checkDamaged(n, h); // a required group's slot cannot have moved on: damaged
                    break;
                }
                int state = state(h);
                if (state == WRITING) {
                    checkWriter(n, h);
                    break;
                }
                if (state != PUBLISHED && state != SKIP) {
                    checkDamaged(n, h);
                    break;
                }
                long claimAt = claimAt(n);
                long cw = (long) Ring.LONG.getAcquire(memory, claimAt);
                // Open: the word is of an earlier lap (nobody of the group took this message yet), or
                // recovery handed the message back.
                boolean open = isBefore(cw, n);
                if (open || (isTag(cw, n) && state(cw) == REDELIVER)) {
                    if (!Ring.LONG.compareAndSet(memory, claimAt, cw, word(n, ring.me, CLAIMED))) {
                        continue; // another member took it, or recovery handed it back: look again
                    }
                    long typeAndLength = state == PUBLISHED ? memory.get(ValueLayout.JAVA_LONG, slot + SLOT_TYPE_OFFSET) : 0;
                    int type = typeOf(typeAndLength);
                    boolean handed = false;
                    try {
                        if (state == PUBLISHED) {
                            handed = deliver(handler, n, slot, typeAndLength, !open);
                        }
                    } finally {
                        if (unread) {
                            // Neither finished nor passed: handed back with the word it had (open, or
                            // REDELIVER from recovery), so its next reader's flag is what it would have
                            // been. Another member may have passed it while it was claimed here and
                            // moved next beyond it (and may do so again after the lowering below);
                            // every poll starts at done when the message there is handed back
                            // (redeliverableAtDone), so it is read at the latest once done reaches it.
                            // (An optional group's producer may have lapped it meanwhile: then the word
                            // is not this member's claim any more.)
                            unread = false;
                            if (Ring.LONG.compareAndSet(memory, claimAt, word(n, ring.me, CLAIMED), cw)) {
                                ring.lowerNext(group, n);
                            }
                        } else {
                            if (required) {
                                // Producers wait for this group's done: nobody else writes the word meanwhile.
                                Ring.LONG.setRelease(memory, claimAt, word(n, ring.me, DONE));
                            } else {
                                // A producer may have lapped this optional group while the handler ran, and
                                // another member claimed the later message already: mark only this
                                // member's own claim done.
                                Ring.LONG.compareAndSet(memory, claimAt, word(n, ring.me, CLAIMED), word(n, ring.me, DONE));
                            }
                            finished = true;
                            if (type == SLOT_REF) {
                                ring.releaseIfDone(n);
                            }
                            if ((++sinceAdvance & (ADVANCE_EVERY - 1)) == 0) {
                                // Within a long batch too, so that slow handlers do not hold producers back
                                // for a whole batch.
                                advanceDone(runFrom, n + 1);
                                ring.wakeProducers();
                            }
                        }
                    }
                    if (handed) {
                        delivered++;
                    }
                    n++;
                } else if (isTag(cw, n) && (state(cw) == CLAIMED || state(cw) == DONE)) {
                    n++; // claimed or done by another member: move on
                    runFrom = NO_RUN;
                } else if (!isTag(ring.header(slot), n)) {
                    continue; // the slot moved on while we looked (an optional group overrun)
                } else {
                    // a published slot's claim word names a later lap, or no state
                    ring.countCorrupt("group '" + group() + "': the claim word of published sequence " + n
                            + " is 0x" + Long.toHexString(cw) + ", which no step writes; marked done");
                    Ring.LONG.compareAndSet(memory, claimAt, cw, word(n, ring.me, DONE));
                    runFrom = NO_RUN;
                }
            }
        } finally {
            // Once per batch: the group's next (a hint for the members), its done (which gates
            // producers, one compare-and-set for the batch) and a wake-up of waiting producers.
            if (n > start) {
                Ring.LONG.compareAndSet(memory, nextAt, start, n);
            } else if (finished) {
                VarHandle.fullFence();
            }
            if (finished) {
                // The compare-and-set above (or the fence) orders this member's DONE stores before
                // its reads of done and of claim words. Every member does so, so of two members that
                // finish neighbouring runs at once at least one sees the other's DONE (or its move
                // of done) and carries done over both.
                advanceDone(runFrom, n);
                ring.wakeProducers();
            }
        }
        return delivered;
    }

    /**
     * The lowest done a required group can have with producers at {@code cursor}: a lap behind it, or
     * the group's start when it joined less than a lap ago (its claim words below are not its own).
     */
    private long lapBehind(long cursor) {
        long start = ring.start(group);
        return start == Ring.UNSET ? cursor - ring.capacity : Math.max(cursor - ring.capacity, start);
    }

    /**
     * A required group's member that stands at {@code n}, at or past {@code cursor} (read before this),
     * with nothing to read. The group's done cannot lie a lap behind that cursor (producers claim no
     * sequence a lap past done), nor behind an exclusive member's own position ({@code ownPosition}:
     * it moves done past each message itself, and only recovery of a dead member moves it otherwise,
     * forward). Such a done is damage, and it would hold producers, who find no room, while the
     * members find nothing to read: it is counted and moved up (for a shared group, to a lap behind
     * the cursor and on over the claim words that say handled).
     */
    private void checkDoneBehind(long n, long cursor, boolean ownPosition) {
        if (!required) {
            return;
        }
        long done = ring.done(group);
        if (done == Ring.UNSET || done >= n) {
            return;
        }
        long floor = ownPosition ? n : lapBehind(cursor);
        boolean moved = done < floor && Ring.LONG.compareAndSet(memory, doneAt, done, floor);
        if (moved) {
            ring.countCorrupt("group '" + group() + "': its done was " + done + ", behind its member at " + n
                    + "; moved to " + floor);
        }
        if (!ownPosition) {
            // On over the claim words that say handled: so does a done damaged exactly a lap back (a
            // full ring, which a slow member's message at done makes too, and then it stops there).
            ring.advanceDone(group);
            moved |= ring.done(group) != done;
        }
        if (moved) {
            ring.wakeProducers();
        }
    }

    /**
     * Moves the group's done sequence past this member's finished run {@code [from, to)}: when done
     * already lies within the run, everything below {@code to} is done and one compare-and-set
     * moves it there, with no scan of the run's claim words. Then, or when there is no run, the
     * claim words from done on are scanned: another member may have finished messages after the
     * run while the run held done back (and that member's scan stopped at the run).
     */
    private void advanceDone(long from, long to) {
        if (from != NO_RUN) {
            long done = ring.done(group);
            while (done >= from && done < to) {
                if (Ring.LONG.compareAndSet(memory, doneAt, done, to)) {
                    long cw = (long) Ring.LONG.getVolatile(memory, claimAt(to));
                    if (!isTag(cw, to) || state(cw) != DONE) {
                        return; // the common case: nobody finished the message after the run yet
                    }
                    break;
                }
                done = ring.done(group);
            }
        }
        ring.advanceDone(group);
    }

    /** Where the group's claim word for {@code sequence} lives ({@link Ring#claim} for this group). */
    private long claimAt(long sequence) {
        return claimBase + 8 * (sequence & ring.mask);
    }

    /**
     * Where to start: {@code next}, unless the message at the group's done sequence was handed back
     * while {@code next} had moved past it (a member passes a message another one has claimed); then
     * there. Handed back by recovery (its member died: {@code REDELIVER}), or by a member that could
     * not open its memfd now (the word it replaced, of an earlier lap, on a published slot): below
     * {@code next}, every other message's word is this lap's, claimed or done.
     */
    private long redeliverableAtDone(long next) {
        long done = ring.done(group);
        if (done == Ring.UNSET) {
            return next;
        }
        if (done >= next) {
            // Past next (an exclusive member moves done, not next): claim words below done may be an
            // exclusive member's stale ones, and only done says those messages are finished.
            return done;
        }
        long cw = (long) Ring.LONG.getAcquire(memory, claimAt(done));
        if (isTag(cw, done) && state(cw) == REDELIVER) {
            return done;
        }
        if (isBefore(cw, done)) {
            long h = ring.header(ring.slot(done));
            return isTag(h, done) && state(h) == PUBLISHED ? done : next;
        }
        return next;
    }

    /**
     * Waits for messages with the channel's wait strategy and hands them to {@code handler}.
     *
     * @param handler receives each message
     * @param limit the most messages to hand out
     * @param timeout the longest wait
     * @return how many were handed out; 0 after the timeout
     * @throws MemfdUnavailableException as {@link #poll} does
     */
    public int take(MessageHandler handler, int limit, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        idler.reset();
        while (true) {
            int delivered = poll(handler, limit);
            if (delivered > 0) {
                return delivered;
            }
            long now = System.nanoTime();
            if (now - deadline >= 0) {
                return 0;
            }
            if (waiter != null && idler.shouldSleep()) {
                int seen = ring.sleepOnData();
                if (available()) {
                    ring.awaitData(waiter, seen + 1, 1); // cancel the sleep: something arrived
                } else {
                    // Bounded by half the liveness timeout, so that a hole nobody else fills (a
                    // producer that died before marking its slot) is still checked in time.
                    ring.awaitData(waiter, seen, Math.min(deadline - now, Math.max(50_000_000L, livenessNanos / 2)));
                }
            } else {
                idler.idle();
            }
        }
    }

    /** Whether the next message of the group (or a hole to check) is there. */
    private boolean available() {
        long n = exclusive && position != RESYNC ? position
                : (long) Ring.LONG.getAcquire(memory, ring.group(group) + GROUP_NEXT_OFFSET);
        long done = ring.done(group);
        if (done != Ring.UNSET && done > n) {
            n = done; // an exclusive member moved done, not next
        }
        long h = ring.header(ring.slot(n));
        return (isTag(h, n) && state(h) != WRITING) || ring.cursor() > n;
    }

    /**
     * Hands a published message to the handler: inline payloads here (small enough to be inlined
     * into {@link #poll}), references in their own methods. False when nothing was handed out (the
     * frame was damaged, counted; or its payload was lost, counted).
     */
    private boolean deliver(MessageHandler handler, long n, long slot, long typeAndLength, boolean redelivered) {
        int type = typeOf(typeAndLength);
        if (type != INLINE) {
            return type == SLOT_REF ? deliverSlotRef(handler, n, slot, redelivered)
                    : type == MEMFD_REF ? deliverMemfd(handler, n, slot, redelivered)
                    : corrupt(n, "has frame type " + type);
        }
        int length = lengthOf(typeAndLength);
        if (length < 0 || length > inlineCapacity) {
            return corrupt(n, "states an inline length of " + length + " in a slot that holds " + inlineCapacity);
        }
        if (required) {
            message.set(readOnly, slot + SLOT_BODY_OFFSET, length, n, redelivered, INLINE);
        } else if (!copyInline(n, slot, length, redelivered)) {
            return false;
        }
        handler.onMessage(message);
        return true;
    }

    /** Counts a damaged frame; false, for a delivery to return. */
    private boolean corrupt(long n, String what) {
        ring.countCorrupt("group '" + group() + "': sequence " + n + " " + what + "; not delivered");
        return false;
    }

    /**
     * An optional group's look, after reading a reference's fields from slot {@code slot}, that the
     * slot still holds message {@code n}: a producer that laps the group marks the slot before it
     * writes the next lap's fields there (the reference it names is then allocated and current, and
     * would be handed out as this message, then again as its own). A required group is never lapped.
     */
    private boolean stillHolds(long n, long slot) {
        VarHandle.loadLoadFence(); // the fields before the header: a producer's mark comes before them
        return isTag(ring.header(slot), n);
    }

    /** An optional group's inline payload: copied, then checked against overrun. */
    private boolean copyInline(long n, long slot, int length, boolean redelivered) {
        MemorySegment local = scratch(length);
        MemorySegment.copy(memory, slot + SLOT_BODY_OFFSET, local, 0, length);
        VarHandle.loadLoadFence(); // the copy before the check: a producer's mark comes before its bytes
        if (!isTag(ring.header(slot), n)) {
            return lost();
        }
        message.set(copyView, 0, length, n, redelivered, INLINE);
        return true;
    }

    private boolean deliverSlotRef(MessageHandler handler, long n, long slot, boolean redelivered) {
        long ref = memory.get(ValueLayout.JAVA_LONG, slot + SLOT_BODY_OFFSET);
        long length = memory.get(ValueLayout.JAVA_LONG, slot + SLOT_BODY_OFFSET + 8);
        if (!required && !stillHolds(n, slot)) {
            return lost(); // lapped: what was read may be the next lap's reference
        }
        long capacity = ring.pool.capacityOf(ref);
        if (capacity < 0 || length < 0 || length > capacity) {
            return corrupt(n, "names pool slot 0x" + Long.toHexString(ref) + " (" + capacity + " bytes) for "
                    + length + " bytes");
        }
        if (!ring.pool.isCurrent(ref)) {
            // freed under an optional group, or its sender died before publishing
            return required ? lostLogged(n, "names pool slot 0x" + Long.toHexString(ref) + ", no longer current")
                    : lost();
        }
        // The extent's read-only view and an offset: no slice per message.
        MemorySegment extent = ring.pool.readOnlyExtent(ref);
        long at = ring.pool.offsetInExtent(ref);
        if (required) {
            message.set(extent, at, length, n, redelivered, SLOT_REF);
        } else {
            MemorySegment local = scratch(length);
            MemorySegment.copy(extent, at, local, 0, length);
            VarHandle.loadLoadFence();
            if (!ring.pool.isCurrent(ref)) {
                return lost();
            }
            message.set(copyView, 0, length, n, redelivered, SLOT_REF);
        }
        handler.onMessage(message);
        return true;
    }

    private boolean deliverMemfd(MessageHandler handler, long n, long slot, boolean redelivered) {
        int index = memory.get(ValueLayout.JAVA_INT, slot + SLOT_BODY_OFFSET);
        int generation = memory.get(ValueLayout.JAVA_INT, slot + SLOT_BODY_OFFSET + 4);
        long length = memory.get(ValueLayout.JAVA_LONG, slot + SLOT_BODY_OFFSET + 8);
        if (!required && !stillHolds(n, slot)) {
            return lost(); // lapped: what was read may be the next lap's lease
        }
        if (index < 0 || index >= ring.segment.leases().capacity() || length < 0) {
            return corrupt(n, "names memfd lease " + index + " for " + length + " bytes");
        }
        LeaseTable.Lease lease = ring.segment.leases().lookup(index, generation);
        if (lease == null) {
            // its sender died, or closed it before this group read it
            return required
                    ? lostLogged(n, "names memfd lease " + index + " of generation " + generation + ", no longer held")
                    : lost();
        }
        if (length > lease.size()) {
            return corrupt(n, "names " + length + " bytes of a memfd of " + lease.size());
        }
        MemfdBuffer buffer;
        try {
            buffer = ring.segment.leases().open(lease, length);
        } catch (MemfdUnavailableException e) {
            unread = true; // the poll leaves the message where it is, for its next look
            throw new MemfdUnavailableException("message " + n + " of channel '" + ring.name + "', group '" + group()
                    + "' stays in the ring, unread, and the next poll tries it again: " + e.getMessage(), e.getCause());
        }
        if (buffer == null) {
            // its sender died, or ended the lease while this group opened it
            return required ? lostLogged(n, "names memfd lease " + index + " whose memfd could not be opened") : lost();
        }
        try (buffer) {
            message.set(buffer.readOnlySlice(0, length), 0, length, n, redelivered, MEMFD_REF);
            handler.onMessage(message);
            return true;
        }
    }

    private MemorySegment scratch(long length) {
        if (copy.byteSize() < length) {
            copy = Arena.ofAuto().allocate(Math.max(length, 2 * copy.byteSize()), 8);
            copyView = copy.asReadOnly();
        }
        return copy;
    }

    /**
     * Counts a message a required group lost as {@link #lost()} does, and logs it with the reason:
     * it happens only when the message's sender died or let go of its memfd (or on damage). The
     * callers build the reason only for a required group: an optional one loses messages to
     * overrun, as often as it is lapped, and allocates nothing for them.
     */
    private boolean lostLogged(long n, String why) {
        Ring.LOG.log(System.Logger.Level.WARNING, "channel '" + ring.name + "', required group '" + group()
                + "': message " + n + " " + why + "; counted lost");
        return lost();
    }

    /** Counts a message the group lost; false, for a delivery to return. */
    private boolean lost() {
        ring.groupCount(group, GROUP_LOST_OFFSET);
        return false;
    }

    /**
     * An optional group fell a lap behind: counts the loss and moves done to the oldest sequence still
     * in the ring, which it returns (the caller moves the group's next).
     */
    private long overrun(long n) {
        long cursor = ring.cursor();
        long oldest = Math.max(n + 1, cursor - ring.capacity);
        ring.groupAdd(group, GROUP_LOST_OFFSET, oldest - n);
        long done = ring.done(group);
        if (done < oldest) {
            Ring.LONG.compareAndSet(memory, doneAt, done, oldest);
        }
        return oldest;
    }

    /**
     * Whether header {@code h} says that message {@code n} is not there yet: the slot still holds the
     * previous lap, or is being written for {@code n}. An exclusive member then stays where it is (a
     * slot being written is the commonest thing a member that keeps up with its producer sees, and
     * the shared way would cost it the group's next, the cursor's and done's lines), after the checks
     * that bound a wait on a producer that died or a damaged header.
     */
    private boolean notThereYet(long n, long h) {
        if (isTag(h, n - ring.capacity)) {
            checkHole(n, h, true);
            return true;
        }
        if (isTag(h, n) && state(h) == WRITING) {
            checkWriter(n, h);
            return true;
        }
        return false;
    }

    /**
     * Whether this empty poll at {@code n} skips the checks below the cursor: a single producer writes
     * (marked or not) only the slot at the cursor and publishes it before it moves the cursor, so what
     * such a poll sees is nothing yet unless the header was damaged. A member that has found nothing at
     * one sequence for {@link #CHECK_AFTER_NANOS} looks, in one empty poll of {@link #CHECK_EVERY}
     * (the others do not read the clock), so that damage still ends after the liveness timeout however
     * rarely its caller polls; a member that keeps up with its producer never reads the cursor's line,
     * which the producer writes for every message: each such read waited for the line to come from
     * the producer's core, and a message that arrived meanwhile waited with it.
     */
    private boolean skipsCheck(long n) {
        if (!ring.singleProducer) {
            return false;
        }
        if (emptyAt != n) {
            emptyAt = n;
            emptySince = System.nanoTime();
            emptyPolls = 0;
            return true;
        }
        return (++emptyPolls & (CHECK_EVERY - 1)) != 0 || System.nanoTime() - emptySince < CHECK_AFTER_NANOS;
    }

    /**
     * A sequence below the cursor whose slot is still the old lap's: fill it after the liveness
     * timeout. From several producers, a producer died between its claim and its mark (a skip);
     * from a single producer, which publishes before it moves the cursor, the header was damaged (a skip
     * counted as corrupt).
     */
    private void checkHole(long n, long h, boolean ownPosition) {
        if (skipsCheck(n)) {
            return;
        }
        long cursor = ring.cursor();
        if (cursor <= n) {
            holeSequence = -1;
            checkDoneBehind(n, cursor, ownPosition);
            return;
        }
        if (stuckPastLiveness(n)) {
            if (ring.singleProducer) {
                ring.replaceDamaged(n, h);
            } else {
                ring.fillUnmarkedHole(n, h);
            }
        }
    }

    /**
     * A header that no protocol step writes, at a sequence producers have claimed: after the
     * liveness timeout it is replaced by a skip and counted as corrupt, so the group moves on.
     */
    private void checkDamaged(long n, long h) {
        if (ring.cursor() > n && stuckPastLiveness(n)) {
            ring.replaceDamaged(n, h);
        }
    }

    /**
     * A slot being written: its writer publishes it, or recovery ends it when the writer dies. A
     * slot that names no attached writer after the liveness timeout is damaged.
     */
    private void checkWriter(long n, long h) {
        if (!skipsCheck(n) && ring.cursor() > n && stuckPastLiveness(n) && ring.writerGone(peer(h))) {
            ring.replaceDamaged(n, h);
        }
    }

    /** Whether the group has been stuck at {@code n} for longer than the liveness timeout. */
    private boolean stuckPastLiveness(long n) {
        long now = System.nanoTime();
        if (holeSequence != n) {
            holeSequence = n;
            holeSince = now;
            return false;
        }
        if (now - holeSince > livenessNanos) {
            holeSequence = -1;
            return true;
        }
        return false;
    }

    /** Whether this is an exclusive member that knows its next sequence (else its next poll reads it from the group's done). */
    boolean keepsItsPosition() {
        return exclusive && position != RESYNC;
    }

    /** Leaves the group (the group itself stays, and a required one keeps gating producers). */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            // An exclusive member says where the next member looks first (it also looks at done,
            // which is here already).
            ring.unsubscribed(group, exclusive, keepsItsPosition() ? position : Ring.UNSET);
        }
    }
}
