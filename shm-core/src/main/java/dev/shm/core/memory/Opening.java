package dev.shm.core.memory;

import dev.shm.core.ErrnoException;
import dev.shm.core.internal.Errno;
import dev.shm.core.internal.FileStatus;
import dev.shm.core.internal.Libc;
import dev.shm.core.memory.MappingException.Reason;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * Opens files for mapping and turns failures into {@link MappingException}s that say what was
 * expected, what was found, and what to do.
 */
final class Opening {

    private Opening() {
    }

    /** Opens {@code path}; {@code action} is e.g. "open ... for READ_WRITE", for the message. */
    static int open(Path path, int flags, int mode, String action) {
        try {
            // O_NONBLOCK: opening a FIFO without a writer would otherwise block forever. O_NOCTTY: a
            // path that names a terminal (a memfd's /proc path from shared memory may name any file of
            // its process) must not become this process's controlling terminal before it is refused.
            return Libc.open(path.toString(), flags | Libc.O_NONBLOCK | Libc.O_NOCTTY, mode);
        } catch (ErrnoException e) {
            throw translate(e, path.toString(), action, path);
        }
    }

    /** Checks that an open descriptor is a regular file of at least {@code minimumSize} bytes. */
    static FileStatus checkMappable(int fd, String subject, long minimumSize) {
        FileStatus status;
        try {
            status = Libc.fstat(fd, subject);
        } catch (ErrnoException e) {
            throw translate(e, subject, "stat", null);
        }
        if (status.isDirectory()) {
            throw new MappingException(Reason.IS_DIRECTORY,
                    "cannot map " + subject + ": it is a directory, not a regular file", null);
        }
        if (!status.isRegularFile()) {
            throw new MappingException(Reason.UNMAPPABLE, "cannot map " + subject + ": it is "
                    + status.typeDescription() + ", not a regular file; only regular files and memfds can be mapped",
                    null);
        }
        if (status.size() == 0) {
            boolean pseudo = subject.startsWith("/proc/") || subject.startsWith("/sys/");
            throw new MappingException(Reason.EMPTY, "cannot map " + subject + ": the file is empty (0 bytes)"
                    + (pseudo ? "; files under /proc and /sys report 0 bytes and cannot be mapped" : ""), null);
        }
        if (status.size() < minimumSize) {
            throw new MappingException(Reason.TOO_SHORT, subject + " is " + status.size()
                    + " bytes, shorter than the " + minimumSize + " bytes the caller expects", null);
        }
        return status;
    }

    /**
     * Translates a failed call into a {@link MappingException}.
     *
     * @param e the failure
     * @param subject what was being opened or mapped
     * @param action what was being done, e.g. "open for READ_WRITE"
     * @param path the path, to describe its owner and permissions on EACCES; {@code null} for none
     */
    static MappingException translate(ErrnoException e, String subject, String action, Path path) {
        String prefix = "cannot " + action + " " + subject + ": ";
        return switch (e.errno()) {
            case Errno.ENOENT -> new MappingException(Reason.NOT_FOUND, prefix + "no such file (ENOENT)", e);
            case Errno.EEXIST -> new MappingException(Reason.ALREADY_EXISTS,
                    prefix + "the file exists (EEXIST); open it instead, or remove it first", e);
            case Errno.EACCES, Errno.EPERM -> new MappingException(Reason.ACCESS_DENIED,
                    prefix + "permission denied (" + e.errnoName() + ")" + ownership(path)
                            + "; run as a user the file's mode allows, or change the mode", e);
            case Errno.EISDIR -> new MappingException(Reason.IS_DIRECTORY,
                    prefix + "it is a directory, not a regular file", e);
            case Errno.ENXIO, Errno.ENODEV -> new MappingException(Reason.UNMAPPABLE,
                    prefix + "the file cannot be mapped (" + e.errnoName() + "): a device, socket or file system "
                            + "without mmap; only regular files and memfds can be mapped", e);
            case Errno.ENOSPC, Errno.EFBIG -> new MappingException(Reason.NO_SPACE,
                    prefix + "no room on the file system (" + e.errnoName() + ")" + freeSpace(path)
                            + "; /dev/shm is a tmpfs sized by the host (Docker: --shm-size, Kubernetes: an emptyDir "
                            + "with medium: Memory and a sizeLimit)", e);
            default -> new MappingException(Reason.SYSTEM_ERROR, prefix + e.getMessage(), e);
        };
    }

    private static String ownership(Path path) {
        if (path == null) {
            return "";
        }
        try {
            PosixFileAttributes attributes = Files.readAttributes(path, PosixFileAttributes.class);
            return "; the file is " + PosixFilePermissions.toString(attributes.permissions()) + " owned by "
                    + attributes.owner().getName() + ", and this process runs as uid " + Libc.geteuid();
        } catch (IOException | RuntimeException unreadable) {
            return "; this process runs as uid " + Libc.geteuid();
        }
    }

    private static String freeSpace(Path path) {
        if (path == null) {
            return "";
        }
        try {
            Path dir = path.toAbsolutePath().getParent();
            return "; " + dir + " has " + Files.getFileStore(dir).getUsableSpace() + " bytes free";
        } catch (IOException | RuntimeException unreadable) {
            return "";
        }
    }
}
