package dev.shm.core.segment;

/**
 * What a segment knows of a peer's process. Death is decided by the operating system — the peer's
 * lock, which the kernel drops when the process dies, and its pid and start time — never by a
 * heartbeat. A heartbeat older than the liveness timeout of a process that lives is a stall.
 */
public enum Liveness {
    /** The process lives and its heartbeat is fresh. */
    ALIVE,
    /** The process lives, but its heartbeat is older than the liveness timeout (a GC pause, SIGSTOP, a deadlock). */
    STALLED,
    /** The process is gone: its lock was released, or its pid now names another process or none. */
    DEAD,
    /** The entry is empty: no process to speak of. */
    NONE
}
