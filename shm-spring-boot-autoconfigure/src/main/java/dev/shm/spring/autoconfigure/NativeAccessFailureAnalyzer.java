package dev.shm.spring.autoconfigure;

import dev.shm.core.NativeAccessException;
import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

/** Explains a {@link NativeAccessException}: the JVM was started without native access. */
public final class NativeAccessFailureAnalyzer extends AbstractFailureAnalyzer<NativeAccessException> {

    /** Creates the analyzer. */
    public NativeAccessFailureAnalyzer() {
    }

    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, NativeAccessException cause) {
        return new FailureAnalysis("shm needs native access (java.lang.foreign) to map its segments in shared memory "
                + "(property 'shm.enabled' is true), but this JVM was started without it: " + cause.getMessage(),
                "Start the JVM with " + NativeAccessException.FLAG + " (for example in JAVA_TOOL_OPTIONS, the "
                        + "spring-boot:run jvmArguments or surefire's argLine), or add 'Enable-Native-Access: "
                        + "ALL-UNNAMED' to the manifest of the executable jar; or set 'shm.enabled=false' to run "
                        + "without shared memory.", cause);
    }
}
