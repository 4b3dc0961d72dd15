package dev.shm.bench;

import dev.shm.core.segment.Segment;
import dev.shm.spring.dsl.Shm;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.springframework.boot.Banner;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.integration.core.MessagingTemplate;
import org.springframework.integration.dsl.IntegrationFlow;
import org.springframework.integration.dsl.context.IntegrationFlowContext;
import org.springframework.integration.dsl.context.IntegrationFlowContext.IntegrationFlowRegistration;
import org.springframework.integration.ip.dsl.Tcp;
import org.springframework.integration.ip.tcp.connection.AbstractConnectionFactory;
import org.springframework.integration.ip.tcp.connection.TcpNetClientConnectionFactory;
import org.springframework.integration.ip.tcp.connection.TcpNetServerConnectionFactory;
import org.springframework.integration.ip.tcp.serializer.ByteArrayLengthHeaderSerializer;
import org.springframework.messaging.Message;
import org.springframework.messaging.support.MessageBuilder;

/**
 * Spring Integration across two JVMs, written as an application writes it: a Spring Boot context in
 * each JVM, an {@code IntegrationFlow} on each side, {@code byte[]} payloads.
 *
 * <ul>
 *   <li>{@link Kind#SI_SHM}: our starter. Round trips through {@code Shm.outboundGateway} and
 *       {@code Shm.inboundGateway} (a lane pair of the segment); the stream through
 *       {@code Shm.outboundAdapter} and an exclusive {@code Shm.inboundAdapter} (a channel with the
 *       default options: 4,096 slots of 512 bytes, {@code BLOCK}, the {@code BACKOFF} wait).
 *   <li>{@link Kind#SI_TCP}: Spring Integration's TCP module, its peer for a Spring application.
 *       Round trips through {@code Tcp.outboundGateway} and {@code Tcp.inboundGateway}; the stream
 *       through {@code Tcp.outboundAdapter} and {@code Tcp.inboundAdapter}. Connection factories of
 *       the {@code Net} kind (a reader thread per connection, the lower-latency kind), one long-lived
 *       connection, {@code TCP_NODELAY}, a 4-byte length header.
 * </ul>
 *
 * <p>Both carry the same work per message: the parent builds a {@code Message} with a fresh
 * payload array, the flow's threads (the gateway's reply reader, the inbound side's serving or
 * reading thread) hand it on. The parent sends from the harness's thread: a round trip is one
 * {@code MessagingTemplate.sendAndReceive}. The child's flow runs on the transport's own thread,
 * which checks each stamp and counts; the child's harness thread only reads the count, sleeping
 * between looks, so that it takes no core from the flow. The child's context is up (the TCP server
 * listening, its port written to a file) before it says READY; the parent's starts after that, in
 * {@link #awaitConnected}, and opens its TCP connection there, before the harness pins the sending
 * thread to a core (a thread inherits its creator's pin: the connection's reader thread would
 * otherwise share the sender's core).
 */
final class SpringEndpoint extends Endpoint {

    private static final VarHandle STAMP = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    /** How long the child's harness thread sleeps between looks at the count when it did not move. */
    private static final long LOOK_EVERY_NANOS = 100_000;
    private static final String SERVICE = "echo";
    private static final String STREAM = "stream";

    private final Spec spec;
    private final boolean parent;
    private final Path portFile;
    private ConfigurableApplicationContext context;
    private MessagingTemplate template;
    /** Messages the child's flow handled; written by the flow's one thread, read by the harness's. */
    private final AtomicLong handled = new AtomicLong();
    private long looked;
    /** The parent's last reply's stamp, or -1 when it was taken. */
    private long reply = -1;

    /** The application: Spring Boot's auto-configuration (ours and Spring Integration's), no beans of its own. */
    @SpringBootConfiguration(proxyBeanMethods = false)
    @EnableAutoConfiguration
    static class Application {
    }

    SpringEndpoint(Spec spec, boolean parent) {
        this.spec = spec;
        this.parent = parent;
        this.portFile = spec.dir().resolve("si-tcp.port");
        if (!parent) {
            start();
        }
    }

    @Override
    public void awaitConnected() {
        if (parent && context == null) {
            start();
        }
    }

