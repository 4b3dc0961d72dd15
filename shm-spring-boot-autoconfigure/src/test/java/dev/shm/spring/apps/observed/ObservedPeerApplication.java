package dev.shm.spring.apps.observed;

import dev.shm.core.segment.Segment;
import dev.shm.core.testing.ChildSupport;
import dev.shm.spring.channel.SubscribableShmChannel;
import java.time.Duration;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.integration.annotation.ServiceActivator;
import org.springframework.messaging.Message;

/**
 * A peer for the observability tests: receives {@code events} in its group
 * ({@code spring.application.name}), holds {@code peer.hold-slots} pool slots (so that its death
 * leaves slots to reclaim), and obeys {@code PAUSE}, {@code RESUME} and {@code EXIT} on its
 * standard input.
 */
@SpringBootApplication
public class ObservedPeerApplication {

    /**
     * Prints each event.
     *
     * @param message the event
     */
    @ServiceActivator(inputChannel = "events")
    public void onEvent(Message<?> message) {
        ChildSupport.say("GOT " + message.getPayload());
    }

    /**
     * Runs the application until the parent says EXIT (or a signal ends it).
     *
     * @param args Spring Boot arguments
     */
    public static void main(String[] args) {
        ChildSupport.begin(Duration.ofSeconds(100));
        SpringApplication application = new SpringApplication(ObservedPeerApplication.class);
        application.setWebApplicationType(WebApplicationType.NONE);
        ConfigurableApplicationContext context = application.run(args);
        Segment main = context.getBean("main", Segment.class);
        int hold = context.getEnvironment().getProperty("peer.hold-slots", Integer.class, 0);
        for (int i = 0; i < hold; i++) {
            main.slotPool().allocate(1000); // never freed: reclaimed when this process dies
        }
        SubscribableShmChannel events = context.getBean("events", SubscribableShmChannel.class);
        ChildSupport.say("READY " + main.peerId());
        while (true) {
            String command = ChildSupport.await("");
            switch (command) {
                case "PAUSE" -> {
                    events.pause();
                    ChildSupport.say("PAUSED");
                }
                case "RESUME" -> {
                    events.resume();
                    ChildSupport.say("RESUMED");
                }
                case "EXIT" -> {
                    context.close();
                    ChildSupport.say("CLOSED");
                    System.exit(0);
                }
                default -> ChildSupport.say("UNKNOWN " + command);
            }
        }
    }
}
