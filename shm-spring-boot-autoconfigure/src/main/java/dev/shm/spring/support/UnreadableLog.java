package dev.shm.spring.support;

import dev.shm.core.MemfdUnavailableException;
import java.time.Duration;
import org.apache.commons.logging.Log;

/**
 * For a reader that cannot open a message's memfd now ({@link MemfdUnavailableException}: no free
 * descriptor, for one) and leaves the message where it is, to try again every {@link #RETRY}: says
 * so, at most every 10 s, so that a shortage that lasts does not flood the log.
 *
 * <p>Thread-safety: safe from any thread (a race only logs once more).
 */
public final class UnreadableLog {

    /** How long a reader waits before it tries an unreadable message again. */
    public static final Duration RETRY = Duration.ofMillis(100);
    private static final Duration EVERY = Duration.ofSeconds(10);

    private final Log log;
    private volatile long last;

    /**
     * Creates the log.
     *
     * @param log where to say it
     */
    public UnreadableLog(Log log) {
        this.log = log;
    }

    /**
     * Says, unless said less than 10 s ago, that {@code reader} cannot read {@code what} now.
     *
     * @param reader who reads, e.g. "a member of the shm consumer of channel 'orders', group 'billing'"
     * @param what what it reads, e.g. "a message"
     * @param failure why
     */
    public void unreadable(String reader, String what, MemfdUnavailableException failure) {
        long now = System.nanoTime();
        long before = last;
        if (before == 0 || now - before >= EVERY.toNanos()) {
            last = now == 0 ? 1 : now;
            log.warn(reader + " cannot read " + what + " now, and tries again every " + RETRY.toMillis()
                    + " ms (logged at most every " + EVERY.toSeconds() + " s): " + failure.getMessage());
        }
    }
}
