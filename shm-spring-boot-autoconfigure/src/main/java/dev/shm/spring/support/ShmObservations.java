package dev.shm.spring.support;

import io.micrometer.observation.ObservationRegistry;
import org.springframework.integration.support.management.observation.DefaultMessageReceiverObservationConvention;
import org.springframework.integration.support.management.observation.IntegrationObservation;
import org.springframework.integration.support.management.observation.MessageReceiverContext;
import org.springframework.messaging.Message;

/**
 * Continues, in the receiving process, a trace that the sending process started: the receiver
 * context reads {@code traceparent} (and any other propagation header) from the decoded message.
 */
public final class ShmObservations {

    private ShmObservations() {
    }

    /**
     * Runs {@code action} for a received message inside a receiver observation, or plainly when
     * observation is off.
     *
     * @param registry the registry, or {@code null}
     * @param message the received message
     * @param name the receiving component's name
     * @param type the receiving component's type
     * @param action what to do with the message
     */
    public static void receive(ObservationRegistry registry, Message<?> message, String name, String type,
                               Runnable action) {
        if (registry == null || registry.isNoop()) {
            action.run();
            return;
        }
        IntegrationObservation.HANDLER.observation(null, DefaultMessageReceiverObservationConvention.INSTANCE,
                () -> new MessageReceiverContext(message, name, type), registry).observe(action);
    }
}
