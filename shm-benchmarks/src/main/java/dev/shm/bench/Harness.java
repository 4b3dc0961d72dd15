package dev.shm.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;
import org.HdrHistogram.Histogram;

/**
 * The cross-process harness: in one invocation it runs our channel and its peers, each as two JVMs
 * (this one sends, a child echoes or receives), with the same payloads, and prints round-trip
 * percentiles, one-way throughput and our ratios to the best Aeron configuration of the same run.
 *
 * <p>Each repeat runs every payload, and for each payload every case back to back (round trips,
 * then streams), so that cases are interleaved in time; the report takes medians across repeats and
 * ratios within each repeat. See {@code docs/performance.md}.
 *
 * {@snippet :
 * // shm-benchmarks/run.sh --repeats 5 --payloads 32,64,1024,1048576 --out docs/images
 * }
 */
public final class Harness {

    /** What a run does; parsed from the command line. */
    public static final class Options {
        int repeats = 5;
        List<Kind> cases = List.of(Kind.values());
        int[] payloads = {32, 64, 1024, 1 << 20};
        /*
         * Long enough that the timed part (after the 20 % warm-up) runs well past the receiving JVM's
         * JIT compilations: with 2,000,000 the 100 ms window often overlapped a C2 compile, whose
         * thread takes one of the two cores from a spinning side, and results spread 3x.
         */
        int messages = 10_000_000;
        int roundTrips = 200_000;
        int warmup = 50_000;
        int wakeRoundTrips = 2_000;
        Duration wakePause = Duration.ofMillis(1);
        Duration idleWindow = Duration.ofSeconds(10);
        Duration childBound = Duration.ofSeconds(180);
        Path out;
        boolean pin = true;
        boolean quiet;

        /**
         * Parses options.
         *
         * @param args {@code --repeats N --cases a,b --payloads 32,64 --messages N --round-trips N
         *     --warmup N --wake-round-trips N --idle-seconds N --out DIR --no-pin --quiet}
         * @return the options
         */
        public static Options parse(String... args) {
            Options o = new Options();
            for (int i = 0; i < args.length; i++) {
                String arg = args[i];
                String value = i + 1 < args.length ? args[i + 1] : null;
                switch (arg) {
                    case "--repeats" -> o.repeats = Integer.parseInt(value);
                    case "--cases" -> o.cases = Arrays.stream(value.split(",")).map(Kind::of).sorted().toList();
                    case "--payloads" -> o.payloads = Arrays.stream(value.split(",")).mapToInt(Harness::size).toArray();
                    case "--messages" -> o.messages = Integer.parseInt(value);
                    case "--round-trips" -> o.roundTrips = Integer.parseInt(value);
                    case "--warmup" -> o.warmup = Integer.parseInt(value);
                    case "--wake-round-trips" -> o.wakeRoundTrips = Integer.parseInt(value);
                    case "--idle-seconds" -> o.idleWindow = Duration.ofMillis((long) (Double.parseDouble(value) * 1000));
                    case "--out" -> o.out = Path.of(value);
                    case "--no-pin" -> {
                        o.pin = false;
                        continue;
                    }
                    case "--quiet" -> {
                        o.quiet = true;
                        continue;
                    }
                    default -> throw new IllegalArgumentException("unknown option " + arg + "; options: --repeats N "
                            + "--cases floor,raw-ring,shm,aeron-shared,aeron-invoker,agrona,uds,tcp,si-shm,si-tcp,blocking "
                            + "--payloads 32,64,1k,1m --messages N --round-trips N --warmup N --wake-round-trips N "
                            + "--idle-seconds S --out DIR --no-pin --quiet");
                }
                if (value == null) {
                    throw new IllegalArgumentException("option " + arg + " needs a value");
                }
                i++;
            }
            if (o.repeats < 1) {
                throw new IllegalArgumentException("repeats=" + o.repeats + " must be at least 1");
            }
            return o;
        }
    }

    private final Options options;
    private final Results results;
    private final Path base;
    private final int childCpu;
    private final boolean pinned;
    private final int cpus = Runtime.getRuntime().availableProcessors();

    private Harness(Options options, Path base) {
        this.options = options;
        this.results = new Results(options.repeats);
        this.base = base;
        // Test the call once; the sender pins itself only around each measurement (see measure).
        this.pinned = options.pin && cpus >= 2 && Affinity.unpinCurrentThread(cpus);
        this.childCpu = pinned ? 1 : -1;
    }