    private void start() {
        context = new SpringApplicationBuilder(Application.class)
                .web(WebApplicationType.NONE)
                .bannerMode(Banner.Mode.OFF)
                .logStartupInfo(false)
                .properties(properties().toArray(String[]::new))
                .run();
        IntegrationFlowContext flows = context.getBean(IntegrationFlowContext.class);
        boolean rtt = spec.mode() == Spec.Mode.RTT;
        if (spec.kind() == Kind.SI_SHM) {
            Segment segment = context.getBean(Segment.class);
            if (parent) {
                IntegrationFlow flow = rtt ? f -> f.handle(Shm.outboundGateway(segment, SERVICE))
                        : f -> f.handle(Shm.outboundAdapter(segment, STREAM));
                template = flows.registration(flow).register().getMessagingTemplate();
            } else {
                IntegrationFlow flow = rtt ? IntegrationFlow.from(Shm.inboundGateway(segment, SERVICE))
                        .handle(byte[].class, (payload, headers) -> count(payload)).get()
                        : IntegrationFlow.from(Shm.inboundAdapter(segment, STREAM).group("receiver").exclusive(true))
                                .handle(message -> count((byte[]) message.getPayload())).get();
                flows.registration(flow).register();
            }
        } else if (parent) {
            TcpNetClientConnectionFactory client = codec(new TcpNetClientConnectionFactory("127.0.0.1", readPort()));
            IntegrationFlow flow = rtt ? f -> f.handle(Tcp.outboundGateway(client))
                    : f -> f.handle(Tcp.outboundAdapter(client));
            IntegrationFlowRegistration registration = flows.registration(flow).addBean(client).register();
            template = registration.getMessagingTemplate();
            // Connect now, before the harness pins this thread: the connection's reader thread, made
            // by the thread that connects, would inherit the pin and share a core with the sender.
            try {
                client.getConnection();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted connecting to the child", e);
            }
        } else {
            TcpNetServerConnectionFactory server = codec(new TcpNetServerConnectionFactory(0));
            IntegrationFlow flow = rtt ? IntegrationFlow.from(Tcp.inboundGateway(server))
                    .handle(byte[].class, (payload, headers) -> count(payload)).get()
                    : IntegrationFlow.from(Tcp.inboundAdapter(server))
                            .handle(message -> count((byte[]) message.getPayload())).get();
            flows.registration(flow).addBean(server).register();
            awaitListening(server);
            try {
                Files.writeString(portFile, Integer.toString(server.getPort()), StandardCharsets.US_ASCII);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write " + portFile, e);
            }
        }
        if (template != null) {
            template.setReceiveTimeout(30_000);
        }
    }

    private List<String> properties() {
        List<String> p = new ArrayList<>(List.of(
                "spring.application.name=bench-" + (parent ? "sender" : "receiver"),
                "logging.level.root=warn",
                "shm.directory=" + spec.dir(),
                "shm.shutdown.drain-timeout=1s",
                "shm.segments.bench.size=256MB"));
        if (spec.payload() > 2048) {
            // A class that holds the payload with its headers: the gateway's lanes and the channel
            // carry larger messages as slot references.
            p.add("shm.segments.bench.slot-classes[0].size=4KB");
            p.add("shm.segments.bench.slot-classes[0].count=256");
            p.add("shm.segments.bench.slot-classes[1].size=" + ((spec.payload() + 8192) / 4096 * 4096) + "B");
            p.add("shm.segments.bench.slot-classes[1].count=16");
        }
        return p;
    }

    private <F extends AbstractConnectionFactory> F codec(F factory) {
        ByteArrayLengthHeaderSerializer codec = new ByteArrayLengthHeaderSerializer();
        codec.setMaxMessageSize(spec.payload() + 64);
        factory.setSerializer(codec);
        factory.setDeserializer(codec);
        factory.setSoTcpNoDelay(true);
        return factory;
    }

    private static void awaitListening(TcpNetServerConnectionFactory server) {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!server.isListening()) {
            if (System.nanoTime() - deadline > 0) {
                throw new IllegalStateException("the TCP server did not listen within 30 s");
            }
            LockSupport.parkNanos(1_000_000);
        }
    }

    private int readPort() {
        try {
            return Integer.parseInt(Files.readString(portFile, StandardCharsets.US_ASCII).trim());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the child's port from " + portFile, e);
        }
    }

    /** The child's flow: checks the stamp and counts; the payload is the reply of a round trip. */
    private byte[] count(byte[] payload) {
        if (payload.length != spec.payload()) {
            throw new IllegalStateException("a " + payload.length + "-byte payload where " + spec.payload()
                    + " were sent");
        }
        received((long) STAMP.get(payload, 0));
        handled.lazySet(handled.get() + 1); // one writer: the flow's thread
        return payload;
    }

    private static byte[] payload(int length, long stamp) {
        byte[] payload = new byte[length];
        STAMP.set(payload, 0, stamp);
        return payload;
    }

    @Override
    public void send(long stamp) {
        Message<byte[]> message = MessageBuilder.withPayload(payload(spec.payload(), stamp)).build();
        if (spec.mode() == Spec.Mode.RTT) {
            Message<?> answer = template.sendAndReceive(message);
            if (answer == null) {
                throw new IllegalStateException(spec.kind().label() + ": no reply within 30 s");
            }
            reply = (long) STAMP.get((byte[]) answer.getPayload(), 0);
        } else {
            template.send(message);
        }
    }

    @Override
    public int poll(int limit) {
        if (parent) {
            if (reply < 0) {
                return 0;
            }
            received(reply);
            reply = -1;
            return 1;
        }
        return look();
    }

    @Override
    public int echo(int limit) {
        return look(); // the flow echoes; this thread only counts
    }

    /** The child: what the flow handled since the last look, after a short sleep when nothing. */
    private int look() {
        long now = handled.get();
        if (now == looked) {
            LockSupport.parkNanos(LOOK_EVERY_NANOS);
            now = handled.get();
        }
        int n = (int) (now - looked);
        looked = now;
        return n;
    }

    @Override
    public void close() {
        if (context != null) {
            context.close();
        }
    }
}
