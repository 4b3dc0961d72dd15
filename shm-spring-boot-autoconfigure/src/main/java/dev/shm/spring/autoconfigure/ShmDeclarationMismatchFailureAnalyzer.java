package dev.shm.spring.autoconfigure;

import dev.shm.spring.support.ShmDeclarationMismatchException;
import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

/**
 * Explains a {@link ShmDeclarationMismatchException}: a segment or channel that another process
 * declared with other parameters.
 */
public final class ShmDeclarationMismatchFailureAnalyzer
        extends AbstractFailureAnalyzer<ShmDeclarationMismatchException> {

    /** Creates the analyzer. */
    public ShmDeclarationMismatchFailureAnalyzer() {
    }

    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, ShmDeclarationMismatchException cause) {
        String prefix = cause.getPropertyPrefix();
        return new FailureAnalysis("The shm declaration '" + prefix + "' disagrees with the one that exists in "
                + "shared memory, made by another process (or an earlier run): " + cause.getCause().getMessage(),
                "Declare it alike in every process that shares it: set the properties under '" + prefix
                        + "' (for a channel: capacity, slot-size and max-groups; for a consumer "
                        + "group: required, which every process that consumes the group, and every process on a "
                        + "point-to-point channel, must set alike; for a segment: size, max-peers, "
                        + "heartbeat-interval, liveness-timeout and slot-classes) to the values the other process "
                        + "uses, or stop every process that uses it so that the segment file is created anew.", cause);
    }
}
