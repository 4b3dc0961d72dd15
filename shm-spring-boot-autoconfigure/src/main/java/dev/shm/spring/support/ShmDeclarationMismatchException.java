package dev.shm.spring.support;

/**
 * A segment or channel exists — created by another process, or earlier — with other parameters
 * than this application declares. Reported at start-up by {@code ShmDeclarationMismatchFailureAnalyzer}.
 */
public class ShmDeclarationMismatchException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String propertyPrefix;

    /**
     * Creates the exception.
     *
     * @param propertyPrefix the properties of the declaration, e.g. {@code shm.channels.orders}
     * @param cause the core's exception, which names both values
     */
    public ShmDeclarationMismatchException(String propertyPrefix, RuntimeException cause) {
        super(propertyPrefix + " disagrees with the existing declaration: " + cause.getMessage(), cause);
        this.propertyPrefix = propertyPrefix;
    }

    /** @return the properties of the declaration */
    public String getPropertyPrefix() {
        return propertyPrefix;
    }
}
