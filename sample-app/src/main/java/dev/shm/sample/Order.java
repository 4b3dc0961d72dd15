package dev.shm.sample;

/**
 * An order, sent as JSON.
 *
 * @param id its number
 * @param item what was ordered
 * @param quantity how many
 * @param priceCents the unit price, from the pricing service
 * @param sentNanos {@link System#nanoTime()} when it was sent (one clock for every process of a host)
 */
public record Order(long id, String item, int quantity, long priceCents, long sentNanos) {
}
