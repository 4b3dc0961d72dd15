package dev.shm.spring.autoconfigure;

import dev.shm.spring.support.ShmGroupBusyException;
import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

/**
 * Explains a {@link ShmGroupBusyException}: a consumer group that an exclusive member of another
 * process holds, or that an exclusive consumer found shared with others.
 */
public final class ShmGroupBusyFailureAnalyzer extends AbstractFailureAnalyzer<ShmGroupBusyException> {

    /** Creates the analyzer. */
    public ShmGroupBusyFailureAnalyzer() {
    }

    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, ShmGroupBusyException cause) {
        String property = "shm.channels." + cause.getChannel();
        return new FailureAnalysis("The consumer group '" + cause.getGroup() + "' of shm channel '" + cause.getChannel()
                + "' stayed busy for the segment's liveness timeout: " + cause.getCause().getMessage(),
                "An exclusive member (" + property + ".exclusive=true) needs its group to itself. Set " + property
                        + ".exclusive=false in every process that consumes group '" + cause.getGroup()
                        + "' to let their members compete, or give this application a group of its own ("
                        + property + ".group), or stop the other consumer first. A member whose process died is "
                        + "removed within the liveness timeout.", cause);
    }
}