    /**
     * Runs the harness and prints its report.
     *
     * @param args the options (see {@link Options#parse})
     * @throws Exception when the run cannot start
     */
    public static void main(String[] args) throws Exception {
        Options options = Options.parse(args);
        Results results = run(options);
        System.exit(results.failures() == 0 ? 0 : 1);
    }

    /**
     * Runs every repeat, prints the report, and writes it (with charts) under {@code --out}.
     *
     * @param options the run
     * @return the results
     * @throws IOException when the run's directory cannot be made
     */
    public static Results run(Options options) throws IOException {
        Path shm = Path.of("/dev/shm");
        Path base = Files.createTempDirectory(Files.isDirectory(shm) && Files.isWritable(shm) ? shm
                : Path.of(System.getProperty("java.io.tmpdir")), "shm-bench-");
        Thread cleanup = new Thread(() -> deleteTree(base));
        Runtime.getRuntime().addShutdownHook(cleanup);
        try {
            Harness harness = new Harness(options, base);
            harness.runAll();
            Report report = new Report(options, harness.results, harness.pinned, harness.cpus);
            System.out.println(report.markdown());
            if (options.out != null) {
                report.write(options.out);
            }
            return harness.results;
        } finally {
            deleteTree(base);
            Runtime.getRuntime().removeShutdownHook(cleanup);
        }
    }

    private void runAll() {
        for (int r = 0; r < options.repeats; r++) {
            log("repeat " + (r + 1) + " of " + options.repeats);
            if (Arrays.stream(options.payloads).anyMatch(p -> p >= 64 << 10)) {
                int largest = Arrays.stream(options.payloads).max().orElseThrow();
                double copy = copyBandwidth(largest);
                results.put(r, "copy", largest, Results.COPY, copy);
                log(String.format(Locale.ROOT, "  MemorySegment.copy %s: %.0f MB/s", label(largest), copy));
            }
            for (int payload : options.payloads) {
                for (Kind kind : options.cases) {
                    if (kind.hasRtt() && kind != Kind.BLOCKING) {
                        rtt(r, kind, payload);
                    }
                }
                for (Kind kind : options.cases) {
                    if (kind.hasStream()) {
                        stream(r, kind, payload);
                    }
                }
            }
            if (options.cases.contains(Kind.BLOCKING)) {
                idle(r);
                wake(r, Arrays.stream(options.payloads).min().orElse(32));
            }
        }
    }

    // ------------------------------------------------------------------ measurements

    private int roundTrips(Kind kind, int payload) {
        int count = payload <= 64 << 10 ? options.roundTrips : Math.max(100, options.roundTrips / 100);
        // A quarter for Spring Integration, whose round trips take microseconds, not hundreds of
        // nanoseconds: 50,000 by default, after 25,000 of warm-up (warmup). With 20,000 after 5,000 the
        // timed part ran before the JIT had compiled the flows: 56-128 us against 6 us after.
        return kind.isSpring() ? Math.max(100, count / 4) : count;
    }

    private int warmup(Kind kind, int payload) {
        int count = payload <= 64 << 10 ? options.warmup : Math.max(20, options.warmup / 100);
        return kind.isSpring() ? Math.max(20, count / 2) : count;
    }

    private int streamMessages(Kind kind, int payload) {
        if (kind.isSpring()) {
            // A tenth: a Message per send, about a million a second at most (Spring Integration's TCP
            // adapters, about 100,000). A twentieth was too short for the JIT: the 1 KiB stream of
            // si-shm measured 90,000 msgs/s while C2 still compiled the flows, 215,000 after.
            return Math.max(200, streamMessages(Kind.SHM, payload) / 10);
        }
        if ((kind == Kind.UDS || kind == Kind.TCP) && payload <= 64 << 10) {
            // A tenth: at about a million messages a second, sockets pass their JIT warm-up anyway.
            return Math.max(1000, streamMessages(Kind.SHM, payload) / 10);
        }
        if (payload <= 256) {
            return options.messages;
        }
        if (payload <= 64 << 10) {
            return Math.max(1000, options.messages / 5);
        }
        // 20,000 at 1 MiB: with 4,000 (800 of them warm-up) the timed part ran before the JIT had
        // compiled our send path, at half the speed it reaches after (docs/performance.md).
        return Math.max(200, options.messages / 500);
    }

    private void rtt(int repeat, Kind kind, int payload) {
        Spec spec = new Spec(kind, Spec.Mode.RTT, payload, dir(repeat, kind, payload, "rtt"), 0, warmup(kind, payload),
                roundTrips(kind, payload));
        measure(spec, (endpoint, child) -> {
            Histogram histogram = pingPong(endpoint, spec, 0);
            finish(child, endpoint, spec);
            record(repeat, kind.label(), payload, histogram);
            log(String.format(Locale.ROOT, "  %-14s %8s rtt  p50 %8.0f ns  p99 %8.0f ns  p99.9 %8.0f ns", kind.label(),
                    label(payload), (double) histogram.getValueAtPercentile(50),
                    (double) histogram.getValueAtPercentile(99), (double) histogram.getValueAtPercentile(99.9)));
        });
    }

