package dev.shm.sample;

import dev.shm.core.ring.Channel;
import dev.shm.core.segment.Directory;
import dev.shm.core.segment.DirectoryDescriptor;
import dev.shm.core.segment.PeerInfo;
import dev.shm.core.segment.PeerState;
import dev.shm.core.segment.SegmentInspector;
import dev.shm.core.counters.SegmentCounters;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.springframework.boot.convert.DurationStyle;

/**
 * The demo: starts the sample services as separate JVMs on one host — two billing members, audit
 * with pricing, then orders — prints what flows between them every two seconds, SIGKILLs one
 * billing member part-way to show recovery, starts it again, and stops everything cleanly after
 * {@code --duration} or on Ctrl-C.
 */
public final class Demo {

    private static final Duration START_TIMEOUT = Duration.ofSeconds(120);

    private final PrintStream out;
    private final Options options;
    private final Map<String, Service> services = new LinkedHashMap<>();
    private final CountDownLatch interrupted = new CountDownLatch(1);
    private final java.util.concurrent.atomic.AtomicBoolean finishing = new java.util.concurrent.atomic.AtomicBoolean();

    private Demo(Options options, PrintStream out) {
        this.options = options;
        this.out = out;
    }

    /** The demo's options. */
    record Options(Duration duration, Duration killAfter, long rate, int portBase, Path directory, boolean kill) {

        static Options parse(String[] args) {
            Duration duration = Duration.ofSeconds(60);
            Duration killAfter = null;
            long rate = 2000;
            int portBase = 8080;
            Path directory = Path.of("/dev/shm/shm-demo");
            boolean kill = true;
            for (int i = 0; i < args.length; i++) {
                String arg = args[i];
                String value = i + 1 < args.length ? args[i + 1] : null;
                switch (arg) {
                    case "--duration" -> duration = seconds(arg, value);
                    case "--kill-after" -> killAfter = seconds(arg, value);
                    case "--rate" -> rate = Long.parseLong(required(arg, value));
                    case "--port-base" -> portBase = Integer.parseInt(required(arg, value));
                    case "--directory" -> directory = Path.of(required(arg, value));
                    case "--no-kill" -> {
                        kill = false;
                        continue;
                    }
                    default -> throw new IllegalArgumentException("unknown option '" + arg + "'; options: --duration 60s"
                            + " --kill-after 20s --no-kill --rate 2000 --port-base 8080 --directory /dev/shm/shm-demo");
                }
                i++;
            }
            if (killAfter == null) {
                killAfter = duration.multipliedBy(2).dividedBy(5);
            }
            return new Options(duration, killAfter, rate, portBase, directory, kill);
        }

        private static String required(String option, String value) {
            if (value == null) {
                throw new IllegalArgumentException(option + " needs a value");
            }
            return value;
        }

        /** {@code 60s}, {@code 2m}, {@code 500ms}; a bare number is seconds. */
        private static Duration seconds(String option, String value) {
            return DurationStyle.detectAndParse(required(option, value), ChronoUnit.SECONDS);
        }
    }

    /** One service JVM and the last report lines it printed. */
    private final class Service {
        final String name;
        final String profiles;
        final int port;
        final Map<String, String> stats = new ConcurrentHashMap<>();
        final Map<String, Long> lastCounts = new ConcurrentHashMap<>();
        volatile Process process;
        volatile Thread pump;
        volatile CountDownLatch ready;

        Service(String name, String profiles, int port) {
            this.name = name;
            this.profiles = profiles;
            this.port = port;
        }

        void start() throws IOException {
            List<String> command = new ArrayList<>();
            if (Files.isExecutable(Path.of("/usr/bin/setsid"))) {
                // A session of its own: Ctrl-C reaches the demo only, which stops the services in order.
                command.add("/usr/bin/setsid");
            }
            command.add(ProcessHandle.current().info().command().orElse("java"));
            command.add("--enable-native-access=ALL-UNNAMED");
            command.add("-Xmx256m");
            command.add("-XX:+UseSerialGC");
            String classpath = System.getProperty("java.class.path");
            if (classpath.endsWith(".jar") && !classpath.contains(java.io.File.pathSeparator)) {
                command.add("-jar");
                command.add(classpath);
            } else {
                command.add("-cp");
                command.add(classpath);
                command.add(SampleApplication.class.getName());
            }
            command.add("--spring.profiles.active=" + profiles);
            command.add("--server.port=" + port);
            command.add("--shm.directory=" + options.directory());
            command.add("--demo.rate=" + options.rate());
            command.add("--demo.parent-pid=" + ProcessHandle.current().pid());
            ready = new CountDownLatch(1);
            Process started = new ProcessBuilder(command).redirectErrorStream(true).start();
            process = started;
            pump = Thread.ofPlatform().daemon().name("demo-" + name).start(() -> pump(started));
        }

