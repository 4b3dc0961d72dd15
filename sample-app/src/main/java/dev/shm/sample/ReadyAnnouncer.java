package dev.shm.sample;

import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.context.event.EventListener;
import org.springframework.core.env.Environment;
import org.springframework.stereotype.Component;

/** Prints {@code READY <profiles>} when the service is up: the demo waits for it. */
@Component
public class ReadyAnnouncer {

    /**
     * Announces the service.
     *
     * @param event the event
     */
    @EventListener(ApplicationReadyEvent.class)
    public void ready(ApplicationReadyEvent event) {
        Environment environment = event.getApplicationContext().getEnvironment();
        System.out.println("READY " + String.join(",", environment.getActiveProfiles()));
    }
}
