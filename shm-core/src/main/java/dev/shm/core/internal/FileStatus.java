package dev.shm.core.internal;

import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.EnumSet;
import java.util.Set;

/**
 * What {@code statx} says of an open file: its type, permission bits, owner and size.
 *
 * <p>Internal API: not for use outside shm-core.
 *
 * @param mode the {@code st_mode} word: file type and permission bits
 * @param uid the owner's user id
 * @param gid the owner's group id
 * @param size the file's length in bytes
 * @param device the device the file lives on, as {@code major << 32 | minor}
 * @param inode the file's inode number on that device
 */
public record FileStatus(int mode, int uid, int gid, long size, long device, long inode) {

    private static final int S_IFMT = 0170000;
    private static final int S_IFSOCK = 0140000;
    private static final int S_IFLNK = 0120000;
    private static final int S_IFREG = 0100000;
    private static final int S_IFBLK = 0060000;
    private static final int S_IFDIR = 0040000;
    private static final int S_IFCHR = 0020000;
    private static final int S_IFIFO = 0010000;

    /**
     * Returns whether the file is a regular file (memfds are regular files too).
     *
     * @return {@code true} for a regular file
     */
    public boolean isRegularFile() {
        return (mode & S_IFMT) == S_IFREG;
    }

    /**
     * Returns whether the file is a directory.
     *
     * @return {@code true} for a directory
     */
    public boolean isDirectory() {
        return (mode & S_IFMT) == S_IFDIR;
    }

    /**
     * Returns the file type in words, for messages.
     *
     * @return e.g. {@code "a character device"}
     */
    public String typeDescription() {
        return switch (mode & S_IFMT) {
            case S_IFREG -> "a regular file";
            case S_IFDIR -> "a directory";
            case S_IFCHR -> "a character device";
            case S_IFBLK -> "a block device";
            case S_IFIFO -> "a FIFO (named pipe)";
            case S_IFSOCK -> "a socket";
            case S_IFLNK -> "a symbolic link";
            default -> "a file of unknown type (mode 0" + Integer.toOctalString(mode) + ")";
        };
    }

    /**
     * Returns the permission bits as a string such as {@code rw-------}.
     *
     * @return the permissions in {@code ls -l} form
     */
    public String permissionString() {
        return PosixFilePermissions.toString(permissions());
    }

    /**
     * Returns the permission bits.
     *
     * @return the permissions as a set
     */
    public Set<PosixFilePermission> permissions() {
        Set<PosixFilePermission> set = EnumSet.noneOf(PosixFilePermission.class);
        PosixFilePermission[] order = {
            PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_READ,
            PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_READ,
            PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_READ,
        };
        for (int bit = 0; bit < order.length; bit++) {
            if ((mode & (1 << bit)) != 0) {
                set.add(order[bit]);
            }
        }
        return set;
    }

    /**
     * Converts permissions to the octal mode bits that {@code open} and {@code fchmod} take.
     *
     * @param permissions the permissions
     * @return the mode bits, e.g. {@code 0600}
     */
    public static int modeBits(Set<PosixFilePermission> permissions) {
        int bits = 0;
        for (PosixFilePermission p : permissions) {
            bits |= switch (p) {
                case OWNER_READ -> 0400;
                case OWNER_WRITE -> 0200;
                case OWNER_EXECUTE -> 0100;
                case GROUP_READ -> 040;
                case GROUP_WRITE -> 020;
                case GROUP_EXECUTE -> 010;
                case OTHERS_READ -> 04;
                case OTHERS_WRITE -> 02;
                case OTHERS_EXECUTE -> 01;
            };
        }
        return bits;
    }
}