        private void pump(Process from) {
            try (BufferedReader reader = new BufferedReader(
                    new InputStreamReader(from.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null) {
                    if (line.startsWith("STATS ")) {
                        String[] parts = line.split(" ", 3);
                        stats.put(parts[1], parts.length > 2 ? parts[2] : "");
                    } else if (line.startsWith("READY")) {
                        ready.countDown();
                    } else if (!line.isBlank()) {
                        out.println("  " + name + " | " + line);
                    }
                }
            } catch (IOException e) {
                // the process ended
            }
        }

        void awaitReady() throws InterruptedException {
            long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
            while (!ready.await(200, TimeUnit.MILLISECONDS)) {
                if (!process.isAlive()) {
                    throw new IllegalStateException(name + " exited with code " + process.exitValue()
                            + " before it was ready (see its lines above)");
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException(name + " was not ready after " + START_TIMEOUT);
                }
            }
        }

        long count(String recorder) {
            return field(recorder, "count");
        }

        long field(String recorder, String key) {
            String value = value(recorder, key);
            return value == null || value.equals("-") ? 0 : Long.parseLong(value);
        }

        String value(String recorder, String key) {
            String line = stats.get(recorder);
            if (line == null) {
                return null;
            }
            for (String part : line.split(" ")) {
                if (part.startsWith(key + "=")) {
                    return part.substring(key.length() + 1);
                }
            }
            return null;
        }

        /** Events per second since the last call. */
        long rate(String recorder, double seconds) {
            long now = count(recorder);
            Long before = lastCounts.put(recorder, now);
            return before == null || now < before ? 0 : Math.round((now - before) / seconds);
        }

        /** Stops the service gracefully (SIGTERM), then forcibly after a bound. */
        void stop() {
            Process p = process;
            if (p == null || !p.isAlive()) {
                return;
            }
            p.destroy();
            try {
                if (!p.waitFor(20, TimeUnit.SECONDS)) {
                    out.println("  " + name + " did not stop within 20 s: killing it");
                    p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
                pump.join(Duration.ofSeconds(5)); // its last report lines
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Runs the demo.
     *
     * @param args the options
     * @param out where to print
     * @return the exit code
     * @throws Exception when a service cannot be started
     */
    public static int run(String[] args, PrintStream out) throws Exception {
        Options options;
        try {
            options = Options.parse(args);
        } catch (IllegalArgumentException e) {
            out.println("demo: " + e.getMessage());
            return 2;
        }
        return new Demo(options, out).run();
    }

    private int run() throws Exception {
        Files.createDirectories(options.directory());
        int port = options.portBase();
        services.put("orders", new Service("orders", "orders", port));
        services.put("billing-1", new Service("billing-1", "billing", port + 1));
        services.put("billing-2", new Service("billing-2", "billing", port + 2));
        services.put("audit", new Service("audit", "audit,pricing", port + 3));
        Thread hook = Thread.ofPlatform().unstarted(this::shutdown);
        Runtime.getRuntime().addShutdownHook(hook);

        out.printf(Locale.ROOT, "shm demo: 4 services in separate JVMs share %s/demo.shm for %s%n", options.directory(),
                describe(options.duration()));
        out.println("  orders    publishes orders (" + options.rate() + "/s) to channel 'orders' and asks 'pricing'"
                + " for each price (request-reply)");
        out.println("  billing-1 and billing-2 are one consumer group: they share the orders");
        out.println("  audit     is a second group: it receives every order; it also serves 'pricing'");
        out.println("starting the consumers ...");
        List<Service> consumers = List.of(services.get("billing-1"), services.get("billing-2"), services.get("audit"));
        for (Service s : consumers) {
            s.start();
        }
        for (Service s : consumers) {
            s.awaitReady();
        }
        out.println("starting orders ...");
        services.get("orders").start();
        services.get("orders").awaitReady();
        out.println();
        for (Service s : services.values()) {
            out.printf(Locale.ROOT, "  %-9s http://localhost:%d/actuator/shm  http://localhost:%d/actuator/health%n",
                    s.name, s.port, s.port);
        }
        out.println();

        long start = System.nanoTime();
        long end = start + options.duration().toNanos();
        long killAt = options.kill() ? start + options.killAfter().toNanos() : Long.MAX_VALUE;
        long restartAt = Long.MAX_VALUE;
        long lastTick = start;
        while (System.nanoTime() < end && interrupted.getCount() > 0) {
            if (interrupted.await(2, TimeUnit.SECONDS)) {
                break; // Ctrl-C: the shutdown hook takes it from here
            }
            long now = System.nanoTime();
            report((now - start) / 1_000_000_000L, (now - lastTick) / 1e9);
            lastTick = now;
            if (now >= killAt) {
                killAt = Long.MAX_VALUE;
                Service victim = services.get("billing-2");
                out.println();
                out.println(">>> SIGKILL billing-2 (pid " + victim.process.pid() + "): an order it was handling goes to"
                        + " billing-1 flagged redelivered, and a surviving peer frees what billing-2 held");
                out.println();
                victim.process.destroyForcibly();
                restartAt = now + Math.min(Duration.ofSeconds(10).toNanos(), (end - now) / 2);
            } else if (now >= restartAt) {
                restartAt = Long.MAX_VALUE;
                out.println();
                out.println(">>> starting billing-2 again: it rejoins the group and shares the orders");
                out.println();
                Service billing2 = services.get("billing-2");
                billing2.stats.clear();
                billing2.lastCounts.clear();
                billing2.start();
            }
        }
        if (!finishing.compareAndSet(false, true)) {
            // Ctrl-C: the shutdown hook stops the services and prints the totals; the JVM ends after it.
            new CountDownLatch(1).await();
        }
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the JVM is shutting down already
        }
        return finish();
    }

    private void report(long elapsedSeconds, double seconds) {
        Service orders = services.get("orders");
        Service billing1 = services.get("billing-1");
        Service billing2 = services.get("billing-2");
        Service audit = services.get("audit");
        long redelivered = billing1.field("billing", "redelivered") + billing2.field("billing", "redelivered");
        out.printf(Locale.ROOT, "[%3ds] orders %,6d/s  pricing RTT p50 %s µs p99 %s µs | billing-1 %,6d/s  billing-2 %s |"
                        + " audit %,6d/s  latency p50 %s µs p99 %s µs | redelivered %d | %s%n",
                elapsedSeconds, orders.rate("orders", seconds), orders.value("pricing-calls", "p50"),
                orders.value("pricing-calls", "p99"), billing1.rate("billing", seconds),
                billing2.process != null && billing2.process.isAlive()
                        ? String.format(Locale.ROOT, "%,6d/s", billing2.rate("billing", seconds)) : "  (dead)",
                audit.rate("audit", seconds), audit.value("audit", "p50"), audit.value("audit", "p99"), redelivered,
                segmentLine());
    }

    /** Peers, recoveries and the channel's occupancy, read from the segment file without joining it. */
    private String segmentLine() {
        Path file = options.directory().resolve("demo.shm");
        try (SegmentInspector inspector = SegmentInspector.open(file)) {
            List<PeerInfo> peers = inspector.peers();
            long attached = peers.stream().filter(p -> p.state() == PeerState.ATTACHED).count();
            long occupancy = 0;
            for (Directory.Entry e : inspector.directory()) {
                if (e.type() == DirectoryDescriptor.CHANNEL && e.name().equals("orders")) {
                    occupancy = Channel.inspect(inspector, e).occupancy();
                }
            }
            return "peers " + attached + ", recovered " + inspector.counters().get(SegmentCounters.PEERS_RECOVERED)
                    + ", slots reclaimed " + inspector.counters().get(SegmentCounters.SLOTS_RECLAIMED) + ", in ring "
                    + occupancy;
        } catch (RuntimeException e) {
            return "segment: " + e.getMessage();
        }
    }

    /** The messages published on the orders channel, or -1 when the segment cannot be read. */
    private long published() {
        try (SegmentInspector inspector = SegmentInspector.open(options.directory().resolve("demo.shm"))) {
            for (Directory.Entry e : inspector.directory()) {
                if (e.type() == DirectoryDescriptor.CHANNEL && e.name().equals("orders")) {
                    return Channel.inspect(inspector, e).published();
                }
            }
            return -1;
        } catch (RuntimeException e) {
            return -1;
        }
    }

    /** Stops orders first, lets the consumers drain, stops them, and prints the totals. */
    private int finish() {
        out.println();
        out.println("stopping: orders first, then the consumers once they have drained ...");
        Service orders = services.get("orders");
        orders.stop();
        // What the ring holds is the authority on what was sent: every message published on it
        // (read from the segment, which lives on while the consumers are attached).
        long sent = published();
        if (sent < 0) {
            sent = orders.count("orders");
        }
        Service audit = services.get("audit");
        long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        while (audit.count("audit") < sent && System.nanoTime() < deadline) {
            try {
                Thread.sleep(200); // reports arrive once a second
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        long audited = audit.count("audit");
        String recovery = segmentLine();
        for (Service s : services.values()) {
            s.stop();
        }
        out.println();
        out.printf(Locale.ROOT, "orders sent %,d; audit received %,d (%s); redelivered to billing %d; %s%n", sent, audited,
                audited == sent ? "nothing lost, nothing twice"
                        : audited < sent ? "MISSING " + (sent - audited) : "DUPLICATES " + (audited - sent),
                services.get("billing-1").field("billing", "redelivered")
                        + services.get("billing-2").field("billing", "redelivered"), recovery);
        try {
            Files.deleteIfExists(options.directory());
        } catch (IOException e) {
            // not empty: another segment lives there
        }
        return audited == sent ? 0 : 1;
    }

    /** Ctrl-C (or SIGTERM): stop the services in order and print the totals, as at the end of a run. */
    private void shutdown() {
        interrupted.countDown();
        if (!finishing.compareAndSet(false, true)) {
            return; // the run is finishing by itself
        }
        out.println();
        out.println("interrupted");
        finish();
    }

    private static String describe(Duration d) {
        return d.toSeconds() + " s";
    }
}
