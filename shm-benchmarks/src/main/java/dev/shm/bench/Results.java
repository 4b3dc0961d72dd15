package dev.shm.bench;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The values of a run: per case, payload and metric, one value per repeat (NaN where a repeat has
 * none). Medians and spreads are taken across repeats; ratios are taken within each repeat first
 * (only same-run ratios count on a machine whose core-to-core latency drifts), then their median.
 */
public final class Results {

    /** Round-trip median, nanoseconds. */
    public static final String P50 = "p50";
    /** Round-trip 99th percentile, nanoseconds. */
    public static final String P99 = "p99";
    /** Round-trip 99.9th percentile, nanoseconds. */
    public static final String P999 = "p99.9";
    /** One-way messages per second. */
    public static final String MSGS = "msgs/s";
    /** One-way megabytes (10^6 bytes) of payload per second. */
    public static final String MBS = "MB/s";
    /** CPU of an idle blocking subscriber, percent of one core. */
    public static final String IDLE_CPU = "idle-cpu%";
    /** Single-core MemorySegment.copy bandwidth, MB/s (case "copy"). */
    public static final String COPY = "copy-MB/s";

    private final int repeats;
    private final Map<String, double[]> values = new LinkedHashMap<>();
    private int failures;

    /**
     * Creates an empty result set.
     *
     * @param repeats how many repeats the run makes
     */
    public Results(int repeats) {
        this.repeats = repeats;
    }

    /**
     * Returns the number of repeats.
     *
     * @return repeats
     */
    public int repeats() {
        return repeats;
    }

    private static String key(String kase, int payload, String metric) {
        return kase + "/" + payload + "/" + metric;
    }

    /**
     * Records one value.
     *
     * @param repeat the repeat, 0-based
     * @param kase the case's label
     * @param payload the payload size (0 where none applies)
     * @param metric the metric
     * @param value the value
     */
    public synchronized void put(int repeat, String kase, int payload, String metric, double value) {
        double[] row = values.computeIfAbsent(key(kase, payload, metric), _ -> {
            double[] fresh = new double[repeats];
            Arrays.fill(fresh, Double.NaN);
            return fresh;
        });
        row[repeat] = value;
    }

    /**
     * Returns one repeat's value.
     *
     * @param repeat the repeat
     * @param kase the case
     * @param payload the payload
     * @param metric the metric
     * @return the value, or NaN
     */
    public synchronized double get(int repeat, String kase, int payload, String metric) {
        double[] row = values.get(key(kase, payload, metric));
        return row == null ? Double.NaN : row[repeat];
    }

    /**
     * Returns the values of every repeat.
     *
     * @param kase the case
     * @param payload the payload
     * @param metric the metric
     * @return one value per repeat (NaN where missing)
     */
    public synchronized double[] all(String kase, int payload, String metric) {
        double[] row = values.get(key(kase, payload, metric));
        if (row == null) {
            double[] none = new double[repeats];
            Arrays.fill(none, Double.NaN);
            return none;
        }
        return row.clone();
    }

    /**
     * Returns the median across repeats.
     *
     * @param kase the case
     * @param payload the payload
     * @param metric the metric
     * @return the median, or NaN without values
     */
    public double median(String kase, int payload, String metric) {
        return median(all(kase, payload, metric));
    }

    /**
     * Returns the median of the finite values.
     *
     * @param row the values
     * @return the median, or NaN
     */
    public static double median(double[] row) {
        double[] finite = Arrays.stream(row).filter(Double::isFinite).sorted().toArray();
        if (finite.length == 0) {
            return Double.NaN;
        }
        int mid = finite.length / 2;
        return finite.length % 2 == 1 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
    }

    /**
     * Returns the smallest and largest finite values.
     *
     * @param row the values
     * @return {min, max}, NaN without values
     */
    public static double[] range(double[] row) {
        double[] finite = Arrays.stream(row).filter(Double::isFinite).toArray();
        if (finite.length == 0) {
            return new double[] {Double.NaN, Double.NaN};
        }
        return new double[] {Arrays.stream(finite).min().orElseThrow(), Arrays.stream(finite).max().orElseThrow()};
    }

    /** Counts a measurement that failed. */
    public synchronized void fail() {
        failures++;
    }

    /**
     * Returns the failed measurements.
     *
     * @return how many failed
     */
    public synchronized int failures() {
        return failures;
    }
}
