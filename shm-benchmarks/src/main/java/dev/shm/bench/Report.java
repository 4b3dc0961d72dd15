package dev.shm.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.IntToDoubleFunction;

/**
 * The report of a run: tables of medians (with the min–max across repeats), same-run ratios, the
 * targets met or missed, and the charts.
 */
final class Report {

    private static final String SHM = Kind.SHM.label();
    private static final String SHARED = Kind.AERON_SHARED.label();
    private static final String INVOKER = Kind.AERON_INVOKER.label();

    private final Harness.Options options;
    private final Results results;
    private final boolean pinned;
    private final int cpus;

    Report(Harness.Options options, Results results, boolean pinned, int cpus) {
        this.options = options;
        this.results = results;
        this.pinned = pinned;
        this.cpus = cpus;
    }

    String markdown() {
        StringBuilder md = new StringBuilder();
        md.append("## Results\n\n");
        md.append(environment()).append("\n\n");
        md.append("Medians of ").append(results.repeats()).append(" repeats, the smallest and largest in brackets. "
                + "Round trips in ns (HdrHistogram), one-way throughput in messages/s and MB/s (10^6 bytes of payload).\n\n");
        for (int payload : options.payloads) {
            md.append("### ").append(Harness.label(payload)).append("\n\n");
            md.append("| case | RTT p50 | RTT p99 | RTT p99.9 | msgs/s | MB/s |\n");
            md.append("| --- | ---: | ---: | ---: | ---: | ---: |\n");
            for (Kind kind : options.cases) {
                if (kind == Kind.BLOCKING) {
                    continue;
                }
                String k = kind.label();
                md.append("| ").append(k)
                        .append(" | ").append(cell(k, payload, Results.P50, 0))
                        .append(" | ").append(cell(k, payload, Results.P99, 0))
                        .append(" | ").append(cell(k, payload, Results.P999, 0))
                        .append(" | ").append(cell(k, payload, Results.MSGS, 1e6))
                        .append(" | ").append(cell(k, payload, Results.MBS, 0)).append(" |\n");
            }
            if (Double.isFinite(results.median("copy", payload, Results.COPY))) {
                md.append("| MemorySegment.copy, one core | | | | | ")
                        .append(cell("copy", payload, Results.COPY, 0)).append(" |\n");
            }
            md.append('\n');
        }
        md.append("### Same-run ratios (ours over the best Aeron of the same repeat; median of the repeats)\n\n");
        md.append("| payload | RTT p50 vs best Aeron | RTT p50 vs floor | msgs/s vs best Aeron | MB/s vs MemorySegment.copy |\n");
        md.append("| --- | ---: | ---: | ---: | ---: |\n");
        for (int payload : options.payloads) {
            md.append("| ").append(Harness.label(payload))
                    .append(" | ").append(ratioCell(rttVsAeron(payload)))
                    .append(" | ").append(ratioCell(rttVsFloor(payload)))
                    .append(" | ").append(ratioCell(tputVsAeron(payload)))
                    .append(" | ").append(ratioCell(tputVsCopy(payload))).append(" |\n");
        }
        md.append('\n');
        if (options.cases.contains(Kind.SI_SHM) && options.cases.contains(Kind.SI_TCP)) {
            md.append("### Spring Integration (si-shm over si-tcp in the same repeat; median of the repeats)\n\n");
            md.append("| payload | RTT p50 | msgs/s |\n");
            md.append("| --- | ---: | ---: |\n");
            for (int payload : options.payloads) {
                md.append("| ").append(Harness.label(payload))
                        .append(" | ").append(ratioCell(springRatio(payload, Results.P50)))
                        .append(" | ").append(ratioCell(springRatio(payload, Results.MSGS))).append(" |\n");
            }
            md.append('\n');
        }
        if (options.cases.contains(Kind.BLOCKING)) {
            int smallest = Arrays.stream(options.payloads).min().orElse(32);
            md.append("### Blocking wait strategy\n\n");
            md.append("| measure | value |\n| --- | ---: |\n");
            md.append("| idle subscriber CPU, % of one core (whole JVM, ").append(options.idleWindow.toSeconds())
                    .append(" s) | ").append(cell(Kind.BLOCKING.label(), 0, Results.IDLE_CPU, -1)).append(" |\n");
            md.append("| wake-up RTT p50, ").append(Harness.label(smallest)).append(" | ")
                    .append(cell(Kind.BLOCKING.label(), smallest, Results.P50, 0)).append(" |\n");
            md.append("| wake-up RTT p99 | ").append(cell(Kind.BLOCKING.label(), smallest, Results.P99, 0)).append(" |\n");
            md.append("| wake-up RTT p99.9 | ").append(cell(Kind.BLOCKING.label(), smallest, Results.P999, 0))
                    .append(" |\n\n");
        }
        md.append("### Targets\n\n");
        for (String line : targets()) {
            md.append("- ").append(line).append('\n');
        }
        if (results.failures() > 0) {
            md.append("\n**").append(results.failures()).append(" measurement(s) failed: see the log above.**\n");
        }
        return md.toString();
    }

