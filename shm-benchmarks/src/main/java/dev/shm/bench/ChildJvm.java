package dev.shm.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A child JVM running {@link Child}: started from this JVM's {@code java.home} with this JVM's class
 * path and the flags every benchmark JVM needs; its standard output is read line by line into a
 * queue, its standard error goes to a log file. {@link #close()} kills it if it still runs.
 */
final class ChildJvm implements AutoCloseable {

    /** The JVM options of every benchmark JVM, the parent's included (run.sh passes the same). */
    static final List<String> JVM_OPTIONS = List.of(
            "--enable-native-access=ALL-UNNAMED",
            "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
            "-Dagrona.disable.bounds.checks=true",
            "-Xms256m", "-Xmx1g");

    private static final String EOF = "\u0000EOF";

    private final Process process;
    private final Path log;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    /** Set before this JVM ends the child itself: its exit is then no failure to report. */
    private volatile boolean closing;

    private ChildJvm(Process process, Path log) {
        this.process = process;
        this.log = log;
        Thread.ofPlatform().daemon().name("child-output-" + process.pid()).start(this::pump);
    }

    /**
     * Starts a child for one side of a measurement.
     *
     * @param spec the measurement
     * @param cpu the CPU the child pins its working thread to, or -1
     * @param bound the child's time bound
     * @param log where its standard error goes
     * @return the running child
     */
    static ChildJvm start(Spec spec, int cpu, Duration bound, Path log) {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(JVM_OPTIONS);
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(Child.class.getName());
        command.add(Long.toString(Math.max(1, bound.toSeconds())));
        command.add(Integer.toString(cpu));
        command.addAll(spec.toArgs());
        try {
            Process process = new ProcessBuilder(command)
                    .redirectError(log.toFile())
                    .redirectInput(ProcessBuilder.Redirect.PIPE)
                    .start();
            return new ChildJvm(process, log);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start a child JVM: " + command, e);
        }
    }

    /**
     * Calls {@code action} with the child's log when the child exits with a failure or outlives its
     * time bound, so that the parent stops waiting for it.
     *
     * @param action receives a description and the child's log
     */
    void onFailure(java.util.function.Consumer<String> action) {
        process.onExit().thenAccept(p -> {
            if (p.exitValue() != 0 && !closing) {
                action.accept("child " + p.pid() + " exited with " + p.exitValue() + "; its log:\n" + logText());
            }
        });
        // A child that ends well but too early (it counted wrong) must not leave the parent waiting.
        process.onExit().thenAcceptAsync(p -> {
            if (!closing) {
                action.accept("child " + p.pid() + " exited (" + p.exitValue() + ") 5 s before the parent finished");
            }
        }, java.util.concurrent.CompletableFuture.delayedExecutor(5, TimeUnit.SECONDS));
    }

    private void pump() {
        try (BufferedReader reader = new BufferedReader(
                new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = reader.readLine()) != null) {
                lines.add(line);
            }
        } catch (IOException e) {
            // the child is gone
        }
        lines.add(EOF);
    }

    /**
     * Waits for a line that starts with {@code prefix}, calling {@code endpoint.service()} while it
     * waits (Aeron's INVOKER mode needs the parent to run the driver).
     *
     * @param prefix the line's start
     * @param timeout the longest wait
     * @param endpoint the parent's endpoint, or null
     * @return the line
     * @throws IllegalStateException when the child fails, exits or times out first (with its log)
     */
    String awaitLine(String prefix, Duration timeout, Endpoint endpoint) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() - deadline < 0) {
            String line;
            try {
                line = lines.poll(100, TimeUnit.MICROSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
            }
            if (line == null) {
                if (endpoint != null) {
                    endpoint.service();
                }
                continue;
            }
            if (line.startsWith(prefix)) {
                return line;
            }
            if (line.equals(EOF) || line.startsWith("FAILED")) {
                throw new IllegalStateException("child " + process.pid() + " said '" + line.replace(EOF, "<exit>")
                        + "' while the parent waited for " + prefix + "; its log:\n" + logText());
            }
        }
        throw new IllegalStateException("child " + process.pid() + " did not say " + prefix + " within " + timeout
                + "; its log:\n" + logText());
    }

    /**
     * Returns the child's process handle.
     *
     * @return the handle
     */
    ProcessHandle handle() {
        return process.toHandle();
    }

    private String logText() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    /**
     * Waits a moment for the child to exit, then kills it.
     */
    @Override
    public void close() {
        closing = true; // from here on, its exit is this JVM's doing
        try {
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    /** Kills the child now. */
    void kill() {
        closing = true;
        process.destroyForcibly();
    }
}
