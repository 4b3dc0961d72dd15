package dev.shm.spring.support;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.UUID;
import org.apache.commons.logging.Log;
import org.apache.commons.logging.LogFactory;
import org.springframework.messaging.Message;
import org.springframework.messaging.MessageHeaders;
import org.springframework.messaging.support.GenericMessage;
import org.springframework.util.MimeType;

/**
 * Encodes a Spring message — headers and payload — into one compact binary record, and back.
 *
 * <h2>Record, version 1 (little-endian)</h2>
 * <pre>
 *  0        2        3        4        6        8                  16                 24                 32
 *  +--------+--------+--------+--------+--------+------------------+------------------+------------------+
 *  | magic  |version | kind   |headers | 0      | id (most sig.)   | id (least sig.)  | timestamp (ms)   |
 *  +--------+--------+--------+--------+--------+------------------+------------------+------------------+
 *  | header: nameLength (u8), name (UTF-8), type (u8), value ...  repeated "headers" times               |
 *  +------------------------------------------------------------------------------------------------------+
 *  | kind CONVERTED only: typeLength (u16), type name (UTF-8)                                             |
 *  +------------------------------------------------------------------------------------------------------+
 *  | payload: the rest of the record                                                                      |
 *  +------------------------------------------------------------------------------------------------------+
 *  value: STRING, BYTES: length (i32) + bytes; LONG, DOUBLE: 8; INT, FLOAT: 4; BOOLEAN: 1; UUID: 16
 * </pre>
 * A {@code byte[]} payload travels as is (kind {@code BYTES}), a {@code String} as UTF-8 (kind
 * {@code STRING}), anything else through the {@link PayloadConverter} with its type name (kind
 * {@code CONVERTED}) — JSON by default, never Java serialization. Headers of type String, Long,
 * Integer, Boolean, Double, Float, UUID, byte[] and MimeType (as its string) travel; others, and
 * {@code replyChannel} / {@code errorChannel} (objects of this process), do not. {@code id} and
 * {@code timestamp} keep their values.
 *
 * <p>Every byte of a record comes from another process and is untrusted: the decoder checks every
 * length against what is left of the record and throws {@link ShmCodecException} instead of reading
 * past it.
 *
 * <p>Thread-safety: safe for concurrent use; each thread encodes into a buffer of its own.
 */
public final class ShmMessageCodec {

    /** The first two bytes of every record: "SM". */
    public static final short MAGIC = 0x4D53;
    /** The record version this codec writes and reads. */
    public static final byte VERSION = 1;
    /** Length of the fixed part of a record. */
    public static final int FIXED_LENGTH = 32;
    /** The largest encoding buffer a thread keeps between messages. */
    static final int MAX_RETAINED = 1 << 20;
    /**
     * From this size on, a {@code byte[]} payload is not copied into the encoding buffer: it stays the
     * record's {@linkplain Encoded#tail() tail}, which a sender that can write two parts copies
     * straight to its destination (a channel's pool slot or memfd).
     */
    public static final int SPLIT_AT = 16 << 10;
    /** The most headers a record may name. */
    public static final int MAX_HEADERS = 4096;

    static final byte KIND_BYTES = 0;
    static final byte KIND_STRING = 1;
    static final byte KIND_CONVERTED = 2;

    static final byte STRING = 1;
    static final byte LONG = 2;
    static final byte INT = 3;
    static final byte BOOLEAN = 4;
    static final byte DOUBLE = 5;
    static final byte FLOAT = 6;
    static final byte BYTES = 7;
    static final byte UUID_TYPE = 8;

    private static final Log LOG = LogFactory.getLog(ShmMessageCodec.class);
    private static final VarHandle ARRAY_LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle ARRAY_INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle ARRAY_SHORT = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong READ_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt READ_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort READ_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final PayloadConverter converter;
    private final ThreadLocal<Encoded> buffers = ThreadLocal.withInitial(Encoded::new);
    private final ThreadLocal<byte[][]> scratch = ThreadLocal.withInitial(() -> new byte[][] {new byte[256]});

    /**
     * Creates a codec.
     *
     * @param converter encodes payloads other than {@code byte[]} and {@code String}; {@code null}
     *     to refuse them
     */
    public ShmMessageCodec(PayloadConverter converter) {
        this.converter = converter;
    }

    /**
     * An encoded record in a buffer of the encoding thread, valid until that thread encodes again: a
     * head in the buffer and, for a {@code byte[]} payload of {@link #SPLIT_AT} bytes or more, that
     * payload as the tail, left where it is. {@link #segment()} gives the record in one piece (copying
     * the tail in); {@link #head()} and {@link #tail()} give the two parts, for a sender that writes
     * them one after the other.
     */
    public static final class Encoded {
        private byte[] array = new byte[512];
        private MemorySegment segment = MemorySegment.ofArray(array);
        private int length;
        private byte[] tail;

