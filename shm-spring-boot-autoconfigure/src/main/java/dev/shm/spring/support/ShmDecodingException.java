package dev.shm.spring.support;

import org.springframework.messaging.Message;
import org.springframework.messaging.MessagingException;

/**
 * A record received from shared memory could not be decoded. The failed message's payload is the
 * raw record ({@code byte[]}), with the {@link ShmHeaders#CHANNEL} header; the cause says why.
 */
public class ShmDecodingException extends MessagingException {

    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param raw a message whose payload is the raw record
     * @param cause why it did not decode
     */
    public ShmDecodingException(Message<byte[]> raw, Throwable cause) {
        super(raw, "cannot decode a record of " + raw.getPayload().length + " bytes from shm channel '"
                + raw.getHeaders().get(ShmHeaders.CHANNEL) + "': " + cause.getMessage(), cause);
    }
}
