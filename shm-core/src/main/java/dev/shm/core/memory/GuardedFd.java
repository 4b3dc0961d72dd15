package dev.shm.core.memory;

import dev.shm.core.internal.Libc;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;

/**
 * A file descriptor that is closed only when no thread uses it any more. A descriptor number is
 * reused by the kernel as soon as it is closed; closing while another thread is inside
 * {@code poll} or {@code recvmsg} on it could make that thread read an unrelated file. Users
 * {@link #acquire()} around each call and {@link #release()} after; {@link #close(IntConsumer)} marks
 * the descriptor closed, wakes the users, and the last of them closes it.
 */
final class GuardedFd {

    private static final int CLOSED = 1 << 30;

    private final int fd;
    private final String subject;
    /** The number of users, plus {@link #CLOSED} once closed. */
    private final AtomicInteger state = new AtomicInteger();

    GuardedFd(int fd, String subject) {
        this.fd = fd;
        this.subject = subject;
    }

    /** Returns the descriptor for one call; pair with {@link #release()}. */
    int acquire() {
        for (int s = state.get(); ; s = state.get()) {
            if ((s & CLOSED) != 0) {
                throw new IllegalStateException(subject + " is closed");
            }
            if (state.compareAndSet(s, s + 1)) {
                return fd;
            }
        }
    }

    void release() {
        if (state.decrementAndGet() == CLOSED) {
            Libc.closeQuietly(fd);
        }
    }

    boolean isClosed() {
        return (state.get() & CLOSED) != 0;
    }

    /**
     * Marks the descriptor closed; runs {@code wake} (with the descriptor still open) so that users
     * blocked on it return, and closes it now if nobody uses it, else when the last user releases.
     * Idempotent.
     */
    void close(IntConsumer wake) {
        for (int s = state.get(); (s & CLOSED) == 0; s = state.get()) {
            // Count this thread as a user while it wakes the others, so the descriptor stays open.
            if (state.compareAndSet(s, (s + 1) | CLOSED)) {
                if (s > 0) {
                    wake.accept(fd);
                }
                release();
                return;
            }
        }
    }
}
