package dev.shm.spring.autoconfigure;

import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentException;
import dev.shm.core.segment.SegmentOptions;
import dev.shm.spring.support.ShmDeclarationMismatchException;
import java.io.IOException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Opens a segment for the application after checking what shm-core cannot explain in Spring's
 * terms: the directory, and whether its file system can hold the segment.
 */
public final class ShmSegmentFactory {

    private ShmSegmentFactory() {
    }

    /**
     * Checks the directory and the space, then creates or attaches the segment.
     *
     * @param options the segment's options
     * @param peerName the name this process goes by in the segment
     * @return the attached segment
     * @throws ShmDirectoryException when the directory cannot hold segment files
     * @throws ShmSpaceException when its file system is smaller than the segment
     * @throws ShmDeclarationMismatchException when the segment exists with other parameters
     */
    public static Segment open(SegmentOptions options, String peerName) {
        Path directory = options.directory();
        checkDirectory(directory);
        if (!Files.exists(options.path())) {
            checkSpace(options.name(), directory, options.size());
        }
        try {
            return Segment.open(options, peerName);
        } catch (SegmentException e) {
            if (e.reason() == SegmentException.Reason.PARAMETER_MISMATCH) {
                throw new ShmDeclarationMismatchException("shm.segments." + options.name(), e);
            }
            throw e;
        }
    }

    /**
     * Checks that a directory exists, is one, and is writable.
     *
     * @param directory the directory
     * @throws ShmDirectoryException when not
     */
    public static void checkDirectory(Path directory) {
        if (!Files.exists(directory)) {
            throw new ShmDirectoryException(directory, "does not exist");
        }
        if (!Files.isDirectory(directory)) {
            throw new ShmDirectoryException(directory, "is not a directory");
        }
        if (!Files.isWritable(directory)) {
            throw new ShmDirectoryException(directory, "is not writable by this process (user "
                    + System.getProperty("user.name") + ")");
        }
    }

    /**
     * Checks that the file system of a directory has room for a segment of a size.
     *
     * @param segment the segment's name
     * @param directory the directory
     * @param size the segment's size
     * @throws ShmSpaceException when it has not
     */
    public static void checkSpace(String segment, Path directory, long size) {
        try {
            FileStore store = Files.getFileStore(directory);
            long total = store.getTotalSpace();
            long usable = store.getUsableSpace();
            if (total < size || usable < size) {
                throw new ShmSpaceException(segment, directory, size, total, usable);
            }
        } catch (IOException e) {
            // statvfs failed: shm-core will report what goes wrong when it creates the file
        }
    }
}
