package dev.shm.core.ring;

/** Receives the messages of a subscription, one at a time, on the polling thread. */
@FunctionalInterface
public interface MessageHandler {

    /**
     * Handles one message. The message and its memory are valid only during the call: copy what
     * must outlive it. A handler that throws leaves the message done (it is not redelivered in the
     * same process); the exception propagates out of {@code poll}.
     *
     * @param message the message
     */
    void onMessage(Message message);
}
