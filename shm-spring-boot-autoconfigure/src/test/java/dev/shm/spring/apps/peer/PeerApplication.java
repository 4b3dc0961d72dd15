package dev.shm.spring.apps.peer;

import dev.shm.core.segment.Segment;
import dev.shm.core.testing.ChildSupport;
import dev.shm.spring.dsl.Shm;
import dev.shm.spring.support.ShmHeaders;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import io.micrometer.tracing.Tracer;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.integration.annotation.ServiceActivator;
import org.springframework.integration.core.MessagingTemplate;
import org.springframework.integration.dsl.IntegrationFlow;
import org.springframework.messaging.Message;
import org.springframework.stereotype.Component;
import org.springframework.messaging.MessageChannel;
import org.springframework.messaging.MessagingException;
import org.springframework.messaging.support.MessageBuilder;

/**
 * A peer application for the cross-process tests; its roles come from properties:
 * {@code peer.listen} receives {@code events} (with {@code peer.hold-first} it holds the first
 * message forever, to be killed with it; with {@code peer.hold=N} the first N, one per consumer thread), {@code peer.pricing} provides the {@code pricing}
 * service (handling {@code peer.pricing-concurrency} requests at once), {@code peer.send=N} sends N events and reports each one accepted,
 * {@code peer.client} calls the {@code pricing} service on the parent's {@code CALL <request>}. The
 * pricing service answers {@code big:N} with N characters once the parent says {@code RELEASE}.
 */
@SpringBootApplication
public class PeerApplication {

    /** A {@code big:N} request of the pricing service is answered once the parent says RELEASE. */
    private static final Semaphore RELEASES = new Semaphore(0);

    /** Receives {@code events} when {@code peer.listen} is set. */
    @Component
    @ConditionalOnProperty("peer.listen")
    static class Listener {

        private final AtomicInteger holding = new AtomicInteger();

        @Value("${peer.hold-first:false}")
        private boolean holdFirst;

        @Value("${peer.hold:0}")
        private int hold;

        @Value("${peer.work-micros:0}")
        private long workMicros;

        private final ObjectProvider<Tracer> tracer;

        Listener(ObjectProvider<Tracer> tracer) {
            this.tracer = tracer;
        }

        /**
         * Prints each event.
         *
         * @param message the event
         * @throws InterruptedException never, in practice: the hold ends with the process
         */
        @ServiceActivator(inputChannel = "events")
        public void onEvent(Message<?> message) throws InterruptedException {
            if (holding.incrementAndGet() <= Math.max(hold, holdFirst ? 1 : 0)) {
                ChildSupport.say("HOLDING " + message.getPayload());
                new CountDownLatch(1).await(); // until SIGKILL
            }
            if (workMicros > 0) {
                LockSupport.parkNanos(workMicros * 1000); // simulated work, not synchronisation
            }
            Tracer t = tracer.getIfAvailable();
            if (t != null && t.currentSpan() != null) {
                ChildSupport.say("TRACE " + t.currentSpan().context().traceId());
            }
            ChildSupport.say("GOT " + message.getPayload() + " redelivered="
                    + Boolean.TRUE.equals(message.getHeaders().get(ShmHeaders.REDELIVERED)));
        }
    }

    /**
     * Prints each order.
     *
     * @param order the order, decoded from JSON
     */
    @ServiceActivator(inputChannel = "orders")
    public void onOrder(Order order) {
        ChildSupport.say("ORDER " + order.id() + " " + order.quantity() + " " + order.items());
    }

    /**
     * Prints each failure.
     *
     * @param error the failure
     */
    @ServiceActivator(inputChannel = "errorChannel")
    public void onError(MessagingException error) {
        Throwable cause = error.getCause() != null ? error.getCause() : error;
        ChildSupport.say("ERROR " + error.getClass().getSimpleName() + ": " + cause.getMessage());
    }