    private String environment() {
        String cpu = "unknown CPU";
        try {
            cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .map(l -> l.substring(l.indexOf(':') + 1).trim()).findFirst().orElse(cpu);
        } catch (IOException e) {
            // keep "unknown"
        }
        return "Machine: " + cpu + ", " + cpus + " CPUs, Linux "
                + System.getProperty("os.version") + ". JVM: " + System.getProperty("java.vm.name") + " "
                + System.getProperty("java.runtime.version") + ". Working threads pinned: "
                + (pinned ? "yes (sender to CPU 0, child to CPU 1; other threads float)" : "no") + ".";
    }

    private List<String> targets() {
        List<String> lines = new ArrayList<>();
        int small = 32;
        if (has(small)) {
            double vsShared = Results.median(perRepeat(r -> results.get(r, SHM, small, Results.P50)
                    / results.get(r, SHARED, small, Results.P50)));
            lines.add(verdict(vsShared <= 1.0, "32 B RTT p50 ≤ Aeron SHARED's: ours/SHARED = " + ratio(vsShared)));
            double vsFloor = Results.median(rttVsFloor(small));
            lines.add(verdict(vsFloor <= 1.5, "32 B RTT p50 within 1.5× of the floor: ours/floor = " + ratio(vsFloor)));
            double p99 = results.median(SHM, small, Results.P99);
            lines.add(verdict(p99 <= 1000, "32 B RTT p99 ≤ 1 µs: " + ns(p99)));
        }
        if (has(64)) {
            double vsInvoker = Results.median(perRepeat(r -> results.get(r, SHM, 64, Results.MSGS)
                    / results.get(r, INVOKER, 64, Results.MSGS)));
            lines.add(verdict(vsInvoker >= 1.0, "64 B one-way msgs/s ≥ Aeron INVOKER's: ours/INVOKER = "
                    + ratio(vsInvoker)));
        }
        if (has(1024)) {
            double vsAeron = Results.median(tputVsAeron(1024));
            lines.add(verdict(vsAeron >= 1.0, "1 KiB one-way MB/s ≥ best Aeron's: ours/Aeron = " + ratio(vsAeron)));
        }
        if (has(1 << 20)) {
            double vsCopy = Results.median(tputVsCopy(1 << 20));
            lines.add(verdict(vsCopy >= 0.5, "1 MiB one-way MB/s ≥ 50% of single-core MemorySegment.copy: ours/copy = "
                    + ratio(vsCopy)));
        }
        if (options.cases.contains(Kind.BLOCKING)) {
            double idle = results.median(Kind.BLOCKING.label(), 0, Results.IDLE_CPU);
            lines.add(verdict(idle < 1.0, "idle blocking subscriber < 1% of a core: "
                    + String.format(Locale.ROOT, "%.2f%%", idle)));
        }
        return lines;
    }

    private boolean has(int payload) {
        return Arrays.stream(options.payloads).anyMatch(p -> p == payload);
    }

    private static String verdict(boolean met, String text) {
        return (met ? "**met**: " : "**missed**: ") + text;
    }

    private double[] perRepeat(IntToDoubleFunction f) {
        double[] row = new double[results.repeats()];
        for (int r = 0; r < row.length; r++) {
            row[r] = f.applyAsDouble(r);
        }
        return row;
    }

    private double bestAeronRtt(int r, int payload) {
        return Math.min(nanToInf(results.get(r, SHARED, payload, Results.P50)),
                nanToInf(results.get(r, INVOKER, payload, Results.P50)));
    }

    private double bestAeronTput(int r, int payload, String metric) {
        return Math.max(nanToZero(results.get(r, SHARED, payload, metric)),
                nanToZero(results.get(r, INVOKER, payload, metric)));
    }

    private double[] rttVsAeron(int payload) {
        return perRepeat(r -> results.get(r, SHM, payload, Results.P50) / bestAeronRtt(r, payload));
    }

    private double[] rttVsFloor(int payload) {
        return perRepeat(r -> results.get(r, SHM, payload, Results.P50)
                / results.get(r, Kind.FLOOR.label(), payload, Results.P50));
    }

    private double[] tputVsAeron(int payload) {
        return perRepeat(r -> results.get(r, SHM, payload, Results.MSGS) / bestAeronTput(r, payload, Results.MSGS));
    }

