package dev.shm.spring.apps.peer;

import java.util.List;

/**
 * A JSON payload of a trusted type: the peer application's own package.
 *
 * @param id the order's id
 * @param quantity how many
 * @param items what
 */
public record Order(String id, int quantity, List<String> items) {
}
