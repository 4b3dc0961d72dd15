package dev.shm.spring.support;

import java.util.HashMap;
import java.util.Map;
import org.springframework.messaging.Message;
import org.springframework.messaging.support.GenericMessage;

/** Messages that carry a record which could not be decoded: its raw bytes, for the error channel. */
public final class RawRecords {

    private RawRecords() {
    }

    /**
     * Wraps a raw record.
     *
     * @param record the record's bytes
     * @param channel the channel it came from
     * @param redelivered whether the ring flagged it redelivered
     * @return a message whose payload is the record
     */
    public static Message<byte[]> of(byte[] record, String channel, boolean redelivered) {
        Map<String, Object> headers = new HashMap<>();
        headers.put(ShmHeaders.CHANNEL, channel);
        if (redelivered) {
            headers.put(ShmHeaders.REDELIVERED, Boolean.TRUE);
        }
        return new GenericMessage<>(record, headers);
    }
}
