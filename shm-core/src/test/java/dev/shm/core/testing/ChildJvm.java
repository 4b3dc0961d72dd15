package dev.shm.core.testing;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A second JVM for cross-process tests: started from this JVM's {@code java.home} with the test
 * class path and native access, its output copied line by line into a log under
 * {@code target/child-logs} and into a queue that {@link #awaitLine} reads with a time bound.
 * {@link #close()} kills it (SIGKILL) if it still runs; use it in try-with-resources.
 *
 * <p>Protocol: the child prints lines ({@link ChildSupport#say}); the parent sends lines to its
 * standard input ({@link #send}). A child exits when its standard input closes, so a dead parent
 * leaves no child behind.
 */
public final class ChildJvm implements AutoCloseable {

    private static final AtomicInteger COUNTER = new AtomicInteger();
    private static final Path LOG_DIR = Path.of("target", "child-logs");
    private static final String EOF = "\u0000EOF";

    private final Process process;
    private final Path log;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final Writer stdin;
    private final Thread pump;

    private ChildJvm(Process process, Path log) {
        this.process = process;
        this.log = log;
        this.stdin = new BufferedWriter(new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8));
        this.pump = Thread.ofPlatform().daemon().name("child-output-" + process.pid()).start(this::pumpOutput);
    }

    /**
     * Starts {@code main} in a new JVM with native access enabled.
     *
     * @param main the class whose {@code main} the child runs
     * @param args its arguments
     * @return the running child
     */
    public static ChildJvm start(Class<?> main, String... args) {
        return builder(main).args(args).start();
    }

    /**
     * Returns a builder for a child with other options.
     *
     * @param main the class whose {@code main} the child runs
     * @return the builder
     */
    public static Builder builder(Class<?> main) {
        return new Builder(main);
    }

    /** Options of a child JVM. */
    public static final class Builder {
        private final Class<?> main;
        private final List<String> args = new ArrayList<>();
        private final List<String> prefix = new ArrayList<>();
        private final List<String> jvmArgs = new ArrayList<>();
        private boolean nativeAccess = true;

        private Builder(Class<?> main) {
            this.main = main;
        }

        /**
         * Adds program arguments.
         *
         * @param values the arguments
         * @return this builder
         */
        public Builder args(String... values) {
            args.addAll(List.of(values));
            return this;
        }

        /**
         * Runs the JVM through a wrapper command, e.g. {@code setpriv ...}.
         *
         * @param values the wrapper and its arguments
         * @return this builder
         */
        public Builder commandPrefix(String... values) {
            prefix.addAll(List.of(values));
            return this;
        }

        /**
         * Adds JVM options.
         *
         * @param values the options
         * @return this builder
         */
        public Builder jvmArgs(String... values) {
            jvmArgs.addAll(List.of(values));
            return this;
        }

        /**
         * Leaves out {@code --enable-native-access=ALL-UNNAMED}.
         *
         * @return this builder
         */
        public Builder withoutNativeAccess() {
            nativeAccess = false;
            return this;
        }

        /**
         * Starts the child.
         *
         * @return the running child
         */
        public ChildJvm start() {
            List<String> command = new ArrayList<>(prefix);
            command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            if (nativeAccess) {
                command.add("--enable-native-access=ALL-UNNAMED");
            }
            command.add("-Xmx256m");
            command.add("-XX:+UseSerialGC");
            command.add("-Xshare:auto");
            command.addAll(jvmArgs);
            command.add("-cp");
            command.add(System.getProperty("java.class.path"));
            command.add(main.getName());
            command.addAll(args);
            try {
                Files.createDirectories(LOG_DIR);
                Path log = LOG_DIR.resolve(main.getSimpleName() + "-" + ProcessHandle.current().pid() + "-"
                        + COUNTER.incrementAndGet() + ".log");
                Files.writeString(log, String.join(" ", command) + System.lineSeparator());
                Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
                return new ChildJvm(process, log);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot start a child JVM: " + command, e);
            }
        }
    }

    /**
     * Returns the child's process id.
     *
     * @return the pid
     */
    public long pid() {
        return process.pid();
    }

    /**
     * Returns the child's next line if it printed one, without waiting.
     *
     * @return the line, or {@code null} when none is there
     * @throws AssertionError when the child ended and printed nothing more, with the log's tail
     */
    public String pollLine() {
        String line = lines.poll();
        if (line != null && line.equals(EOF)) {
            lines.add(EOF);
            throw new AssertionError("child " + pid() + " ended (" + exitDescription() + ")\n" + tail());
        }
        return line;
    }

    /**
     * Waits for a line that starts with {@code prefix}; earlier lines are skipped (they are in the log).
     *
     * @param prefix the start of the line
     * @param timeout how long to wait
     * @return the rest of the line after the prefix, trimmed
     * @throws AssertionError when the time runs out or the child ends first, with the log's tail
     */
    public String awaitLine(String prefix, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        try {
            while (true) {
                long left = deadline - System.nanoTime();
                String line = left > 0 ? lines.poll(left, TimeUnit.NANOSECONDS) : null;
                if (line == null) {
                    throw new AssertionError("no line starting with '" + prefix + "' from child " + pid() + " within "
                            + timeout + "\n" + tail());
                }
                if (line.equals(EOF)) {
                    lines.add(EOF);
                    throw new AssertionError("child " + pid() + " ended (" + exitDescription()
                            + ") before printing a line starting with '" + prefix + "'\n" + tail());
                }
                if (line.startsWith(prefix)) {
                    return line.substring(prefix.length()).trim();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted while waiting for child " + pid(), e);
        }
    }

    /**
     * Sends a line to the child's standard input.
     *
     * @param line the line
     */
    public void send(String line) {
        try {
            stdin.write(line);
            stdin.write('\n');
            stdin.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write to child " + pid() + "\n" + tail(), e);
        }
    }

    /**
     * Waits for the child to exit.
     *
     * @param timeout how long to wait
     * @return its exit code
     * @throws AssertionError when it is still running after {@code timeout}
     */
    public int awaitExit(Duration timeout) {
        try {
            if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                throw new AssertionError("child " + pid() + " still runs after " + timeout + "\n" + tail());
            }
            pump.join(Duration.ofSeconds(5));
            return process.exitValue();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted while waiting for child " + pid(), e);
        }
    }

    /**
     * Sends a signal to the child, e.g. {@code "STOP"} or {@code "CONT"}.
     *
     * @param signal the signal's name without {@code SIG}
     */
    public void signal(String signal) {
        try {
            Process kill = new ProcessBuilder("kill", "-s", signal, String.valueOf(pid())).redirectErrorStream(true).start();
            if (!kill.waitFor(10, TimeUnit.SECONDS) || kill.exitValue() != 0) {
                throw new AssertionError("kill -s " + signal + " " + pid() + " failed");
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted while signalling child " + pid(), e);
        }
    }

    /** Kills the child with SIGKILL and waits (bounded) until it is gone. */
    public void kill() {
        process.destroyForcibly();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                throw new AssertionError("child " + pid() + " survived SIGKILL for 10 s");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Returns everything the child printed so far.
     *
     * @return the log's text
     */
    public String output() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(log " + log + " unreadable: " + e + ")";
        }
    }

    /** Kills the child if it still runs. */
    @Override
    public void close() {
        if (process.isAlive()) {
            kill();
        }
        try {
            stdin.close();
        } catch (IOException ignored) {
            // the process is gone
        }
    }

    private void pumpOutput() {
        try (BufferedReader reader = new BufferedReader(
                new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
             Writer out = Files.newBufferedWriter(log, StandardCharsets.UTF_8,
                     java.nio.file.StandardOpenOption.APPEND)) {
            String line;
            while ((line = reader.readLine()) != null) {
                out.write(line);
                out.write(System.lineSeparator());
                out.flush();
                lines.add(line);
            }
        } catch (IOException e) {
            lines.add("child output unreadable: " + e);
        } finally {
            lines.add(EOF);
        }
    }

    private String exitDescription() {
        try {
            process.waitFor(2, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return process.isAlive() ? "still running" : "exit code " + process.exitValue();
    }

    private String tail() {
        String text = output();
        return "--- " + log + " (last 4000 chars) ---\n" + text.substring(Math.max(0, text.length() - 4000));
    }
}
