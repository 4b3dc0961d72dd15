package dev.shm.spring.autoconfigure;

import java.nio.file.Path;

/**
 * The file system of {@code shm.directory} is smaller than a segment may grow: on tmpfs, a segment
 * that grows past it would crash its processes with SIGBUS. Docker gives containers a 64 MB
 * {@code /dev/shm} by default. Reported by {@link ShmSpaceFailureAnalyzer}.
 */
public class ShmSpaceException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String segment;
    private final transient Path directory;
    private final long segmentSize;
    private final long totalSpace;
    private final long usableSpace;

    /**
     * Creates the exception.
     *
     * @param segment the segment's name
     * @param directory the directory
     * @param segmentSize the segment's size
     * @param totalSpace the file system's size
     * @param usableSpace what is free on it
     */
    public ShmSpaceException(String segment, Path directory, long segmentSize, long totalSpace, long usableSpace) {
        super("segment '" + segment + "' may grow to " + segmentSize + " bytes but the file system of " + directory
                + " has " + usableSpace + " bytes free of " + totalSpace);
        this.segment = segment;
        this.directory = directory;
        this.segmentSize = segmentSize;
        this.totalSpace = totalSpace;
        this.usableSpace = usableSpace;
    }

    /** @return the segment's name */
    public String getSegment() {
        return segment;
    }

    /** @return the directory */
    public Path getDirectory() {
        return directory;
    }

    /** @return the segment's size in bytes */
    public long getSegmentSize() {
        return segmentSize;
    }

    /** @return the file system's size in bytes */
    public long getTotalSpace() {
        return totalSpace;
    }

    /** @return the free bytes of the file system */
    public long getUsableSpace() {
        return usableSpace;
    }
}
