package dev.shm.sample;

import java.util.Arrays;

/**
 * Counts events and keeps their latencies since the last report, for the one-line reports the
 * services print every second and the demo gathers.
 *
 * <p>Thread-safety: synchronized; the services record from one consumer thread at a time.
 */
public final class LatencyRecorder {

    private static final int CAPACITY = 1 << 16;

    private final String name;
    private final long[] nanos = new long[CAPACITY];
    private int size;
    private long count;
    private long redelivered;

    /**
     * Creates a recorder.
     *
     * @param name what it records, in reports
     */
    public LatencyRecorder(String name) {
        this.name = name;
    }

    /**
     * Records one event.
     *
     * @param latencyNanos its latency
     * @param wasRedelivered whether it came again after its first consumer died
     */
    public synchronized void record(long latencyNanos, boolean wasRedelivered) {
        count++;
        if (wasRedelivered) {
            redelivered++;
        }
        if (size < CAPACITY) {
            nanos[size++] = latencyNanos;
        }
    }

    /**
     * Returns the report line and starts a new interval: {@code STATS <name> count=… redelivered=…
     * p50=… p99=… p999=…} (latencies in microseconds, of the events since the last report).
     *
     * @return the line
     */
    public synchronized String report() {
        Arrays.sort(nanos, 0, size);
        String line = "STATS " + name + " count=" + count + " redelivered=" + redelivered + " p50=" + micros(0.50)
                + " p99=" + micros(0.99) + " p999=" + micros(0.999);
        size = 0;
        return line;
    }

    private String micros(double quantile) {
        if (size == 0) {
            return "-";
        }
        long value = nanos[Math.min(size - 1, (int) Math.ceil(quantile * size) - 1)];
        return String.format(java.util.Locale.ROOT, "%.1f", value / 1000.0);
    }
}
