package dev.shm.core.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * The child's side of {@link ChildJvm}: lines out, lines in, and a bounded life. A child calls
 * {@link #begin(Duration)} first; it then ends when its life runs out or its standard input closes
 * (the parent is gone), whatever it is doing.
 */
public final class ChildSupport {

    private static final BufferedReader STDIN =
            new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));

    private ChildSupport() {
    }

    /**
     * Bounds the child's life: after {@code maxLife} it halts with exit code 124.
     *
     * @param maxLife the longest the child may run
     */
    public static void begin(Duration maxLife) {
        Thread.ofPlatform().daemon().name("child-watchdog").start(() -> {
            try {
                Thread.sleep(maxLife);
            } catch (InterruptedException ignored) {
                // halt anyway
            }
            System.out.println("WATCHDOG child ran longer than " + maxLife);
            System.out.flush();
            Runtime.getRuntime().halt(124);
        });
    }

    /**
     * Prints a line for the parent.
     *
     * @param line the line
     */
    public static void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    /**
     * Waits for a line from the parent that starts with {@code prefix}; halts with exit code 3 when
     * standard input closes first.
     *
     * @param prefix the start of the line
     * @return the rest of the line, trimmed
     */
    public static String await(String prefix) {
        try {
            String line;
            while ((line = STDIN.readLine()) != null) {
                if (line.startsWith(prefix)) {
                    return line.substring(prefix.length()).trim();
                }
            }
            say("STDIN closed while waiting for '" + prefix + "'");
            Runtime.getRuntime().halt(3);
            throw new IllegalStateException("unreachable");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Serves the parent's commands until it says EXIT: STARVE takes this process's free descriptors
     * away ({@link TestNative#exhaustDescriptors}, after loading the classes a failed memfd open
     * needs) and says STARVED; FEED gives them back and says FED.
     */
    public static void awaitExit() {
        awaitExit(command -> { });
    }

    /**
     * Serves the parent's commands until it says EXIT, as {@link #awaitExit()} does, and hands the
     * others to {@code others}.
     *
     * @param others receives every other command
     */
    public static void awaitExit(java.util.function.Consumer<String> others) {
        long soft = -1; // the limit before STARVE, while starved
        for (String command = await(""); !command.equals("EXIT"); command = await("")) {
            if (command.equals("STARVE")) {
                if (soft < 0) {
                    TestNative.loadMemfdFailureClasses();
                    soft = TestNative.exhaustDescriptors();
                }
                say("STARVED");
            } else if (command.equals("FEED")) {
                if (soft >= 0) {
                    TestNative.restoreDescriptorLimit(soft);
                    soft = -1;
                }
                say("FED");
            } else {
                others.accept(command);
            }
        }
    }
}
