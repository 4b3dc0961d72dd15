package dev.shm.core.segment;

import static dev.shm.core.testing.ChildSupport.say;

import dev.shm.core.ShmException;
import dev.shm.core.testing.ChildSupport;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The second peer of the live-segment fuzzer ({@link LiveSegmentFuzzChild}), in a process of its
 * own: on {@code ATTACH <directory> <segment> <provider> <seed>} it attaches, says
 * {@code ATTACHED}, and uses the segment at random ({@link SegmentUser}: a client of the provider's
 * service, a member of the channel's groups) while the fuzzer damages it, until {@code DETACH};
 * then it detaches and says {@code DETACHED <tally>}. A step that fails with anything but a
 * {@code ShmException}, or a use that does not end within 15 s of {@code DETACH}, prints
 * {@code FAILED} (with every thread's stack) and halts the process.
 */
public final class LiveSegmentPartnerChild {

    private LiveSegmentPartnerChild() {
    }

    public static void main(String[] args) throws Exception {
        ChildSupport.begin(Duration.ofSeconds(Long.parseLong(args[0])));
        while (true) {
            String[] command = ChildSupport.await("ATTACH ").split(" ");
            SegmentOptions options = LiveSegmentFuzzChild.options(Path.of(command[0]), command[1]);
            int provider = Integer.parseInt(command[2]);
            SplittableRandom random = new SplittableRandom(Long.parseLong(command[3]));
            List<String> steps = new ArrayList<>();
            Segment segment;
            try {
                segment = Segment.open(options, "partner");
            } catch (ShmException e) {
                say("ATTACHED " + e.getClass().getSimpleName());
                ChildSupport.await("DETACH");
                say("DETACHED {attach:" + e.getClass().getSimpleName() + "=1}");
                continue;
            }
            SegmentUser user = new SegmentUser(segment, random, steps);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            AtomicBoolean stop = new AtomicBoolean();
            Thread worker = Thread.ofPlatform().name("partner").start(() -> {
                try {
                    user.use(provider);
                    if (random.nextBoolean()) {
                        user.subscribe("billing", true); // a second member of the fuzzer's group
                    } else {
                        user.subscribe("audit", false);
                    }
                    while (!stop.get()) {
                        user.act(random.nextInt(20));
                    }
                } catch (Throwable t) {
                    failure.set(t);
                } finally {
                    try {
                        user.close();
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    }
                }
            });
            say("ATTACHED ok");
            ChildSupport.await("DETACH");
            stop.set(true);
            worker.join(Duration.ofSeconds(15));
            if (worker.isAlive() || failure.get() != null) {
                say("FAILED partner " + (worker.isAlive() ? "hung" : "after " + steps) + ": " + failure.get());
                if (failure.get() != null) {
                    failure.get().printStackTrace(System.out);
                }
                Thread.getAllStackTraces().forEach((thread, stack) -> {
                    System.out.println(thread);
                    for (StackTraceElement e : stack) {
                        System.out.println("    at " + e);
                    }
                });
                System.out.flush();
                Runtime.getRuntime().halt(1);
            }
            Map<String, Integer> tally = new TreeMap<>();
            for (String step : steps) {
                tally.merge("partner." + step, 1, Integer::sum);
            }
            say("DETACHED " + tally);
        }
    }
}
