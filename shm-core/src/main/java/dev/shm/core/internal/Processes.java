package dev.shm.core.internal;

import dev.shm.core.ShmException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Process identity from {@code /proc}: a pid alone can be reused by a new process after the old
 * one died, but (pid, start time) cannot, and pids are comparable only inside one PID namespace.
 *
 * <p>Internal API: not for use outside shm-core.
 */
public final class Processes {

    /**
     * What {@link #startTime(long)} returns when a process's stat cannot be read for a reason of this
     * process's, such as no free descriptor ({@code EMFILE}): nothing is known about that process.
     */
    public static final long UNREADABLE = -2;

    private static final long SELF_PID = ProcessHandle.current().pid();
    /** This process's start time, read once it is first asked for and readable (-1 until then). */
    private static volatile long selfStartTime = -1;
    private static final long SELF_PID_NAMESPACE = namespace("/proc/self/ns/pid");

    private Processes() {
    }

    /**
     * Returns this process's pid.
     *
     * @return the pid
     */
    public static long pid() {
        return SELF_PID;
    }

    /**
     * Returns this process's start time.
     *
     * @return clock ticks after boot, as {@code /proc/self/stat} states it
     * @throws ShmException when it cannot be read (not yet read, and no free descriptor, for one)
     */
    public static long startTime() {
        long time = selfStartTime;
        if (time < 0) {
            time = startTime(SELF_PID);
            if (time < 0) {
                // Recorded as this process's identity (peer table, leases), a wrong value would make
                // the others take it for a dead process: refuse rather than record it.
                throw new ShmException("cannot read this process's start time from /proc/" + SELF_PID + "/stat"
                        + (time == UNREADABLE ? " (no free descriptor?)" : ""));
            }
            selfStartTime = time;
        }
        return time;
    }

    /**
     * Returns the inode of this process's PID namespace.
     *
     * @return the namespace's inode, or -1 when it cannot be read
     */
    public static long pidNamespace() {
        return SELF_PID_NAMESPACE;
    }

    /**
     * Returns the start time of a process in this process's PID namespace.
     *
     * @param pid the process id
     * @return clock ticks after boot (field 22 of {@code /proc/<pid>/stat}), -1 when no such
     *     process exists (or its stat makes no sense), or {@link #UNREADABLE} when its stat cannot be
     *     read for a reason of this process's (no free descriptor, for one)
     */
    public static long startTime(long pid) {
        String stat;
        try {
            stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        } catch (NoSuchFileException gone) {
            return -1;
        } catch (IOException | RuntimeException unreadable) {
            return UNREADABLE;
        }
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
        int close = stat.lastIndexOf(')');
        if (close < 0) {
            return -1;
        }
        String[] fields = stat.substring(close + 2).split(" ");
        // fields[0] is field 3 (state); starttime is field 22.
        try {
            return fields.length > 19 ? Long.parseLong(fields[19]) : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /**
     * Tells whether the process that recorded (pid, start time) in PID namespace {@code namespace}
     * still runs. Only a process in this process's namespace can be checked; for another one the
     * answer is {@code true} (unknown), and the caller must rely on its lock.
     *
     * @param pid the recorded pid
     * @param startTime the recorded start time
     * @param namespace the recorded PID namespace inode
     * @return {@code false} only when the process is known to be gone
     */
    public static boolean mayBeAlive(long pid, long startTime, long namespace) {
        if (namespace != SELF_PID_NAMESPACE || SELF_PID_NAMESPACE == -1) {
            return true;
        }
        long found = startTime(pid);
        return found == startTime || found == UNREADABLE;
    }

    private static long namespace(String link) {
        try {
            return Libc.stat(link).inode();
        } catch (RuntimeException e) {
            return -1;
        }
    }
}
