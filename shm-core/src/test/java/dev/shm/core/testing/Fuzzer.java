package dev.shm.core.testing;

import static dev.shm.core.testing.ChildSupport.say;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * What the damage fuzzers share (RingFuzzTest, LiveSegmentFuzzTest): on the test's side, the child's
 * arguments from the system properties ({@code shm.fuzz.seed}, {@code shm.fuzz.iterations},
 * {@code shm.fuzz.iteration}) and the child's run with its checks ({@link Plan#runChild}); in the
 * child, the loop of iterations, each with a seed of its own and a tally of its steps, under a watch
 * that halts the child (after printing every thread's stack) when one iteration runs too long. A failing iteration prints {@code FAILED} with the seeds that
 * replay it, and halts the child.
 */
public final class Fuzzer {

    /** One iteration of a fuzzer's child. */
    @FunctionalInterface
    public interface Iteration {
        /**
         * Runs iteration {@code index}.
         *
         * @param index the iteration's number, for names
         * @param random its own random source
         * @param steps its tally: one entry per step, named by its outcome
         * @throws Exception anything: the child fails
         */
        void run(int index, SplittableRandom random, List<String> steps) throws Exception;
    }

    /**
     * A fuzzer child's arguments: its directory, the run's seed, the iterations, its life in seconds,
     * and when one iteration replays alone, that iteration's seed.
     *
     * @param seed the run's seed
     * @param iterations how many iterations
     * @param lifeSeconds the child's longest life
     * @param args the child's arguments
     */
    public record Plan(long seed, int iterations, long lifeSeconds, String[] args) {

        /**
         * Runs the fuzzer child {@code main} with these arguments in a JVM with a small heap (96 MB,
         * exiting on {@code OutOfMemoryError}: a huge allocation fails the run), and waits, up to its
         * life, for its {@code FUZZED} line.
         *
         * @param main the child's main class
         * @param jvmArgs more JVM arguments
         * @return the tally of the child's steps, {@code {name=count, ...}}
         * @throws AssertionError when the child fails, hangs, exits other than 0 or runs fewer
         *     iterations, with the seed and the child's output
         */
        public String runChild(Class<?> main, String... jvmArgs) {
            try (ChildJvm child = ChildJvm.builder(main).jvmArgs("-Xmx96m", "-XX:+ExitOnOutOfMemoryError")
                    .jvmArgs(jvmArgs).args(args).start()) {
                String result = child.awaitLine("FUZZED", Duration.ofSeconds(lifeSeconds + 10));
                int exit = child.awaitExit(Duration.ofSeconds(10));
                if (exit != 0 || !result.startsWith(iterations + " ")) {
                    throw new AssertionError("seed " + seed + ": exit " + exit + " after " + result + "\n"
                            + child.output());
                }
                return result.substring(result.indexOf(' ') + 1);
            }
        }
    }

    private static volatile long iterationStarted;
    private static volatile String iterationName = "";
    private static boolean replay;

    private Fuzzer() {
    }

    /**
     * The plan for a fuzzer child in {@code directory}, from the system properties.
     *
     * @param directory the child's directory
     * @param iterations the iterations unless {@code shm.fuzz.iterations} says otherwise
     * @return the plan
     */
    public static Plan plan(Path directory, int iterations) {
        long seed = Long.getLong("shm.fuzz.seed", System.nanoTime());
        int count = Integer.getInteger("shm.fuzz.iterations", iterations);
        String only = System.getProperty("shm.fuzz.iteration");
        if (only != null) {
            count = 1;
        }
        long life = 30 + count; // seconds: an iteration takes well under one
        String[] args = {directory.toString(), String.valueOf(seed), String.valueOf(count), String.valueOf(life)};
        if (only != null) {
            args = Arrays.copyOf(args, 5);
            args[4] = only;
        }
        return new Plan(seed, count, life, args);
    }

    /**
     * Whether this child replays one iteration alone (it may then print what it does).
     *
     * @return {@code true} for a replay
     */
    public static boolean replaying() {
        return replay;
    }

    /**
     * Runs a fuzzer child's iterations as {@code args} (a {@link Plan}'s) say, each under the hang
     * watch; a failing iteration halts the child.
     *
     * @param args the child's arguments
     * @param hung how long one iteration may run
     * @param iteration the iteration
     * @return the tally of every iteration's steps, for the {@code FUZZED} line
     */
    public static Map<String, Integer> run(String[] args, Duration hung, Iteration iteration) {
        ChildSupport.begin(Duration.ofSeconds(Long.parseLong(args[3])));
        long seed = Long.parseLong(args[1]);
        int iterations = Integer.parseInt(args[2]);
        replay = args.length > 4;
        startHangWatch(hung.toNanos());
        SplittableRandom random = new SplittableRandom(seed);
        Map<String, Integer> outcomes = new TreeMap<>();
        for (int i = 0; i < iterations; i++) {
            long iterationSeed = replay ? Long.parseLong(args[4]) : random.nextLong();
            iterationName = "iteration " + i + " (seed " + seed + ", iteration seed " + iterationSeed + ")";
            iterationStarted = System.nanoTime();
            List<String> steps = new ArrayList<>();
            try {
                iteration.run(i, new SplittableRandom(iterationSeed), steps);
            } catch (Throwable t) {
                say("FAILED " + iterationName + " after " + steps + ": " + t);
                t.printStackTrace(System.out);
                System.out.flush();
                Runtime.getRuntime().halt(1);
            }
            for (String step : steps) {
                outcomes.merge(step, 1, Integer::sum);
            }
        }
        iterationStarted = 0;
        return outcomes;
    }

    /** Halts the child, after printing every thread's stack, when an iteration runs too long. */
    private static void startHangWatch(long hungNanos) {
        Thread.ofPlatform().daemon().name("hang-watch").start(() -> {
            while (true) {
                long started = iterationStarted;
                if (started != 0 && System.nanoTime() - started > hungNanos) {
                    StringBuilder dump = new StringBuilder("HUNG " + iterationName + "\n");
                    Thread.getAllStackTraces().forEach((thread, stack) -> {
                        dump.append(thread).append('\n');
                        for (StackTraceElement e : stack) {
                            dump.append("    at ").append(e).append('\n');
                        }
                    });
                    System.out.println(dump);
                    System.out.flush();
                    Runtime.getRuntime().halt(2);
                }
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
    }
}