    private Histogram pingPong(Endpoint endpoint, Spec spec, long pauseNanos) {
        Histogram histogram = new Histogram(60_000_000_000L, 3);
        long total = spec.total();
        for (long i = 0; i < total; i++) {
            long start = System.nanoTime();
            endpoint.send(i);
            while (endpoint.poll(1) == 0) {
                Endpoint.checkAborted();
                Endpoint.idle();
            }
            long elapsed = System.nanoTime() - start;
            if (i >= spec.warmup()) {
                histogram.recordValue(elapsed);
            }
            if (pauseNanos > 0) {
                LockSupport.parkNanos(pauseNanos);
            }
        }
        return histogram;
    }

    private void stream(int repeat, Kind kind, int payload) {
        int count = streamMessages(kind, payload);
        Spec spec = new Spec(kind, Spec.Mode.STREAM, payload, dir(repeat, kind, payload, "stream"), 0, count / 5, count);
        measure(spec, (endpoint, child) -> {
            long total = spec.total();
            for (long i = 0; i < total; i++) {
                endpoint.send(i);
            }
            long[] result = finish(child, endpoint, spec);
            double msgs = result[0] * 1e9 / result[1];
            double mbs = msgs * payload / 1e6;
            results.put(repeat, kind.label(), payload, Results.MSGS, msgs);
            results.put(repeat, kind.label(), payload, Results.MBS, mbs);
            log(String.format(Locale.ROOT, "  %-14s %8s one-way %,14.0f msgs/s %,10.0f MB/s", kind.label(),
                    label(payload), msgs, mbs));
        });
    }

    private void idle(int repeat) {
        Spec spec = new Spec(Kind.BLOCKING, Spec.Mode.IDLE, 32, dir(repeat, Kind.BLOCKING, 32, "idle"), 0, 0, 1);
        measure(spec, (endpoint, child) -> {
            sleep(Duration.ofSeconds(1)); // let the child settle: JIT, class loading
            ProcessHandle handle = child.handle();
            Duration cpu0 = handle.info().totalCpuDuration().orElseThrow();
            long wall0 = System.nanoTime();
            sleep(options.idleWindow);
            Duration cpu1 = handle.info().totalCpuDuration().orElseThrow();
            long wall = System.nanoTime() - wall0;
            double percent = 100.0 * cpu1.minus(cpu0).toNanos() / wall;
            endpoint.send(0); // wakes the child, which then exits
            finish(child, endpoint, spec);
            results.put(repeat, Kind.BLOCKING.label(), 0, Results.IDLE_CPU, percent);
            log(String.format(Locale.ROOT, "  blocking idle subscriber: %.2f%% of a core over %.1f s (whole JVM)",
                    percent, wall / 1e9));
        });
    }

    private void wake(int repeat, int payload) {
        Spec spec = new Spec(Kind.BLOCKING, Spec.Mode.RTT, payload, dir(repeat, Kind.BLOCKING, payload, "wake"), 0,
                Math.max(10, options.wakeRoundTrips / 10), options.wakeRoundTrips);
        measure(spec, (endpoint, child) -> {
            Histogram histogram = pingPong(endpoint, spec, options.wakePause.toNanos());
            finish(child, endpoint, spec);
            record(repeat, Kind.BLOCKING.label(), payload, histogram);
            log(String.format(Locale.ROOT, "  blocking wake-up rtt %s  p50 %8.0f ns  p99 %8.0f ns", label(payload),
                    (double) histogram.getValueAtPercentile(50), (double) histogram.getValueAtPercentile(99)));
        });
    }

    private void record(int repeat, String kase, int payload, Histogram histogram) {
        results.put(repeat, kase, payload, Results.P50, histogram.getValueAtPercentile(50));
        results.put(repeat, kase, payload, Results.P99, histogram.getValueAtPercentile(99));
        results.put(repeat, kase, payload, Results.P999, histogram.getValueAtPercentile(99.9));
    }

