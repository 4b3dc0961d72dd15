package dev.shm.spring.autoconfigure;

import java.nio.file.Path;

/**
 * {@code shm.directory} cannot hold segment files: it does not exist, is not a directory, or this
 * process may not create files in it. Reported by {@link ShmDirectoryFailureAnalyzer}.
 */
public class ShmDirectoryException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final transient Path directory;
    private final String problem;

    /**
     * Creates the exception.
     *
     * @param directory the directory
     * @param problem what is wrong with it
     */
    public ShmDirectoryException(Path directory, String problem) {
        super("shm.directory=" + directory + " " + problem);
        this.directory = directory;
        this.problem = problem;
    }

    /** @return the directory */
    public Path getDirectory() {
        return directory;
    }

    /** @return what is wrong */
    public String getProblem() {
        return problem;
    }
}
