package dev.shm.bench;

import io.aeron.Aeron;
import io.aeron.ExclusivePublication;
import io.aeron.FragmentAssembler;
import io.aeron.Publication;
import io.aeron.Subscription;
import io.aeron.driver.MediaDriver;
import io.aeron.driver.ThreadingMode;
import io.aeron.logbuffer.FragmentHandler;
import io.aeron.logbuffer.Header;
import java.nio.ByteBuffer;
import org.agrona.CloseHelper;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.AgentInvoker;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Aeron IPC between two JVMs, tuned for two cores: the parent embeds the media driver, either
 * {@link ThreadingMode#SHARED} (one driver thread, backoff idle: for latency) or
 * {@link ThreadingMode#INVOKER} (no driver thread: the parent's client runs the driver's duty cycle
 * whenever it waits, for throughput). Async executor off, term files not sparse, 16 MiB terms (so a
 * message may be up to 2 MiB), a 64 KiB MTU (fewer fragments for large messages), exclusive
 * publications (one writer each), and a fragment assembler on every subscription.
 */
final class AeronEndpoint extends Endpoint {

    /** IPC term length: Aeron's largest message is an eighth of it. */
    static final int TERM_LENGTH = 16 << 20;
    /** The largest MTU Aeron takes (a multiple of 32 below 64 KiB). */
    static final int MTU = 65_504;
    private static final String CHANNEL = "aeron:ipc";
    private static final int PING_STREAM = 1001;
    private static final int PONG_STREAM = 1002;

    private final MediaDriver driver;
    private final Aeron aeron;
    private final AgentInvoker driverInvoker;
    private final AgentInvoker clientInvoker;
    private final ExclusivePublication publication;
    private final Subscription subscription;
    private final UnsafeBuffer source;
    private final int payload;
    private final FragmentHandler receiver;
    private final FragmentHandler echoer;
    /** Whole messages handed out by the current poll (Aeron's poll counts fragments). */
    private int delivered;

    AeronEndpoint(Spec spec, boolean parent) {
        this.payload = spec.payload();
        String dir = spec.dir().resolve("aeron").toString();
        boolean invoker = spec.kind() == Kind.AERON_INVOKER;
        if (parent) {
            MediaDriver.Context context = new MediaDriver.Context()
                    .aeronDirectoryName(dir)
                    .threadingMode(invoker ? ThreadingMode.INVOKER : ThreadingMode.SHARED)
                    .sharedIdleStrategy(new BackoffIdleStrategy())
                    .asyncTaskExecutorThreads(0)
                    .termBufferSparseFile(false)
                    .ipcTermBufferLength(TERM_LENGTH)
                    .ipcMtuLength(MTU)
                    .dirDeleteOnStart(true)
                    .dirDeleteOnShutdown(true);
            this.driver = MediaDriver.launch(context);
            Aeron.Context client = new Aeron.Context().aeronDirectoryName(dir);
            if (invoker) {
                client.useConductorAgentInvoker(true).driverAgentInvoker(driver.sharedAgentInvoker());
            }
            this.aeron = Aeron.connect(client);
            this.driverInvoker = invoker ? driver.sharedAgentInvoker() : null;
            this.clientInvoker = invoker ? aeron.conductorAgentInvoker() : null;
        } else {
            this.driver = null;
            this.aeron = Aeron.connect(new Aeron.Context().aeronDirectoryName(dir));
            this.driverInvoker = null;
            this.clientInvoker = null;
        }
        boolean twoWay = spec.mode() == Spec.Mode.RTT;
        if (parent) {
            this.publication = aeron.addExclusivePublication(CHANNEL, PING_STREAM);
            this.subscription = twoWay ? aeron.addSubscription(CHANNEL, PONG_STREAM) : null;
        } else {
            this.subscription = aeron.addSubscription(CHANNEL, PING_STREAM);
            this.publication = twoWay ? aeron.addExclusivePublication(CHANNEL, PONG_STREAM) : null;
        }
        this.source = new UnsafeBuffer(ByteBuffer.allocateDirect(Math.max(payload, 64)));
        int assembly = Math.max(payload, 64 << 10);
        this.receiver = new FragmentAssembler(this::onMessage, assembly);
        this.echoer = new FragmentAssembler(this::onEcho, assembly);
    }

    @Override
    public void awaitConnected() {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!publication.isConnected() || (subscription != null && !subscription.isConnected())) {
            if (System.nanoTime() - deadline > 0) {
                throw new IllegalStateException("Aeron IPC did not connect in 30 s");
            }
            service();
            Thread.onSpinWait();
        }
    }

    @Override
    public void service() {
        if (driverInvoker != null) {
            driverInvoker.invoke();
            clientInvoker.invoke();
        }
    }

    @Override
    public void send(long stamp) {
        source.putLong(0, stamp);
        offer(source, 0, payload);
    }

    private void offer(DirectBuffer buffer, int offset, int length) {
        while (true) {
            long result = publication.offer(buffer, offset, length);
            if (result > 0) {
                return;
            }
            if (result == Publication.CLOSED || result == Publication.MAX_POSITION_EXCEEDED) {
                throw new IllegalStateException("Aeron offer failed: " + Publication.errorString(result));
            }
            service(); // BACK_PRESSURED, NOT_CONNECTED or ADMIN_ACTION: retry
            checkAborted();
            Thread.onSpinWait();
        }
    }

    @Override
    public int poll(int limit) {
        delivered = 0;
        if (subscription.poll(receiver, limit) == 0) {
            service();
        }
        return delivered;
    }

    @Override
    public int echo(int limit) {
        delivered = 0;
        subscription.poll(echoer, limit);
        return delivered;
    }

    private void onMessage(DirectBuffer buffer, int offset, int length, Header header) {
        delivered++;
        received(buffer.getLong(offset));
    }

    private void onEcho(DirectBuffer buffer, int offset, int length, Header header) {
        delivered++;
        received(buffer.getLong(offset));
        offer(buffer, offset, length);
    }

    @Override
    public void close() {
        CloseHelper.closeAll(publication, subscription, aeron, driver);
    }
}
