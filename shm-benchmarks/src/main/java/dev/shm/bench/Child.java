package dev.shm.bench;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * The child JVM of one measurement: it opens the other side of the parent's link and echoes
 * (round trips), counts and times (stream), or waits without traffic (idle). It prints {@code READY}
 * once attached, and a result line at the end; it halts itself after its time bound, and when its
 * parent dies.
 *
 * <p>Arguments: {@code <time bound in seconds> <cpu to pin, or -1> <spec...>} (see {@link Spec#toArgs}).
 */
public final class Child {

    private Child() {
    }

    /**
     * Runs one side of a measurement.
     *
     * @param args the time bound, the CPU, and the spec
     */
    public static void main(String[] args) {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        Duration bound = Duration.ofSeconds(Long.parseLong(args[0]));
        int cpu = Integer.parseInt(args[1]);
        Spec spec = Spec.parse(args, 2);
        Thread.ofPlatform().daemon().name("time-bound").start(() -> {
            try {
                Thread.sleep(bound);
            } catch (InterruptedException e) {
                return;
            }
            System.err.println("child " + spec.kind().label() + " exceeded its time bound of " + bound);
            Runtime.getRuntime().halt(3);
        });
        ProcessHandle.current().parent().ifPresent(parent -> parent.onExit().thenRun(() -> Runtime.getRuntime().halt(4)));
        try (Endpoint endpoint = spec.kind().open(spec, false)) {
            if (cpu >= 0) {
                Affinity.pinCurrentThread(cpu);
            }
            out.println("READY");
            switch (spec.mode()) {
                case RTT -> {
                    long done = 0;
                    while (done < spec.total()) {
                        int n = endpoint.echo(64);
                        if (n == 0) {
                            Endpoint.idle();
                        }
                        done += n;
                    }
                    out.println("RESULT " + done + " 0 " + endpoint.errors());
                }
                case STREAM -> {
                    long got = 0;
                    long start = 0;
                    long atStart = 0;
                    while (got < spec.total()) {
                        int n = endpoint.poll(256);
                        if (n == 0) {
                            Endpoint.idle();
                        } else {
                            got += n;
                            if (start == 0 && got >= spec.warmup()) {
                                start = System.nanoTime();
                                atStart = got;
                            }
                        }
                    }
                    long elapsed = System.nanoTime() - start;
                    out.println("RESULT " + (got - atStart) + " " + elapsed + " " + endpoint.errors());
                }
                case IDLE -> {
                    while (endpoint.poll(64) == 0) {
                        // waits inside poll: take() with the BLOCKING strategy sleeps on the futex
                    }
                    out.println("RESULT 1 0 " + endpoint.errors());
                }
            }
        } catch (Throwable t) {
            out.println("FAILED " + t);
            t.printStackTrace(System.err);
            System.exit(1);
        }
        System.exit(0);
    }
}
