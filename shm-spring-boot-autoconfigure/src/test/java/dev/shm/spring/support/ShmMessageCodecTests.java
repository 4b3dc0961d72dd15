package dev.shm.spring.support;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.springframework.messaging.Message;
import org.springframework.messaging.MessageHeaders;
import org.springframework.messaging.support.MessageBuilder;
import org.springframework.util.MimeTypeUtils;
import tools.jackson.databind.json.JsonMapper;

class ShmMessageCodecTests {

    /** A payload type in a trusted package (this one). */
    public record Order(String id, int quantity, List<String> items) {
    }

    private final ShmMessageCodec codec = new ShmMessageCodec(new JsonPayloadConverter(JsonMapper.builder().build(),
            new TrustedPackages(List.of("java.lang", "java.util", "dev.shm.spring.support")),
            getClass().getClassLoader()));

    private Message<?> roundTrip(Message<?> message) {
        ShmMessageCodec.Encoded encoded = codec.encode(message);
        byte[] copy = encoded.toByteArray();
        return codec.decode(MemorySegment.ofArray(copy), 0, copy.length, "orders", false);
    }

    @Test
    void aLargeByteArrayPayloadStaysTheRecordsTailUntilTheRecordIsNeededWhole() {
        byte[] large = new byte[ShmMessageCodec.SPLIT_AT];
        new Random(7).nextBytes(large);
        Message<byte[]> message = MessageBuilder.withPayload(large).setHeader("k", "v").build();
        ShmMessageCodec.Encoded encoded = codec.encode(message);
        assertThat(encoded.tail()).isSameAs(large);
        int headLength = encoded.headLength();
        assertThat(encoded.length()).isEqualTo(headLength + large.length);
        byte[] head = MemorySegment.ofArray(new byte[headLength]).copyFrom(encoded.head().asSlice(0, headLength))
                .toArray(ValueLayout.JAVA_BYTE);

        byte[] whole = encoded.toByteArray(); // the tail copied in
        assertThat(encoded.tail()).isNull();
        assertThat(whole).hasSize(headLength + large.length);
        assertThat(Arrays.copyOf(whole, headLength)).isEqualTo(head);
        assertThat(Arrays.copyOfRange(whole, headLength, whole.length)).isEqualTo(large);
        Message<?> decoded = codec.decode(MemorySegment.ofArray(whole), 0, whole.length, "blobs", false);
        assertThat(decoded.getPayload()).isEqualTo(large);
        assertThat(decoded.getHeaders()).containsEntry("k", "v");

        assertThat(codec.encode(MessageBuilder.withPayload(new byte[ShmMessageCodec.SPLIT_AT - 1]).build()).tail())
                .as("below the split size the payload is copied into the record").isNull();
    }

