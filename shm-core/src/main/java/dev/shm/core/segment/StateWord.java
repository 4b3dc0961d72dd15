package dev.shm.core.segment;

/**
 * The {@code [epoch:32][owner:16][state:16]} word that the directory and lease tables share with the
 * peer table: one compare-and-set moves the state and checks the epoch.
 */
final class StateWord {

    static final int NO_OWNER = 0xFFFF;

    private StateWord() {
    }

    static long of(int epoch, int owner, int state) {
        return ((long) epoch << 32) | ((long) (owner & 0xFFFF) << 16) | (state & 0xFFFF);
    }

    static int epoch(long word) {
        return (int) (word >>> 32);
    }

    static int owner(long word) {
        return (int) ((word >>> 16) & 0xFFFF);
    }

    static int state(long word) {
        return (int) (word & 0xFFFF);
    }
}
