package dev.shm.spring.autoconfigure;

import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

/** Explains a {@link ShmDirectoryException}: a directory that cannot hold segment files. */
public final class ShmDirectoryFailureAnalyzer extends AbstractFailureAnalyzer<ShmDirectoryException> {

    /** Creates the analyzer. */
    public ShmDirectoryFailureAnalyzer() {
    }

    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, ShmDirectoryException cause) {
        return new FailureAnalysis("The shm segment directory 'shm.directory' (" + cause.getDirectory() + ") "
                + cause.getProblem() + ".", "Set 'shm.directory' to an existing directory on a tmpfs that this "
                + "process's user may write to (the default is /dev/shm), or create " + cause.getDirectory()
                + " and give the user write permission (every process that shares the segments needs it).", cause);
    }
}
