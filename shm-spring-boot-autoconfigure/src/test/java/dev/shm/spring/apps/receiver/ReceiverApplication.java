package dev.shm.spring.apps.receiver;

import dev.shm.core.testing.ChildSupport;
import java.time.Duration;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.integration.annotation.ServiceActivator;
import org.springframework.messaging.Message;

/**
 * An application whose only shm code is its configuration ({@code receiver-app.yml}) and this
 * {@code @ServiceActivator}: it prints what arrives on {@code orders}.
 */
@SpringBootApplication
public class ReceiverApplication {

    /**
     * Prints a received order.
     *
     * @param message the order
     */
    @ServiceActivator(inputChannel = "orders")
    public void onOrder(Message<String> message) {
        String order = message.getPayload();
        ChildSupport.say("GOT " + (order.length() > 64 ? order.substring(0, 16) + "...(" + order.length() + " chars)" : order)
                + " " + message.getHeaders().get("customer"));
    }

    /**
     * Runs the application until the parent says EXIT; STARVE takes this process's free descriptors
     * away (STARVED), FEED gives them back (FED).
     *
     * @param args Spring Boot arguments
     */
    public static void main(String[] args) {
        ChildSupport.begin(Duration.ofSeconds(90));
        ConfigurableApplicationContext context = new SpringApplication(ReceiverApplication.class).run(args);
        ChildSupport.say("READY");
        ChildSupport.awaitExit();
        context.close();
        ChildSupport.say("CLOSED");
        System.exit(0);
    }
}
