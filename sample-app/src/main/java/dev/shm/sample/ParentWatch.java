package dev.shm.sample;

import java.time.Duration;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.context.ApplicationContext;
import org.springframework.context.event.EventListener;
import org.springframework.stereotype.Component;

/**
 * Ends a service that the demo started when the demo itself is gone (killed, say): the services run
 * in sessions of their own, so nothing else would stop them.
 */
@Component
@ConditionalOnProperty("demo.parent-pid")
public class ParentWatch {

    private final long parent;
    private final ApplicationContext context;

    /**
     * Creates the watch.
     *
     * @param parent the demo's pid
     * @param context the application, to close gracefully
     */
    public ParentWatch(@Value("${demo.parent-pid}") long parent, ApplicationContext context) {
        this.parent = parent;
        this.context = context;
    }

    /** Starts watching once the service is up. */
    @EventListener(ApplicationReadyEvent.class)
    public void watch() {
        Thread.ofPlatform().daemon().name("parent-watch").start(() -> {
            while (ProcessHandle.of(parent).map(ProcessHandle::isAlive).orElse(false)) {
                try {
                    Thread.sleep(Duration.ofSeconds(1)); // a liveness poll of another process, not a synchronisation
                } catch (InterruptedException e) {
                    return;
                }
            }
            System.out.println("the demo (pid " + parent + ") is gone: stopping");
            System.exit(SpringApplication.exit(context, () -> 0));
        });
    }
}
