package dev.shm.spring.support;

import dev.shm.core.MemfdUnavailableException;
import dev.shm.core.ring.Channel;
import dev.shm.core.ring.Subscription;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import org.apache.commons.logging.Log;
import org.apache.commons.logging.LogFactory;
import org.springframework.messaging.Message;

/**
 * A member of a channel's consumer group — or, with a concurrency above one, as many members, each
 * with a subscription and a thread of its own, competing for the group's messages like members in
 * other processes — that takes messages from the ring, decodes them and hands them to a sink. A
 * record that does not decode, and a sink that throws, go to the error sink; neither stops the
 * consumer. A message whose memfd this process cannot open now ({@code MemfdUnavailableException}:
 * no free descriptor, for one) stays in the ring, unread; the member logs that (at most every 10 s)
 * and tries again every 100 ms.
 *
 * <p>{@link #stop(Duration)} stops taking, lets the messages in hand finish (bounded), and leaves the
 * group; a message the ring handed out is always finished before its thread ends. A message is done
 * for the group only once its sink returned, so a process that dies with messages in hand has each
 * of them redelivered, whatever the concurrency.
 */
public final class ShmConsumer {

    private static final Log LOG = LogFactory.getLog(ShmConsumer.class);
    private static final Duration POLL = Duration.ofMillis(100);
    private static final int BATCH = 16;
    private static final Duration PAUSE_WAIT = Duration.ofSeconds(5);

    private final Channel channel;
    private final String group;
    private final boolean required;
    private final boolean exclusive;
    private final int concurrency;
    private final ShmMessageCodec codec;
    private final Consumer<Message<?>> sink;
    private final BiConsumer<Message<?>, Throwable> errors;
    private final Object pauseLock = new Object();
    /** Between start and stop, while a member lives. */
    private volatile boolean running;
    private volatile boolean paused;
    private final UnreadableLog unreadable = new UnreadableLog(LOG);
    /** The members of the last start (a member of an earlier start counts only in its own). */
    private volatile Members members = new Members(0);
    /** The threads of this start; emptied by stop. */
    private volatile List<Thread> threads = List.of();
    /** The threads of the last stop: one that outlived its drain timeout still finishes a message, as a member. */
    private volatile List<Thread> finishing = List.of();

    /** How many members of one start still run their loop, and how many of them wait out a pause (under the pause lock). */
    private static final class Members {
        int live;
        int idle;
        /** Set by stop: the members of this start end after their message, even if the consumer starts again. */
        volatile boolean stopped;

        Members(int live) {
            this.live = live;
        }
    }

    /**
     * Creates a consumer; {@link #start()} joins the group.
     *
     * @param channel the channel's ring
     * @param group the consumer group
     * @param required whether the group gates producers
     * @param exclusive whether this consumer holds the group alone (see {@code SubscriptionMode.EXCLUSIVE})
     * @param concurrency how many members (threads) this consumer runs; 1 when exclusive
     * @param codec the codec
     * @param sink receives each decoded message, on the consumer's thread
     * @param errors receives what failed: the decoded message and the failure, or, when decoding
     *     failed, a message whose payload is the raw record and a {@link ShmDecodingException}
     */
    public ShmConsumer(Channel channel, String group, boolean required, boolean exclusive, int concurrency,
                       ShmMessageCodec codec, Consumer<Message<?>> sink, BiConsumer<Message<?>, Throwable> errors) {
        if (concurrency < 1 || (exclusive && concurrency > 1)) {
            throw new IllegalArgumentException("a consumer of channel '" + channel.name() + "' runs 1 or more members, "
                    + "and an exclusive one exactly 1; got concurrency " + concurrency + (exclusive
                    ? " with exclusive: set the concurrency to 1, or exclusive to false" : ""));
        }
        this.channel = channel;
        this.group = group;
        this.required = required;
        this.exclusive = exclusive;
        this.concurrency = concurrency;
        this.codec = codec;
        this.sink = sink;
        this.errors = errors;
    }