    /**
     * Provides the pricing service: upper-cases the request; fails for "boom"; is slow for "slow".
     *
     * @param main the segment
     * @param tracer the tracer, when tracing is on
     * @return the flow
     */
    @Bean
    @ConditionalOnProperty("peer.pricing")
    IntegrationFlow pricing(Segment main, ObjectProvider<Tracer> tracer,
            @Value("${peer.pricing-concurrency:1}") int concurrency) {
        CountDownLatch together = new CountDownLatch(4);
        return IntegrationFlow.from(Shm.inboundGateway(main, "pricing").concurrency(concurrency))
                .<String, String>transform(request -> {
                    if (request.startsWith("together")) {
                        // Answers TOGETHER only when four such requests are in hand at once.
                        together.countDown();
                        try {
                            return (together.await(10, TimeUnit.SECONDS) ? "TOGETHER" : "ALONE") + "@"
                                    + ProcessHandle.current().pid();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                            return "INTERRUPTED";
                        }
                    }
                    Tracer t = tracer.getIfAvailable();
                    if (t != null && t.currentSpan() != null) {
                        ChildSupport.say("TRACE " + t.currentSpan().context().traceId());
                    }
                    if (request.equals("boom")) {
                        throw new IllegalArgumentException("no price for boom");
                    }
                    if (request.startsWith("linger")) {
                        ChildSupport.say("LINGER");
                        LockSupport.parkNanos(Duration.ofSeconds(1).toNanos()); // long enough to be stopped meanwhile
                    }
                    if (request.startsWith("big:")) {
                        // A reply above the largest slot class (a memfd), once the parent says RELEASE.
                        ChildSupport.say("BIG");
                        try {
                            if (!RELEASES.tryAcquire(30, TimeUnit.SECONDS)) {
                                return "NOT RELEASED";
                            }
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                            return "INTERRUPTED";
                        }
                        return "x".repeat(Integer.parseInt(request.substring(4))) + "@" + ProcessHandle.current().pid();
                    }
                    if (request.equals("slow")) {
                        ChildSupport.say("SLOW");
                        LockSupport.parkNanos(Duration.ofSeconds(3).toNanos()); // slower than the caller waits
                    }
                    return request.toUpperCase() + "@" + ProcessHandle.current().pid();
                })
                .get();
    }

    /**
     * Calls the {@code pricing} service when {@code peer.client} is set: {@code CALL <request>} from
     * the parent.
     *
     * @param main the segment
     * @return the flow, whose input is {@code pricingCalls.input}
     */
    @Bean
    @ConditionalOnProperty("peer.client")
    IntegrationFlow pricingCalls(Segment main) {
        return flow -> flow.handle(Shm.outboundGateway(main, "pricing").replyTimeout(Duration.ofSeconds(30)));
    }

    /**
     * Runs the application until the parent says EXIT (or a signal ends it).
     *
     * @param args Spring Boot arguments
     */
    public static void main(String[] args) {
        ChildSupport.begin(Duration.ofSeconds(100));
        ConfigurableApplicationContext context = new SpringApplication(PeerApplication.class).run(args);
        int send = context.getEnvironment().getProperty("peer.send", Integer.class, 0);
        ChildSupport.say("READY");
        if (send > 0) {
            MessageChannel events = context.getBean("events", MessageChannel.class);
            Thread.ofPlatform().daemon().name("sender").start(() -> {
                for (int i = 0; i < send; i++) {
                    try {
                        if (events.send(MessageBuilder.withPayload("event-" + i).build())) {
                            ChildSupport.say("ACCEPTED " + i);
                        }
                    } catch (RuntimeException e) {
                        ChildSupport.say("REFUSED " + i + " " + e.getMessage());
                    }
                }
                ChildSupport.say("SENT ALL");
            });
        }
        ChildSupport.awaitExit(command -> {
            if (command.equals("RELEASE")) {
                RELEASES.release();
            } else if (command.startsWith("CALL ")) {
                // On a thread of its own, so that the parent's next commands are read meanwhile.
                MessageChannel calls = context.getBean("pricingCalls.input", MessageChannel.class);
                Thread.ofPlatform().daemon().name("caller").start(() -> {
                    try {
                        Object reply = new MessagingTemplate().sendAndReceive(calls,
                                MessageBuilder.withPayload(command.substring(5)).build()).getPayload();
                        String text = reply.toString();
                        int at = text.lastIndexOf('@');
                        ChildSupport.say("REPLY " + at + " " + text.substring(at + 1));
                    } catch (RuntimeException e) {
                        ChildSupport.say("CALL FAILED " + e);
                    }
                });
            }
        });
        context.close();
        ChildSupport.say("CLOSED");
        System.exit(0);
    }
}