        /** @return the memory that holds the whole record from offset 0 (the tail copied in) */
        public MemorySegment segment() {
            flatten();
            return segment;
        }

        /** @return the whole record's length, head and tail */
        public int length() {
            return tail == null ? length : length + tail.length;
        }

        /** @return the memory that holds the record's head from offset 0 */
        public MemorySegment head() {
            return segment;
        }

        /** @return the head's length: the whole record's when it has no tail */
        public int headLength() {
            return length;
        }

        /** @return the record's tail, the payload array itself (not to be modified), or {@code null} */
        public byte[] tail() {
            return tail;
        }

        /** @return a copy of the whole record */
        public byte[] toByteArray() {
            flatten();
            return java.util.Arrays.copyOf(array, length);
        }

        private void flatten() {
            if (tail != null) {
                byte[] bytes = tail;
                tail = null;
                putBytes(bytes);
            }
        }

        private void ensure(int more) {
            if (length + more > array.length) {
                long wanted = Math.max((long) length + more, 2L * array.length);
                if (wanted > Integer.MAX_VALUE - 16) {
                    throw new ShmCodecException("a record of more than " + (Integer.MAX_VALUE - 16) + " bytes");
                }
                array = java.util.Arrays.copyOf(array, (int) wanted);
                segment = MemorySegment.ofArray(array);
            }
        }

        private void putByte(int v) {
            ensure(1);
            array[length++] = (byte) v;
        }

        private void putShort(int v) {
            ensure(2);
            ARRAY_SHORT.set(array, length, (short) v);
            length += 2;
        }

        private void putInt(int v) {
            ensure(4);
            ARRAY_INT.set(array, length, v);
            length += 4;
        }

        private void putLong(long v) {
            ensure(8);
            ARRAY_LONG.set(array, length, v);
            length += 8;
        }

        private void putBytes(byte[] bytes) {
            ensure(bytes.length);
            System.arraycopy(bytes, 0, array, length, bytes.length);
            length += bytes.length;
        }
    }

    /**
     * Encodes a message into this thread's buffer.
     *
     * @param message the message
     * @return the record, valid until this thread encodes again
     * @throws ShmCodecException when the payload has no encoding
     */
    public Encoded encode(Message<?> message) {
        Encoded out = buffers.get();
        out.length = 0;
        out.tail = null;
        if (out.array.length > MAX_RETAINED) {
            out.array = new byte[512]; // one large message must not pin a large buffer to the thread
            out.segment = MemorySegment.ofArray(out.array);
        }
        MessageHeaders headers = message.getHeaders();
        Object payload = message.getPayload();
        byte kind = payload instanceof byte[] ? KIND_BYTES : payload instanceof String ? KIND_STRING : KIND_CONVERTED;
        if (kind == KIND_CONVERTED && converter == null) {
            throw new ShmCodecException("no converter for a payload of type " + payload.getClass().getName()
                    + ": send byte[] or String, or add Jackson (tools.jackson.core:jackson-databind) for JSON");
        }
        out.putShort(MAGIC);
        out.putByte(VERSION);
        out.putByte(kind);
        out.putShort(0); // header count, patched below
        out.putShort(0);
        UUID id = headers.getId();
        out.putLong(id == null ? 0 : id.getMostSignificantBits());
        out.putLong(id == null ? 0 : id.getLeastSignificantBits());
        Long timestamp = headers.getTimestamp();
        out.putLong(timestamp == null ? 0 : timestamp);
        int count = 0;
        for (Map.Entry<String, Object> header : headers.entrySet()) {
            if (count < MAX_HEADERS && writeHeader(out, header.getKey(), header.getValue())) {
                count++;
            }
        }
        ARRAY_SHORT.set(out.array, 4, (short) count);
        switch (kind) {
            case KIND_BYTES -> {
                byte[] bytes = (byte[]) payload;
                if (bytes.length >= SPLIT_AT) {
                    out.tail = bytes;
                } else {
                    out.putBytes(bytes);
                }
            }
            case KIND_STRING -> out.putBytes(((String) payload).getBytes(StandardCharsets.UTF_8));
            default -> {
                byte[] type = converter.typeName(payload).getBytes(StandardCharsets.UTF_8);
                if (type.length > 0xFFFF) {
                    throw new ShmCodecException("payload type name of " + type.length + " bytes; at most 65535");
                }
                out.putShort(type.length);
                out.putBytes(type);
                out.putBytes(converter.toBytes(payload));
            }
        }
        return out;
    }

