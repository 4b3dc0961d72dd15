package dev.shm.spring.autoconfigure;

import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

/** Explains an {@link InvalidShmPropertyException}: the property, its value, the problem, the fix. */
public final class InvalidShmPropertyFailureAnalyzer extends AbstractFailureAnalyzer<InvalidShmPropertyException> {

    /** Creates the analyzer. */
    public InvalidShmPropertyFailureAnalyzer() {
    }

    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, InvalidShmPropertyException cause) {
        return new FailureAnalysis("Invalid shm configuration: property '" + cause.getProperty() + "' has the value '"
                + cause.getValue() + "': " + cause.getProblem() + ".", "Change '" + cause.getProperty() + "': "
                + cause.getFix() + ".", cause);
    }
}
