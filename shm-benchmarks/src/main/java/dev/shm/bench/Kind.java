package dev.shm.bench;

import java.util.Arrays;
import java.util.stream.Collectors;

/** The transports and cases the harness runs, in the order each repeat runs them. */
public enum Kind {
    /** Two JVMs spinning on one mapped long each: the floor no transport can beat. */
    FLOOR("floor", true, false),
    /** Two rings of slots laid out as ours, with no protocol: what walking a ring costs. */
    RAW_RING("raw-ring", true, true),
    /** Our channel, single producer, busy-spin. */
    SHM("shm", true, true),
    /** Aeron IPC, embedded media driver with one SHARED thread (backoff idle). */
    AERON_SHARED("aeron-shared", true, true),
    /** Aeron IPC, INVOKER mode: no driver thread, the sending client runs the driver's duty cycle. */
    AERON_INVOKER("aeron-invoker", true, true),
    /** Agrona's OneToOneRingBuffer over a mapped file, one each way. */
    AGRONA("agrona", true, true),
    /** Unix domain sockets, non-blocking, busy-polled. */
    UDS("uds", true, true),
    /** TCP over loopback, TCP_NODELAY, non-blocking, busy-polled. */
    TCP("tcp", true, true),
    /** Spring Integration over our starter: Shm gateways (a lane pair) and channel adapters, in Spring Boot contexts. */
    SI_SHM("si-shm", true, true),
    /** Spring Integration's TCP module: Tcp gateways and adapters over loopback, in Spring Boot contexts. */
    SI_TCP("si-tcp", true, true),
    /** Our channel with WaitStrategy.BLOCKING: idle CPU of a subscriber, and the wake-up round trip. */
    BLOCKING("blocking", true, false);

    private final String label;
    private final boolean rtt;
    private final boolean stream;

    Kind(String label, boolean rtt, boolean stream) {
        this.label = label;
        this.rtt = rtt;
        this.stream = stream;
    }

    /**
     * Returns the name used on the command line and in reports.
     *
     * @return the label
     */
    public String label() {
        return label;
    }

    /**
     * Tells whether the case runs Spring Integration (a Spring Boot context per side, threads of
     * its own): fewer messages, and the child's harness thread sleeps instead of spinning.
     *
     * @return {@code true} for the Spring Integration cases
     */
    public boolean isSpring() {
        return this == SI_SHM || this == SI_TCP;
    }

    /**
     * Tells whether the case has a ping-pong run.
     *
     * @return {@code true} when it measures round trips
     */
    public boolean hasRtt() {
        return rtt;
    }

    /**
     * Tells whether the case has a one-way stream run.
     *
     * @return {@code true} when it measures throughput
     */
    public boolean hasStream() {
        return stream;
    }

    /**
     * Finds a kind by label.
     *
     * @param label the label
     * @return the kind
     * @throws IllegalArgumentException naming the known labels
     */
    public static Kind of(String label) {
        for (Kind kind : values()) {
            if (kind.label.equals(label)) {
                return kind;
            }
        }
        throw new IllegalArgumentException("case=" + label + " is none of "
                + Arrays.stream(values()).map(Kind::label).collect(Collectors.joining(", ")));
    }

    /**
     * Opens this transport's endpoint for one side.
     *
     * @param spec the run
     * @param parent {@code true} in the parent JVM (which creates the shared resources)
     * @return the endpoint
     */
    public Endpoint open(Spec spec, boolean parent) {
        return switch (this) {
            case FLOOR -> new FloorEndpoint(spec, parent);
            case RAW_RING -> new RawRingEndpoint(spec, parent);
            case SHM, BLOCKING -> new ShmEndpoint(spec, parent);
            case AERON_SHARED, AERON_INVOKER -> new AeronEndpoint(spec, parent);
            case AGRONA -> new AgronaEndpoint(spec, parent);
            case UDS, TCP -> new SocketEndpoint(spec, parent);
            case SI_SHM, SI_TCP -> new SpringEndpoint(spec, parent);
        };
    }
}
