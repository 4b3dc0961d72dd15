package dev.shm.core.memory;

import dev.shm.core.internal.Libc;

/**
 * How a file is mapped.
 */
public enum MapMode {

    /** Reads only; a write throws {@link ReadOnlyMappingException}. Sees writes of other processes. */
    READ_ONLY(Libc.O_RDONLY, Libc.PROT_READ, Libc.MAP_SHARED),

    /** Reads and writes, shared: every process that maps the file sees them, and they reach the file. */
    READ_WRITE(Libc.O_RDWR, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED),

    /**
     * Reads and writes, private (copy-on-write): writes are seen by this mapping only and never reach
     * the file; pages not yet written still show the file's contents. The file is opened read-only.
     */
    COPY_ON_WRITE(Libc.O_RDONLY, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE);

    final int openFlags;
    final int prot;
    final int mapFlags;

    MapMode(int openFlags, int prot, int mapFlags) {
        this.openFlags = openFlags;
        this.prot = prot;
        this.mapFlags = mapFlags;
    }

    boolean writable() {
        return (prot & Libc.PROT_WRITE) != 0;
    }
}
