package dev.shm.sample;

import java.util.Arrays;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.scheduling.annotation.EnableScheduling;

/**
 * The sample services, one Spring Boot application with a profile per service: {@code orders}
 * publishes orders and asks {@code pricing} for prices, {@code billing} (run twice: its members
 * compete) and {@code audit} each receive every order, {@code pricing} answers price requests.
 * With {@code demo} as its first argument it runs {@link Demo}, which starts the services as
 * separate JVMs.
 */
@SpringBootApplication
@EnableScheduling
public class SampleApplication {

    /**
     * Runs a service, or the demo.
     *
     * @param args {@code demo [options]}, or Spring Boot arguments such as
     *     {@code --spring.profiles.active=billing}
     * @throws Exception when the demo fails
     */
    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("demo")) {
            System.exit(Demo.run(Arrays.copyOfRange(args, 1, args.length), System.out));
        }
        SpringApplication.run(SampleApplication.class, args);
    }
}
