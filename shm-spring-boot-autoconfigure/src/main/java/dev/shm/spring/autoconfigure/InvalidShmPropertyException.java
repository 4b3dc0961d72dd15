package dev.shm.spring.autoconfigure;

/**
 * A property under {@code shm} has a value that cannot work. Reported at start-up by
 * {@link InvalidShmPropertyFailureAnalyzer} with the property, the value, the problem and the fix.
 */
public class InvalidShmPropertyException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String property;
    private final transient Object value;
    private final String problem;
    private final String fix;

    /**
     * Creates the exception.
     *
     * @param property the full property name, e.g. {@code shm.channels.orders.capacity}
     * @param value the value found
     * @param problem what is wrong with it
     * @param fix what to do
     */
    public InvalidShmPropertyException(String property, Object value, String problem, String fix) {
        super(property + "=" + value + ": " + problem);
        this.property = property;
        this.value = value;
        this.problem = problem;
        this.fix = fix;
    }

    /** @return the full property name */
    public String getProperty() {
        return property;
    }

    /** @return the value found */
    public Object getValue() {
        return value;
    }

    /** @return what is wrong */
    public String getProblem() {
        return problem;
    }

    /** @return what to do */
    public String getFix() {
        return fix;
    }
}