    /** Single-core {@code MemorySegment.copy} of {@code size} bytes between two native segments, MB/s. */
    static double copyBandwidth(int size) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment from = arena.allocate(size, 64);
            MemorySegment to = arena.allocate(size, 64);
            from.fill((byte) 7);
            for (int i = 0; i < 200; i++) {
                MemorySegment.copy(from, 0, to, 0, size);
            }
            long copies = 0;
            long start = System.nanoTime();
            long elapsed;
            do {
                MemorySegment.copy(from, 0, to, 0, size);
                copies++;
                elapsed = System.nanoTime() - start;
            } while (elapsed < 300_000_000L);
            return copies * (double) size * 1e3 / elapsed;
        }
    }

    // ------------------------------------------------------------------ plumbing

    /** The parent's part of one measurement. */
    @FunctionalInterface
    private interface Body {
        void run(Endpoint endpoint, ChildJvm child);
    }

    private void measure(Spec spec, Body body) {
        Endpoint endpoint = null;
        ChildJvm child = null;
        try {
            Files.createDirectories(spec.dir());
            endpoint = spec.kind().open(spec, true);
            Spec childSpec = endpoint instanceof SocketEndpoint socket && spec.kind() == Kind.TCP
                    ? new Spec(spec.kind(), spec.mode(), spec.payload(), spec.dir(), socket.port(), spec.warmup(),
                    spec.count())
                    : spec;
            Endpoint.clearAbort();
            child = ChildJvm.start(childSpec, childCpu, options.childBound, spec.dir().resolve("child.log"));
            child.onFailure(Endpoint::abort);
            child.awaitLine("READY", Duration.ofSeconds(60), endpoint);
            endpoint.awaitConnected();
            if (pinned) {
                Affinity.pinCurrentThread(0); // after the endpoint started its threads: they do not inherit the pin
            }
            try {
                body.run(endpoint, child);
            } finally {
                if (pinned) {
                    Affinity.unpinCurrentThread(cpus);
                }
            }
        } catch (RuntimeException | IOException e) {
            results.fail();
            System.err.println("FAILED " + spec.kind().label() + " " + spec.mode() + " " + label(spec.payload()) + ": "
                    + e);
            if (child != null) {
                child.kill();
            }
        } finally {
            if (child != null) {
                child.close();
            }
            if (endpoint != null) {
                try {
                    endpoint.close();
                } catch (RuntimeException e) {
                    System.err.println("closing " + spec.kind().label() + ": " + e);
                }
            }
            deleteTree(spec.dir());
        }
    }

    /** Waits for the child's result line, checks both sides' sequence errors; returns {count, nanos}. */
    private long[] finish(ChildJvm child, Endpoint endpoint, Spec spec) {
        String line = child.awaitLine("RESULT", options.childBound, endpoint);
        String[] parts = line.split(" ");
        long count = Long.parseLong(parts[1]);
        long nanos = Long.parseLong(parts[2]);
        long childErrors = Long.parseLong(parts[3]);
        if (childErrors != 0 || endpoint.errors() != 0) {
            throw new IllegalStateException(spec.kind().label() + " " + spec.mode() + " " + label(spec.payload())
                    + ": messages out of sequence: child " + childErrors + ", parent " + endpoint.errors());
        }
        return new long[] {count, nanos};
    }

    private Path dir(int repeat, Kind kind, int payload, String mode) {
        return base.resolve(repeat + "-" + kind.label() + "-" + payload + "-" + mode);
    }

    private void log(String line) {
        if (!options.quiet) {
            System.out.println(line);
        }
    }

    private static void sleep(Duration duration) {
        try {
            Thread.sleep(duration);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    static void deleteTree(Path root) {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(root)) {
            List<Path> all = new ArrayList<>(paths.toList());
            all.sort(Comparator.reverseOrder());
            for (Path path : all) {
                Files.deleteIfExists(path);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + root, e);
        }
    }

    /**
     * Parses a size: a number of bytes, or with a suffix {@code k} (KiB) or {@code m} (MiB).
     *
     * @param text the size
     * @return bytes
     */
    static int size(String text) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        if (t.endsWith("k")) {
            return Integer.parseInt(t.substring(0, t.length() - 1)) << 10;
        }
        if (t.endsWith("m")) {
            return Integer.parseInt(t.substring(0, t.length() - 1)) << 20;
        }
        return Integer.parseInt(t);
    }

    /**
     * Names a payload size: 32 B, 1 KiB, 1 MiB.
     *
     * @param payload bytes
     * @return the label
     */
    static String label(int payload) {
        if (payload >= 1 << 20 && payload % (1 << 20) == 0) {
            return (payload >> 20) + " MiB";
        }
        if (payload >= 1 << 10 && payload % (1 << 10) == 0) {
            return (payload >> 10) + " KiB";
        }
        return payload + " B";
    }
}