    /**
     * Joins the group (so that every message sent from now on reaches it) and starts the threads.
     * Started again after every member failed, it starts anew.
     *
     * @throws ShmGroupBusyException when the group stayed held by another member (see {@link ShmRings#subscribe})
     */
    public synchronized void start() {
        if (running) {
            return;
        }
        if (!threads.isEmpty()) { // every member failed (running is false once the last loop closed its subscription)
            finishing = threads;
            threads = List.of();
        }
        List<Subscription> subscriptions = new ArrayList<>();
        try {
            for (int i = 0; i < concurrency; i++) {
                subscriptions.add(ShmRings.subscribe(channel, group, required, exclusive));
            }
        } catch (RuntimeException | Error e) {
            subscriptions.forEach(Subscription::close);
            throw e;
        }
        Members m = new Members(concurrency);
        String name = "shm-" + channel.name() + "-" + group;
        List<Thread> created = new ArrayList<>();
        for (int i = 0; i < concurrency; i++) {
            Subscription subscription = subscriptions.get(i);
            created.add(Thread.ofPlatform().daemon().name(concurrency == 1 ? name : name + "-" + (i + 1))
                    .unstarted(() -> run(subscription, m)));
        }
        threads = List.copyOf(created); // published before running: a pause sees every member
        members = m;
        running = true;
        for (int i = 0; i < concurrency; i++) {
            try {
                created.get(i).start();
            } catch (RuntimeException | Error e) { // no thread for this member: the start fails as a whole
                m.stopped = true; // the members started end after their message
                running = false;
                threads = List.of();
                finishing = List.copyOf(created.subList(0, i));
                for (int j = i; j < concurrency; j++) {
                    subscriptions.get(j).close();
                    memberEnded(m);
                }
                throw e;
            }
        }
    }

    /**
     * Joins the group and starts, after the consumer this one replaces (the same component's,
     * stopped before): an exclusive member whose thread outlived its drain timeout still holds the
     * group until its handler returns, and a join of this process before that fails at once; so
     * this one waits for it first, up to {@code wait}.
     *
     * @param previous the stopped consumer, or {@code null}
     * @param wait the longest wait for its thread
     * @throws IllegalStateException when that thread still runs after {@code wait}
     * @throws ShmGroupBusyException when the group stayed held by another member
     */
    public synchronized void startAfter(ShmConsumer previous, Duration wait) {
        // An exclusive consumer has one thread.
        Thread t = previous == null || previous.finishing.isEmpty() ? null : previous.finishing.getFirst();
        if (exclusive && t == Thread.currentThread()) {
            // Started again from the previous consumer's own handler: its exclusive subscription ends
            // only after this returns, so the join below would wait for itself.
            throw new IllegalStateException("the consumer of channel '" + channel.name() + "', group '" + group
                    + "' cannot start again from the handler of the consumer it replaces");
        }
        if (exclusive && t != null) {
            try {
                if (!t.join(wait)) {
                    throw new IllegalStateException("the consumer of channel '" + channel.name() + "', group '"
                            + group + "' that stopped before still handles a message after a further " + wait
                            + ", and holds the exclusive group until it returns: start again once it has"
                            + " (shm.shutdown.drain-timeout bounds both waits)");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted waiting for the previous consumer of channel '"
                        + channel.name() + "', group '" + group + "'", e);
            }
        }
        start();
    }

    /**
     * Tells whether the consumer runs.
     *
     * @return {@code true} between start and stop
     */
    public boolean isRunning() {
        return running;
    }