    private static boolean writeHeader(Encoded out, String name, Object value) {
        if (value == null || name.equals(MessageHeaders.ID) || name.equals(MessageHeaders.TIMESTAMP)
                || name.equals(MessageHeaders.REPLY_CHANNEL) || name.equals(MessageHeaders.ERROR_CHANNEL)
                || name.equals(ShmHeaders.REDELIVERED) || name.equals(ShmHeaders.CHANNEL)) {
            return false;
        }
        byte type;
        if (value instanceof String || value instanceof MimeType) {
            type = STRING;
        } else if (value instanceof Long) {
            type = LONG;
        } else if (value instanceof Integer) {
            type = INT;
        } else if (value instanceof Boolean) {
            type = BOOLEAN;
        } else if (value instanceof Double) {
            type = DOUBLE;
        } else if (value instanceof Float) {
            type = FLOAT;
        } else if (value instanceof byte[]) {
            type = BYTES;
        } else if (value instanceof UUID) {
            type = UUID_TYPE;
        } else {
            if (LOG.isTraceEnabled()) {
                LOG.trace("header '" + name + "' of type " + value.getClass().getName() + " stays in this process");
            }
            return false;
        }
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        if (nameBytes.length == 0 || nameBytes.length > 255) {
            LOG.debug("header name '" + name + "' is longer than 255 UTF-8 bytes; not sent");
            return false;
        }
        out.putByte(nameBytes.length);
        out.putBytes(nameBytes);
        out.putByte(type);
        switch (type) {
            case STRING -> {
                byte[] bytes = value.toString().getBytes(StandardCharsets.UTF_8);
                out.putInt(bytes.length);
                out.putBytes(bytes);
            }
            case LONG -> out.putLong((Long) value);
            case INT -> out.putInt((Integer) value);
            case BOOLEAN -> out.putByte(((Boolean) value) ? 1 : 0);
            case DOUBLE -> out.putLong(Double.doubleToRawLongBits((Double) value));
            case FLOAT -> out.putInt(Float.floatToRawIntBits((Float) value));
            case BYTES -> {
                byte[] bytes = (byte[]) value;
                out.putInt(bytes.length);
                out.putBytes(bytes);
            }
            default -> {
                UUID uuid = (UUID) value;
                out.putLong(uuid.getMostSignificantBits());
                out.putLong(uuid.getLeastSignificantBits());
            }
        }
        return true;
    }

