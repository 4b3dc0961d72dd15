package dev.shm.spring.autoconfigure;

import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;
import org.springframework.util.unit.DataSize;

/** Explains a {@link ShmSpaceException}: a segment larger than its directory's file system. */
public final class ShmSpaceFailureAnalyzer extends AbstractFailureAnalyzer<ShmSpaceException> {

    /** Creates the analyzer. */
    public ShmSpaceFailureAnalyzer() {
    }

    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, ShmSpaceException cause) {
        String property = "shm.segments." + cause.getSegment() + ".size";
        return new FailureAnalysis("The shm segment '" + cause.getSegment() + "' may grow to "
                + mb(cause.getSegmentSize()) + " ('" + property + "'), but the file system of shm.directory="
                + cause.getDirectory() + " has " + mb(cause.getUsableSpace()) + " free of " + mb(cause.getTotalSpace())
                + ". A segment that outgrows a tmpfs crashes its processes with SIGBUS.",
                "Lower '" + property + "' to at most " + mb(cause.getUsableSpace()) + ", or give "
                        + cause.getDirectory() + " more room: Docker's default /dev/shm is 64 MB, raise it with "
                        + "'docker run --shm-size=256m' (Compose: 'shm_size', Kubernetes: an emptyDir volume with "
                        + "medium: Memory mounted at /dev/shm), or point 'shm.directory' at a larger tmpfs.", cause);
    }

    private static String mb(long bytes) {
        return DataSize.ofBytes(bytes).toMegabytes() + " MB (" + bytes + " bytes)";
    }
}