    /**
     * Stops taking messages until {@link #resume()}; the group membership stays. Returns once the
     * consumer's threads have finished what they were handling (waiting at most 5 s): from then on no
     * message is handed out. (Called from a consumer thread's own sink, it does not wait for that
     * thread, nor for the others.)
     */
    public void pause() {
        synchronized (pauseLock) {
            paused = true;
            long deadline = System.nanoTime() + PAUSE_WAIT.toNanos();
            List<Thread> all = threads;
            Members m = members;
            while (running && m.idle < m.live && !all.contains(Thread.currentThread())
                    && System.nanoTime() - deadline < 0) {
                try {
                    pauseLock.wait(10);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** Takes messages again after {@link #pause()}. */
    public void resume() {
        synchronized (pauseLock) {
            paused = false;
            pauseLock.notifyAll();
        }
    }

    /**
     * Tells whether the consumer is paused.
     *
     * @return {@code true} after pause, before resume
     */
    public boolean isPaused() {
        return paused;
    }

    /**
     * Stops: no new message is taken; the ones in hand (and the rest of the batches the ring already
     * handed out) are finished, waiting at most {@code drainTimeout} for all of them; then the group
     * is left. Called from a member's own handler, it returns at once, waiting for no member: each
     * ends after its message.
     *
     * @param drainTimeout the longest wait for the threads
     */
    public void stop(Duration drainTimeout) {
        List<Thread> all;
        synchronized (this) {
            all = threads;
            if (all.isEmpty()) {
                return; // not started, or stopped already
            }
            running = false;
            members.stopped = true;
            threads = List.of();
        }
        resume();
        finishing = all; // for the consumer that replaces this one (startAfter); a join of an ended thread returns at once
        if (all.contains(Thread.currentThread())) {
            return; // stopped from a handler: every loop ends after its message, without this thread waiting
        }
        long deadline = System.nanoTime() + drainTimeout.toNanos();
        List<Thread> late = new ArrayList<>();
        try {
            for (Thread t : all) {
                if (!t.join(Duration.ofNanos(Math.max(0, deadline - System.nanoTime())))) {
                    late.add(t);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        if (late.isEmpty()) {
            return;
        }
        LOG.warn("shm consumer of channel '" + channel.name() + "', group '" + group + "': " + late.size()
                + " member(s) still handle a message after " + drainTimeout + "; interrupting them");
        late.forEach(Thread::interrupt);
        long grace = System.nanoTime() + Duration.ofSeconds(1).toNanos();
        try {
            for (Thread t : late) {
                t.join(Duration.ofNanos(Math.max(0, grace - System.nanoTime())));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void run(Subscription subscription, Members m) {
        String name = channel.name();
        try (subscription) {
            while (!m.stopped) {
                if (paused) {
                    synchronized (pauseLock) {
                        m.idle++;
                        pauseLock.notifyAll();
                        try {
                            while (paused && !m.stopped) {
                                pauseLock.wait(POLL.toMillis());
                            }
                        } finally {
                            m.idle--;
                        }
                    }
                    continue;
                }
                try {
                    take(subscription, name);
                } catch (MemfdUnavailableException e) {
                    // The message stays in the ring, unread: try again a little later.
                    unreadable.unreadable("a member of the shm consumer of channel '" + name + "', group '" + group + "'",
                            "a message", e);
                    Thread.sleep(UnreadableLog.RETRY);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException | Error e) {
            LOG.error("a member of the shm consumer of channel '" + name + "', group '" + group + "' failed and "
                    + "stopped", e);
        } finally {
            memberEnded(m);
        }
    }

    /** Takes a batch, decodes each message and hands it to the sink; what fails goes to the error sink. */
    private void take(Subscription subscription, String name) {
        subscription.take(message -> {
            Message<?> decoded;
            try {
                decoded = codec.decode(message.buffer(), message.offset(), message.length(), name,
                        message.isRedelivered());
            } catch (RuntimeException e) {
                Message<byte[]> raw = RawRecords.of(message.toByteArray(), name, message.isRedelivered());
                errors.accept(raw, new ShmDecodingException(raw, e));
                return;
            }
            try {
                sink.accept(decoded);
            } catch (RuntimeException | Error e) {
                errors.accept(decoded, e);
            }
        }, BATCH, POLL);
    }

    /**
     * A member's loop ended (stopped, failed or interrupted): with the last one of the current start,
     * the consumer no longer runs (and may be started again).
     */
    private void memberEnded(Members m) {
        synchronized (pauseLock) {
            m.live--;
            pauseLock.notifyAll(); // a pause waits for the members that still live
            if (m.live == 0 && members == m) {
                running = false;
            }
        }
    }
}
