package dev.shm.spring.support;

/**
 * Turns payloads other than {@code byte[]} and {@code String} into bytes and back. The type name
 * travels with the bytes; a converter must refuse to decode a type it does not trust.
 *
 * @see JsonPayloadConverter
 */
public interface PayloadConverter {

    /**
     * Encodes a payload.
     *
     * @param payload the payload, neither {@code byte[]} nor {@code String}
     * @return its bytes
     * @throws ShmCodecException when the payload cannot be encoded
     */
    byte[] toBytes(Object payload);

    /**
     * Returns the type name that {@link #fromBytes} will be given for this payload.
     *
     * @param payload the payload
     * @return a type name, usually the class name
     */
    default String typeName(Object payload) {
        return payload.getClass().getName();
    }

    /**
     * Decodes a payload. The type name and the bytes come from another process: untrusted.
     *
     * @param typeName the type name the sender wrote
     * @param bytes the bytes
     * @param offset where they start
     * @param length how many
     * @return the payload
     * @throws ShmCodecException when the type is not trusted or the bytes do not decode
     */
    Object fromBytes(String typeName, byte[] bytes, int offset, int length);
}