    /**
     * Decodes a record.
     *
     * @param buffer the memory that holds the record (untrusted)
     * @param offset where it starts
     * @param length its length
     * @param channel the channel it came from, set as {@link ShmHeaders#CHANNEL}; {@code null} for none
     * @param redelivered whether to set {@link ShmHeaders#REDELIVERED}
     * @return the message, with the sender's id and timestamp
     * @throws ShmCodecException when the record is damaged, truncated, of another version, or names
     *     an untrusted payload type
     */
    public Message<?> decode(MemorySegment buffer, long offset, long length, String channel, boolean redelivered) {
        if (length < FIXED_LENGTH) {
            throw new ShmCodecException("record of " + length + " bytes is shorter than the " + FIXED_LENGTH
                    + "-byte fixed part");
        }
        if (length > Integer.MAX_VALUE - 16 || offset < 0 || offset + length > buffer.byteSize()) {
            throw new ShmCodecException("record length=" + length + " at offset=" + offset + " outside a buffer of "
                    + buffer.byteSize() + " bytes");
        }
        short magic = buffer.get(READ_SHORT, offset);
        if (magic != MAGIC) {
            throw new ShmCodecException("record starts with 0x" + Integer.toHexString(magic & 0xFFFF)
                    + ", expected the magic 0x" + Integer.toHexString(MAGIC) + ": not a message record");
        }
        byte version = buffer.get(ValueLayout.JAVA_BYTE, offset + 2);
        if (version != VERSION) {
            throw new ShmCodecException("record version " + version + "; this codec reads version " + VERSION);
        }
        byte kind = buffer.get(ValueLayout.JAVA_BYTE, offset + 3);
        int count = buffer.get(READ_SHORT, offset + 4) & 0xFFFF;
        if (count > MAX_HEADERS) {
            throw new ShmCodecException("record names " + count + " headers; at most " + MAX_HEADERS);
        }
        UUID id = new UUID(buffer.get(READ_LONG, offset + 8), buffer.get(READ_LONG, offset + 16));
        long timestamp = buffer.get(READ_LONG, offset + 24);
        Map<String, Object> headers = new HashMap<>(Math.max(4, (count + 3) * 4 / 3 + 1));
        long end = offset + length;
        long at = offset + FIXED_LENGTH;
        for (int i = 0; i < count; i++) {
            require(at, 1, end, "header name length");
            int nameLength = buffer.get(ValueLayout.JAVA_BYTE, at) & 0xFF;
            at++;
            require(at, nameLength + 1L, end, "header name");
            String name = utf8(buffer, at, nameLength);
            at += nameLength;
            byte type = buffer.get(ValueLayout.JAVA_BYTE, at);
            at++;
            Object value;
            switch (type) {
                case STRING -> {
                    require(at, 4, end, "header '" + name + "' length");
                    int n = buffer.get(READ_INT, at);
                    at += 4;
                    require(at, n, end, "header '" + name + "'");
                    value = utf8(buffer, at, n);
                    at += n;
                }
                case LONG -> {
                    require(at, 8, end, "header '" + name + "'");
                    value = buffer.get(READ_LONG, at);
                    at += 8;
                }
                case INT -> {
                    require(at, 4, end, "header '" + name + "'");
                    value = buffer.get(READ_INT, at);
                    at += 4;
                }
                case BOOLEAN -> {
                    require(at, 1, end, "header '" + name + "'");
                    value = buffer.get(ValueLayout.JAVA_BYTE, at) != 0;
                    at += 1;
                }
                case DOUBLE -> {
                    require(at, 8, end, "header '" + name + "'");
                    value = Double.longBitsToDouble(buffer.get(READ_LONG, at));
                    at += 8;
                }
                case FLOAT -> {
                    require(at, 4, end, "header '" + name + "'");
                    value = Float.intBitsToFloat(buffer.get(READ_INT, at));
                    at += 4;
                }
                case BYTES -> {
                    require(at, 4, end, "header '" + name + "' length");
                    int n = buffer.get(READ_INT, at);
                    at += 4;
                    require(at, n, end, "header '" + name + "'");
                    byte[] bytes = new byte[n];
                    MemorySegment.copy(buffer, ValueLayout.JAVA_BYTE, at, bytes, 0, n);
                    value = bytes;
                    at += n;
                }
                case UUID_TYPE -> {
                    require(at, 16, end, "header '" + name + "'");
                    value = new UUID(buffer.get(READ_LONG, at), buffer.get(READ_LONG, at + 8));
                    at += 16;
                }
                default -> throw new ShmCodecException("header '" + name + "' has unknown value type " + type);
            }
            headers.put(name, value);
        }
        Object payload;
        switch (kind) {
            case KIND_BYTES -> {
                byte[] bytes = new byte[(int) (end - at)];
                MemorySegment.copy(buffer, ValueLayout.JAVA_BYTE, at, bytes, 0, bytes.length);
                payload = bytes;
            }
            case KIND_STRING -> payload = utf8(buffer, at, (int) (end - at));
            case KIND_CONVERTED -> {
                require(at, 2, end, "payload type length");
                int n = buffer.get(READ_SHORT, at) & 0xFFFF;
                at += 2;
                require(at, n, end, "payload type name");
                String type = utf8(buffer, at, n);
                at += n;
                if (converter == null) {
                    throw new ShmCodecException("payload of type " + type + " needs a converter; this application has"
                            + " none (add Jackson for JSON)");
                }
                int size = (int) (end - at);
                byte[] bytes = scratch(size);
                MemorySegment.copy(buffer, ValueLayout.JAVA_BYTE, at, bytes, 0, size);
                payload = converter.fromBytes(type, bytes, 0, size);
            }
            default -> throw new ShmCodecException("record has unknown payload kind " + kind);
        }
        if (channel != null) {
            headers.put(ShmHeaders.CHANNEL, channel);
        }
        if (redelivered) {
            headers.put(ShmHeaders.REDELIVERED, Boolean.TRUE);
        }
        return new GenericMessage<>(payload, new DecodedHeaders(headers, id, timestamp));
    }

    private static void require(long at, long needed, long end, String what) {
        if (needed < 0 || at + needed > end) {
            throw new ShmCodecException("record truncated: " + what + " needs " + needed + " bytes at " + at
                    + " but the record ends at " + end);
        }
    }

    private String utf8(MemorySegment buffer, long at, int length) {
        if (length == 0) {
            return "";
        }
        byte[] bytes = scratch(length);
        MemorySegment.copy(buffer, ValueLayout.JAVA_BYTE, at, bytes, 0, length);
        return new String(bytes, 0, length, StandardCharsets.UTF_8);
    }

    private byte[] scratch(int length) {
        byte[][] holder = scratch.get();
        if (holder[0].length < length) {
            holder[0] = new byte[Math.max(length, 2 * holder[0].length)];
        }
        return holder[0];
    }

    /** Headers that keep the sender's id and timestamp. */
    private static final class DecodedHeaders extends MessageHeaders {

        private static final long serialVersionUID = 1L;

        DecodedHeaders(Map<String, Object> headers, UUID id, long timestamp) {
            super(headers, id, timestamp);
        }
    }
}
