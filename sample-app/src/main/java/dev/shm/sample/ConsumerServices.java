package dev.shm.sample;

import dev.shm.spring.support.ShmHeaders;
import org.springframework.context.annotation.Profile;
import org.springframework.integration.annotation.ServiceActivator;
import org.springframework.messaging.Message;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.stereotype.Component;

/** The services that receive orders: plain {@code @ServiceActivator}s on the channel's name. */
public final class ConsumerServices {

    private ConsumerServices() {
    }

    /** Records one order and its latency from the orders service's send. */
    private static void record(LatencyRecorder recorder, Message<Order> message) {
        recorder.record(System.nanoTime() - message.getPayload().sentNanos(),
                Boolean.TRUE.equals(message.getHeaders().get(ShmHeaders.REDELIVERED)));
    }

    /** Billing: its members (two JVMs in the demo) share the orders between them. */
    @Component
    @Profile("billing")
    public static class Billing {

        private final LatencyRecorder received = new LatencyRecorder("billing");

        /**
         * Bills an order.
         *
         * @param order the order
         */
        @ServiceActivator(inputChannel = "orders")
        public void bill(Message<Order> order) {
            record(received, order);
        }

        /** Prints this second's report. */
        @Scheduled(fixedRate = 1000)
        public void report() {
            System.out.println(received.report());
        }
    }

    /** Audit: receives every order too, as a group of its own. */
    @Component
    @Profile("audit")
    public static class Audit {

        private final LatencyRecorder received = new LatencyRecorder("audit");

        /**
         * Audits an order.
         *
         * @param order the order
         */
        @ServiceActivator(inputChannel = "orders")
        public void audit(Message<Order> order) {
            record(received, order);
        }

        /** Prints this second's report. */
        @Scheduled(fixedRate = 1000)
        public void report() {
            System.out.println(received.report());
        }
    }
}
