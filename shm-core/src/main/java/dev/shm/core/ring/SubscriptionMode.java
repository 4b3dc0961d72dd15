package dev.shm.core.ring;

/**
 * How a subscription shares its consumer group.
 *
 * <p>A {@link #SHARED} member competes with the group's other members, in this and other processes,
 * for each message: it takes a message with a compare-and-set on the group's claim word and moves
 * the group's done sequence with another. An {@link #EXCLUSIVE} member has the group to itself
 * while it is subscribed: no other member can join, so it takes messages and moves the group on
 * with plain ordered stores, the cheapest path a receiver has. Delivery and crash behaviour are the
 * same: a message the member was handling when its process died is handed to the group's next
 * member flagged redelivered.
 */
public enum SubscriptionMode {

    /** Competes with the group's other members (point-to-point within the group); any number may join. */
    SHARED,

    /**
     * The group's only member while subscribed: joining fails while the group has another member,
     * and another member cannot join until this one closes or its process dies and is recovered.
     */
    EXCLUSIVE
}