    @Test
    void headersSurviveWithTheirTypesAndTheSendersIdAndTimestamp() {
        UUID uuid = UUID.randomUUID();
        Message<byte[]> message = MessageBuilder.withPayload(new byte[] {1, 2, 3})
                .setHeader(MessageHeaders.CONTENT_TYPE, MimeTypeUtils.APPLICATION_OCTET_STREAM)
                .setHeader("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
                .setHeader("string", "héllo").setHeader("long", 42L).setHeader("int", 7).setHeader("bool", true)
                .setHeader("double", 2.5d).setHeader("float", 1.5f).setHeader("bytes", new byte[] {9})
                .setHeader("uuid", uuid).setHeader("object", new Object())
                .setReplyChannelName("replies").setErrorChannelName("errors").build();
        Message<?> decoded = roundTrip(message);
        assertThat(decoded.getPayload()).isEqualTo(new byte[] {1, 2, 3});
        MessageHeaders headers = decoded.getHeaders();
        assertThat(headers.getId()).isEqualTo(message.getHeaders().getId());
        assertThat(headers.getTimestamp()).isEqualTo(message.getHeaders().getTimestamp());
        assertThat(headers.get(MessageHeaders.CONTENT_TYPE)).isEqualTo("application/octet-stream");
        assertThat(headers.get("traceparent")).isEqualTo("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        assertThat(headers).containsEntry("string", "héllo").containsEntry("long", 42L).containsEntry("int", 7)
                .containsEntry("bool", true).containsEntry("double", 2.5d).containsEntry("float", 1.5f)
                .containsEntry("uuid", uuid).containsEntry(ShmHeaders.CHANNEL, "orders");
        assertThat((byte[]) headers.get("bytes")).containsExactly(9);
        assertThat(headers).doesNotContainKeys("object", MessageHeaders.REPLY_CHANNEL, MessageHeaders.ERROR_CHANNEL,
                ShmHeaders.REDELIVERED);
    }

    @Test
    void stringAndJsonPayloads() {
        assertThat(roundTrip(MessageBuilder.withPayload("grüße").build()).getPayload()).isEqualTo("grüße");
        Order order = new Order("o-1", 3, List.of("a", "b"));
        assertThat(roundTrip(MessageBuilder.withPayload(order).build()).getPayload()).isEqualTo(order);
        assertThat(roundTrip(MessageBuilder.withPayload(Map.of("k", 1)).build()).getPayload())
                .isEqualTo(Map.of("k", 1));
    }

    @Test
    void anUntrustedTypeIsRefusedBeforeItsClassIsLoaded() {
        ShmMessageCodec strict = new ShmMessageCodec(new JsonPayloadConverter(JsonMapper.builder().build(),
                new TrustedPackages(TrustedPackages.DEFAULTS), getClass().getClassLoader()));
        byte[] record = codec.encode(MessageBuilder.withPayload(new Order("o", 1, List.of())).build()).toByteArray();
        assertThatThrownBy(() -> strict.decode(MemorySegment.ofArray(record), 0, record.length, "orders", false))
                .isInstanceOf(ShmCodecException.class)
                .hasMessageContaining(Order.class.getName()).hasMessageContaining("shm.codec.trusted-packages");
    }

    @Test
    void redeliveredIsAHeader() {
        byte[] record = codec.encode(MessageBuilder.withPayload("x").build()).toByteArray();
        Message<?> decoded = codec.decode(MemorySegment.ofArray(record), 0, record.length, "orders", true);
        assertThat(decoded.getHeaders()).containsEntry(ShmHeaders.REDELIVERED, true);
    }

    @Test
    void withoutAConverterOnlyBytesAndStringsTravel() {
        ShmMessageCodec plain = new ShmMessageCodec(null);
        assertThatThrownBy(() -> plain.encode(MessageBuilder.withPayload(List.of(1)).build()))
                .isInstanceOf(ShmCodecException.class).hasMessageContaining("Jackson");
    }

    @Test
    void everyTruncationAndRandomDamageIsACodecExceptionNeverAnotherFailure() {
        Message<?> message = MessageBuilder.withPayload(new Order("o-1", 3, List.of("a")))
                .setHeader("string", "value").setHeader("bytes", new byte[20]).setHeader("long", 1L).build();
        byte[] record = codec.encode(message).toByteArray();
        for (int length = 0; length < record.length; length++) {
            int n = length;
            try {
                codec.decode(MemorySegment.ofArray(record), 0, n, "orders", false);
            } catch (ShmCodecException expected) {
                // a clear refusal
            }
        }
        Random random = new Random(42);
        for (int round = 0; round < 20_000; round++) {
            byte[] damaged = record.clone();
            for (int flips = 1 + random.nextInt(4); flips > 0; flips--) {
                damaged[random.nextInt(damaged.length)] = (byte) random.nextInt(256);
            }
            try {
                codec.decode(MemorySegment.ofArray(damaged), 0, damaged.length, "orders", false);
            } catch (ShmCodecException expected) {
                // a clear refusal
            }
        }
    }

    @Test
    void trustedPackagesMatchPackagesAndTheirSubPackagesOnly() {
        TrustedPackages trusted = new TrustedPackages(List.of("com.example", "org.acme.*"));
        assertThat(trusted.isTrusted("com.example.Order")).isTrue();
        assertThat(trusted.isTrusted("com.example.sub.Order")).isTrue();
        assertThat(trusted.isTrusted("org.acme.Thing")).isTrue();
        assertThat(trusted.isTrusted("com.examples.Order")).isFalse();
        assertThat(trusted.isTrusted("java.lang.Runtime")).isFalse();
        assertThat(trusted.isTrusted("[Lcom.example.Order;")).isFalse();
        assertThat(trusted.isTrusted("Order")).isFalse();
        assertThat(new TrustedPackages(List.of("*")).isTrusted("any.Type")).isTrue();
    }

    @Test
    void decodingABytesMessageAllocatesLittleMoreThanTheMessageItself() {
        com.sun.management.ThreadMXBean threads =
                (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        Message<byte[]> message = MessageBuilder.withPayload(new byte[64]).build();
        byte[] record = codec.encode(message).toByteArray();
        MemorySegment buffer = MemorySegment.ofArray(record);
        int rounds = 20_000;
        long sink = 0;
        for (int i = 0; i < rounds; i++) { // warm up: let the JIT remove what escape analysis can
            sink += codec.decode(buffer, 0, record.length, null, false).getHeaders().size();
            sink += codec.encode(message).length();
        }
        long before = threads.getCurrentThreadAllocatedBytes();
        for (int i = 0; i < rounds; i++) {
            sink += codec.decode(buffer, 0, record.length, null, false).getHeaders().size();
        }
        long decode = (threads.getCurrentThreadAllocatedBytes() - before) / rounds;
        before = threads.getCurrentThreadAllocatedBytes();
        for (int i = 0; i < rounds; i++) {
            sink += codec.encode(message).length();
        }
        long encode = (threads.getCurrentThreadAllocatedBytes() - before) / rounds;
        assertThat(sink).isPositive();
        // The message: an 80-byte payload array, the headers (a map with id and timestamp), the UUID,
        // the message object; nothing for the record itself.
        assertThat(decode).as("bytes allocated per decode").isLessThan(512);
        // Encoding allocates only the views that MessageHeaders hands out to iterate its entries.
        assertThat(encode).as("bytes allocated per encode").isLessThan(256);
    }
}
