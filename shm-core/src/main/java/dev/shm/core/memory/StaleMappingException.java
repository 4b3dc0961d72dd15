package dev.shm.core.memory;

/**
 * An access went through a view (or slice) of a mapping that no longer exists: the region was
 * closed, or resized, which replaces its mapping. The memory behind a stale view is unmapped, and
 * the JDK's memory access checks refuse to touch it, so this exception is the worst a stale view
 * can do. Take a new view from the region.
 */
public final class StaleMappingException extends IllegalStateException {

    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message which view, of what, and why it is stale
     * @param cause the JDK's closed-scope exception
     */
    public StaleMappingException(String message, Throwable cause) {
        super(message, cause);
    }
}
