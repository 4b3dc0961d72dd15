package dev.shm.bench;

import java.nio.file.Path;
import java.util.List;

/**
 * What one measurement runs: a transport, a mode, a payload size, where its files live, and how
 * many messages. The parent JVM passes it to the child JVM as program arguments.
 *
 * @param kind the transport
 * @param mode ping-pong or one-way stream
 * @param payload bytes per message (at least 8: the stamp)
 * @param dir a private directory for the run's files (segments, rings, sockets, Aeron's directory)
 * @param port the TCP port the parent listens on, or 0
 * @param warmup messages (or round trips) before measuring
 * @param count messages (or round trips) measured
 */
public record Spec(Kind kind, Mode mode, int payload, Path dir, int port, int warmup, int count) {

    /** Whether a run measures round trips or a one-way stream. */
    public enum Mode {
        /** Round trips: the parent sends, the child echoes. */
        RTT,
        /** One way: the parent sends as fast as it can, the child counts. */
        STREAM,
        /** The child waits in a blocking subscription with no traffic; the parent reads its CPU time. */
        IDLE
    }

    /**
     * Checks the spec.
     *
     * @throws IllegalArgumentException when the payload cannot hold a stamp or counts are negative
     */
    public Spec {
        if (payload < 8) {
            throw new IllegalArgumentException("payload=" + payload + " must be at least 8 bytes (the stamp)");
        }
        if (warmup < 0 || count < 0) {
            throw new IllegalArgumentException("warmup=" + warmup + " count=" + count + " must not be negative");
        }
    }

    /**
     * Returns the messages the child handles in all.
     *
     * @return warmup plus count
     */
    public long total() {
        return (long) warmup + count;
    }

    /**
     * Returns the spec as program arguments.
     *
     * @return the arguments {@link #parse} reads
     */
    public List<String> toArgs() {
        return List.of(kind.label(), mode.name(), Integer.toString(payload), dir.toString(), Integer.toString(port),
                Integer.toString(warmup), Integer.toString(count));
    }

    /**
     * Reads a spec from program arguments.
     *
     * @param args the arguments, from {@code offset}
     * @param offset where the spec starts
     * @return the spec
     */
    public static Spec parse(String[] args, int offset) {
        return new Spec(Kind.of(args[offset]), Mode.valueOf(args[offset + 1]), Integer.parseInt(args[offset + 2]),
                Path.of(args[offset + 3]), Integer.parseInt(args[offset + 4]), Integer.parseInt(args[offset + 5]),
                Integer.parseInt(args[offset + 6]));
    }
}