    private double[] springRatio(int payload, String metric) {
        return perRepeat(r -> results.get(r, Kind.SI_SHM.label(), payload, metric)
                / results.get(r, Kind.SI_TCP.label(), payload, metric));
    }

    private double[] tputVsCopy(int payload) {
        return perRepeat(r -> results.get(r, SHM, payload, Results.MBS) / results.get(r, "copy", payload, Results.COPY));
    }

    private static double nanToInf(double v) {
        return Double.isNaN(v) ? Double.POSITIVE_INFINITY : v;
    }

    private static double nanToZero(double v) {
        return Double.isNaN(v) ? 0 : v;
    }

    private String cell(String kase, int payload, String metric, double millionsAbove) {
        double[] row = results.all(kase, payload, metric);
        double median = Results.median(row);
        if (!Double.isFinite(median)) {
            return "–";
        }
        double[] range = Results.range(row);
        if (millionsAbove < 0) {
            return String.format(Locale.ROOT, "%.2f (%.2f–%.2f)", median, range[0], range[1]);
        }
        if (millionsAbove > 0 && median < 1e5) {
            return String.format(Locale.ROOT, "%,.0f (%,.0f–%,.0f)", median, range[0], range[1]);
        }
        if (millionsAbove > 0) {
            return String.format(Locale.ROOT, "%.2f M (%.2f–%.2f)", median / 1e6, range[0] / 1e6, range[1] / 1e6);
        }
        if (Results.MBS.equals(metric) || Results.COPY.equals(metric)) {
            return String.format(Locale.ROOT, "%,.0f (%,.0f–%,.0f)", median, range[0], range[1]);
        }
        return ns(median) + " (" + ns(range[0]) + "–" + ns(range[1]) + ")";
    }

    private static String ratioCell(double[] row) {
        double median = Results.median(row);
        if (!Double.isFinite(median)) {
            return "–";
        }
        double[] range = Results.range(row);
        return ratio(median) + " (" + ratio(range[0]) + "–" + ratio(range[1]) + ")";
    }

    private static String ratio(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.2f", v) : "–";
    }

    private static String ns(double v) {
        if (!Double.isFinite(v)) {
            return "–";
        }
        if (v >= 10_000) {
            return String.format(Locale.ROOT, "%,.1f µs", v / 1000);
        }
        return String.format(Locale.ROOT, "%,.0f ns", v);
    }

    /**
     * Writes {@code results.md} and the charts.
     *
     * @param dir where
     */
    void write(Path dir) {
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("results.md"), markdown());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the report to " + dir, e);
        }
        List<Kind> rttKinds = options.cases.stream().filter(k -> k.hasRtt() && k != Kind.BLOCKING).toList();
        List<String> percentiles = List.of(Results.P50, Results.P99, Results.P999);
        for (int payload : options.payloads) {
            double[][] values = new double[percentiles.size()][rttKinds.size()];
            for (int s = 0; s < percentiles.size(); s++) {
                for (int k = 0; k < rttKinds.size(); k++) {
                    values[s][k] = results.median(rttKinds.get(k).label(), payload, percentiles.get(s));
                }
            }
            Svg.bars(dir.resolve("rtt-" + Harness.label(payload).replace(" ", "") + ".svg"),
                    "Round trip, " + Harness.label(payload) + " (median of " + results.repeats() + " repeats)", "ns",
                    rttKinds.stream().map(Kind::label).toList(), List.of("p50", "p99", "p99.9"), values);
        }
        List<Kind> streamKinds = options.cases.stream().filter(Kind::hasStream).toList();
        List<String> payloadLabels = Arrays.stream(options.payloads).mapToObj(Harness::label).toList();
        for (String metric : List.of(Results.MSGS, Results.MBS)) {
            boolean mbs = metric.equals(Results.MBS);
            List<String> series = new ArrayList<>(streamKinds.stream().map(Kind::label).toList());
            if (mbs) {
                series.add("MemorySegment.copy");
            }
            double[][] values = new double[series.size()][options.payloads.length];
            for (int s = 0; s < series.size(); s++) {
                for (int p = 0; p < options.payloads.length; p++) {
                    values[s][p] = s < streamKinds.size()
                            ? results.median(streamKinds.get(s).label(), options.payloads[p], metric)
                            : results.median("copy", options.payloads[p], Results.COPY);
                }
            }
            Svg.bars(dir.resolve(mbs ? "throughput-mbs.svg" : "throughput-msgs.svg"),
                    "One-way throughput, " + (mbs ? "MB/s of payload" : "messages/s") + " (median of "
                            + results.repeats() + " repeats)", mbs ? "MB/s" : "msgs/s", payloadLabels, series, values);
        }
    }
}
