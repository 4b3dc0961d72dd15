package dev.shm.sample;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.context.SmartLifecycle;
import org.springframework.context.annotation.Profile;
import org.springframework.context.event.EventListener;
import org.springframework.messaging.MessageChannel;
import org.springframework.messaging.support.MessageBuilder;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.stereotype.Component;

/**
 * The orders service: asks {@code pricing} for the price of each order (request-reply across
 * processes), then publishes it to the {@code orders} channel, at {@code demo.rate} orders a second.
 */
@Component
@Profile("orders")
public class OrdersService implements SmartLifecycle {

    private static final String[] ITEMS = {"coffee", "tea", "bagel", "croissant", "juice"};

    private final MessageChannel orders;
    private final PricingClient pricing;
    private final long rate;
    private final LatencyRecorder sent = new LatencyRecorder("orders");
    private final LatencyRecorder priced = new LatencyRecorder("pricing-calls");
    private final AtomicBoolean running = new AtomicBoolean();
    private volatile Thread sender;

    /**
     * Creates the service.
     *
     * @param orders the {@code orders} channel (shared memory, from {@code application.yml})
     * @param pricing the pricing gateway
     * @param rate orders per second
     */
    public OrdersService(@Qualifier("orders") MessageChannel orders, PricingClient pricing,
            @Value("${demo.rate:1000}") long rate) {
        this.orders = orders;
        this.pricing = pricing;
        this.rate = rate;
    }

    /** Starts sending once the application is ready (the consumers started before this service). */
    @EventListener(ApplicationReadyEvent.class)
    public void startSending() {
        if (running.compareAndSet(false, true)) {
            sender = Thread.ofPlatform().name("orders-sender").start(this::send);
        }
    }

    private void send() {
        long interval = 1_000_000_000L / Math.max(1, rate);
        long next = System.nanoTime();
        for (long id = 0; running.get(); id++) {
            String item = ITEMS[(int) (id % ITEMS.length)];
            long start = System.nanoTime();
            long price;
            try {
                price = pricing.price(item);
            } catch (RuntimeException e) {
                System.out.println("pricing failed for order " + id + ": " + e.getMessage());
                LockSupport.parkNanos(100_000_000L); // pacing while pricing is away
                continue;
            }
            long now = System.nanoTime();
            priced.record(now - start, false);
            Order order = new Order(id, item, 1 + (int) (id % 3), price, now);
            if (orders.send(MessageBuilder.withPayload(order).build())) {
                sent.record(System.nanoTime() - now, false);
            }
            next += interval;
            long wait = next - System.nanoTime();
            if (wait > 0) {
                LockSupport.parkNanos(wait); // pacing to the configured rate
            } else if (wait < -1_000_000_000L) {
                next = System.nanoTime(); // fell behind by more than a second: do not burst to catch up
            }
        }
    }

    /** Prints this second's report lines. */
    @Scheduled(fixedRate = 1000)
    public void report() {
        System.out.println(sent.report());
        System.out.println(priced.report());
    }

    @Override
    public void start() {
        // sending starts on ApplicationReadyEvent
    }

    @Override
    public void stop() {
        running.set(false);
        Thread thread = sender;
        if (thread != null) {
            try {
                thread.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        report(); // the final count, for the demo's totals
    }

    @Override
    public boolean isRunning() {
        return running.get();
    }

    /** Stops sending before the channels and gateways stop. */
    @Override
    public int getPhase() {
        return Integer.MAX_VALUE - 100;
    }
}
