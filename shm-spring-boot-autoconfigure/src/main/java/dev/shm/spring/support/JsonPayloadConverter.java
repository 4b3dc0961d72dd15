package dev.shm.spring.support;

import tools.jackson.databind.json.JsonMapper;

/**
 * Encodes payloads as JSON with Jackson 3 and decodes only types of {@link TrustedPackages}. A
 * type name outside the list is refused before any class is loaded.
 */
public final class JsonPayloadConverter implements PayloadConverter {

    private final JsonMapper mapper;
    private final TrustedPackages trusted;
    private final ClassLoader classLoader;

    /**
     * Creates the converter.
     *
     * @param mapper the mapper
     * @param trusted the types it may decode
     * @param classLoader where to find them
     */
    public JsonPayloadConverter(JsonMapper mapper, TrustedPackages trusted, ClassLoader classLoader) {
        this.mapper = mapper;
        this.trusted = trusted;
        this.classLoader = classLoader;
    }

    @Override
    public byte[] toBytes(Object payload) {
        try {
            return mapper.writeValueAsBytes(payload);
        } catch (RuntimeException e) {
            throw new ShmCodecException("cannot write a payload of type " + payload.getClass().getName() + " as JSON: "
                    + e.getMessage(), e);
        }
    }

    @Override
    public Object fromBytes(String typeName, byte[] bytes, int offset, int length) {
        if (!trusted.isTrusted(typeName)) {
            throw new ShmCodecException("payload type " + typeName + " is not in the trusted packages " + trusted
                    + ": add its package to shm.codec.trusted-packages if this application should accept it");
        }
        Class<?> type;
        try {
            type = Class.forName(typeName, false, classLoader);
        } catch (ClassNotFoundException | LinkageError e) {
            throw new ShmCodecException("payload type " + typeName + " is not on this application's class path", e);
        }
        try {
            return mapper.readValue(bytes, offset, length, type);
        } catch (RuntimeException e) {
            throw new ShmCodecException("cannot read a JSON payload of type " + typeName + ": " + e.getMessage(), e);
        }
    }
}
