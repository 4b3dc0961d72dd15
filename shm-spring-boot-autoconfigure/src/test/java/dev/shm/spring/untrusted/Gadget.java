package dev.shm.spring.untrusted;

/**
 * A JSON payload of a type that the peer application does not trust.
 *
 * @param command what it would like to run
 */
public record Gadget(String command) {
}
