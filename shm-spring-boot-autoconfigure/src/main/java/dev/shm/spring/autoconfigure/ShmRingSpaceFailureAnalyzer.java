package dev.shm.spring.autoconfigure;

import dev.shm.spring.support.ShmRingSpaceException;
import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

/**
 * Explains a {@link ShmRingSpaceException}: a channel whose ring does not fit in what is left of its
 * segment.
 */
public final class ShmRingSpaceFailureAnalyzer extends AbstractFailureAnalyzer<ShmRingSpaceException> {

    /** Creates the analyzer. */
    public ShmRingSpaceFailureAnalyzer() {
    }

    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, ShmRingSpaceException cause) {
        String segment = "shm.segments." + cause.getSegment() + ".size";
        String channel = "shm.channels." + cause.getChannel();
        return new FailureAnalysis("The ring of shm channel '" + cause.getChannel() + "' does not fit in what is left "
                + "of segment '" + cause.getSegment() + "': " + cause.getCause().getMessage(),
                "Raise '" + segment + "' in every process that may create the segment (it takes effect when the "
                        + "segment file is created anew, once every process using it has stopped), or lower '"
                        + channel + ".capacity' or '" + channel + ".slot-size' (for a channel of the Java DSL, its "
                        + "capacity or slotSize) in every process that declares it. The rings and lanes that other "
                        + "processes declared in the segment take room in it too: the shm actuator endpoint and "
                        + "the stat tool show them.", cause);
    }
}
