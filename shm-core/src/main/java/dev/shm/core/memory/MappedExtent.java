package dev.shm.core.memory;

/**
 * A further range of a {@link MappedFile}, mapped on its own so that what was mapped before stays
 * where it is (see {@link MappedFile#mapExtent}). Offsets start at the extent's first byte.
 *
 * <p>Thread-safety: safe for use by many threads.
 */
public final class MappedExtent extends MemoryRegion implements AutoCloseable {

    private final FileMapping file;
    private final Mapping mapping;

    MappedExtent(FileMapping file, Mapping mapping) {
        this.file = file;
        this.mapping = mapping;
    }

    /**
     * Returns the file offset of the extent's first byte.
     *
     * @return the offset in the file
     */
    public long fileOffset() {
        return mapping.fileOffset;
    }

    /**
     * Unmaps the extent; its views become stale. Idempotent.
     */
    @Override
    public void close() {
        boolean unmapped = mapping.close(FileMapping.UNMAP_PATIENCE);
        file.forget(this);
        if (!unmapped) {
            throw new IllegalStateException("cannot unmap " + subject() + ": a native call still uses it after "
                    + FileMapping.UNMAP_PATIENCE.toSeconds() + " s");
        }
    }

    @Override
    Mapping mapping() {
        return mapping;
    }

    @Override
    boolean isClosed() {
        return !mapping.isAlive();
    }

    @Override
    String subject() {
        return file.subject() + " extent [offset=" + mapping.fileOffset + ", length=" + mapping.length + "]";
    }

    @Override
    MapMode mode() {
        return file.mode();
    }

    @Override
    long fileSize() {
        return file.stat().size();
    }
}
