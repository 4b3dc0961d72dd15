package dev.shm.core.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Short UTF-8 strings in fixed-size fields of shared memory: written cut at a character boundary,
 * read as untrusted input (a corrupt length is clamped, malformed bytes and control characters
 * replaced, so that no name read from shared memory can break or forge a log line, or send escape
 * sequences to a terminal that prints it).
 *
 * <p>Internal API: not for use outside shm-core.
 */
public final class Utf8 {

    private Utf8() {
    }

    /**
     * Writes {@code text} into a field, cut to {@code capacity} bytes at a character boundary.
     *
     * @param memory the memory
     * @param offset the field's offset
     * @param text the text
     * @param capacity the field's size in bytes
     * @return the number of bytes written
     */
    public static int write(MemorySegment memory, long offset, String text, int capacity) {
        byte[] bytes = cut(text, capacity);
        MemorySegment.copy(bytes, 0, memory, ValueLayout.JAVA_BYTE, offset, bytes.length);
        if (bytes.length < capacity) {
            memory.asSlice(offset + bytes.length, capacity - bytes.length).fill((byte) 0);
        }
        return bytes.length;
    }

    /**
     * Encodes {@code text}, cut to at most {@code capacity} bytes at a character boundary.
     *
     * @param text the text
     * @param capacity the most bytes
     * @return the bytes
     */
    public static byte[] cut(String text, int capacity) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        if (bytes.length <= capacity) {
            return bytes;
        }
        int end = capacity;
        while (end > 0 && (bytes[end] & 0xC0) == 0x80) {
            end--; // do not split a multi-byte character
        }
        return java.util.Arrays.copyOf(bytes, end);
    }

    /**
     * Reads a field written by {@link #write}, with each control character ({@link Character#isISOControl})
     * replaced by U+FFFD: the names that the library looks up (directory entries, groups) are refused
     * with one ({@link #hasControl}); the others (a peer's, a counter's label) are only shown.
     *
     * @param memory the memory
     * @param offset the field's offset
     * @param length the length stored beside the field (untrusted)
     * @param capacity the field's size in bytes
     * @return the text
     */
    public static String read(MemorySegment memory, long offset, int length, int capacity) {
        int n = Math.max(0, Math.min(length, capacity));
        byte[] bytes = new byte[n];
        MemorySegment.copy(memory, ValueLayout.JAVA_BYTE, offset, bytes, 0, n);
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPLACE)
                    .onUnmappableCharacter(CodingErrorAction.REPLACE)
                    .decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException impossible) {
            text = new String(bytes, StandardCharsets.UTF_8);
        }
        if (!hasControl(text)) {
            return text;
        }
        char[] chars = text.toCharArray();
        for (int i = 0; i < chars.length; i++) {
            if (Character.isISOControl(chars[i])) {
                chars[i] = '\uFFFD';
            }
        }
        return new String(chars);
    }

    /**
     * Whether {@code text} holds a control character ({@link Character#isISOControl}): names that
     * the library stores in shared memory must not, as {@link #read} replaces them.
     *
     * @param text the text
     * @return whether it holds one
     */
    public static boolean hasControl(String text) {
        for (int i = 0; i < text.length(); i++) {
            if (Character.isISOControl(text.charAt(i))) {
                return true;
            }
        }
        return false;
    }
}
