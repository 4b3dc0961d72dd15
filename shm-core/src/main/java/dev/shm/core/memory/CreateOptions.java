package dev.shm.core.memory;

import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.EnumSet;
import java.util.Set;

/**
 * How {@link MappedFile#create(java.nio.file.Path, long, CreateOptions)} creates a file.
 *
 * @param permissions the file's mode, set exactly (the process's umask does not apply); the default
 *     is owner-only, {@code rw-------}
 * @param preallocate whether to reserve the file's blocks at once ({@code posix_fallocate}), so that
 *     a file system without room fails at creation with {@link MappingException.Reason#NO_SPACE}
 *     instead of faulting at the first touch of a page; off by default
 */
public record CreateOptions(Set<PosixFilePermission> permissions, boolean preallocate) {

    /** Owner-only ({@code rw-------}), not preallocated. */
    public static final CreateOptions DEFAULTS = new CreateOptions(PosixFilePermissions.fromString("rw-------"), false);

    /**
     * Creates options.
     *
     * @param permissions the file's mode
     * @param preallocate whether to reserve the file's blocks at once
     */
    public CreateOptions {
        permissions = permissions.isEmpty() ? Set.of() : Set.copyOf(EnumSet.copyOf(permissions));
    }

    /**
     * Returns these options with other permissions.
     *
     * @param permissions e.g. {@code "rw-rw----"}, as {@code ls -l} prints them
     * @return the new options
     * @throws IllegalArgumentException when the string is not nine characters of {@code rwx-}
     */
    public CreateOptions withPermissions(String permissions) {
        return new CreateOptions(PosixFilePermissions.fromString(permissions), preallocate);
    }

    /**
     * Returns these options with preallocation on or off.
     *
     * @param preallocate whether to reserve the file's blocks at once
     * @return the new options
     */
    public CreateOptions withPreallocate(boolean preallocate) {
        return new CreateOptions(permissions, preallocate);
    }
}
