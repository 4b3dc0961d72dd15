package dev.shm.bench.jmh;

import io.aeron.Aeron;
import io.aeron.ExclusivePublication;
import io.aeron.Subscription;
import io.aeron.driver.MediaDriver;
import io.aeron.driver.ThreadingMode;
import io.aeron.logbuffer.FragmentHandler;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.agrona.CloseHelper;
import org.agrona.concurrent.UnsafeBuffer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The peer of {@link ChannelBenchmark}: Aeron IPC's hot path in one thread of one process, an
 * exclusive publication's {@code offer} and its subscription's {@code poll} of the same message,
 * with an embedded media driver in {@link ThreadingMode#INVOKER} mode (no driver thread; its duty
 * cycle runs while connecting and when the publication is back-pressured), 16 MiB terms as in the
 * harness. Same payloads, so the two benchmarks' scores compare the instructions and atomics of the
 * two transports; at 1 KiB Aeron's terms, larger than the caches, add the cost of fresh memory.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
        "-Dagrona.disable.bounds.checks=true"})
public class AeronBenchmark {

    /** Payload bytes. */
    @Param({"32", "1024"})
    public int payload;

    private Path dir;
    private MediaDriver driver;
    private Aeron aeron;
    private ExclusivePublication publication;
    private Subscription subscription;
    private UnsafeBuffer source;
    private long sum;
    private final FragmentHandler handler = (buffer, offset, length, header) -> sum += buffer.getLong(offset) + 1;

    /**
     * Launches the driver in a fresh directory and connects a publication and a subscription.
     *
     * @throws Exception when the directory cannot be made
     */
    @Setup(Level.Trial)
    public void setUp() throws Exception {
        dir = Files.createTempDirectory(Path.of("/dev/shm"), "aeron-jmh-");
        driver = MediaDriver.launch(new MediaDriver.Context()
                .aeronDirectoryName(dir.toString())
                .threadingMode(ThreadingMode.INVOKER)
                .asyncTaskExecutorThreads(0)
                .termBufferSparseFile(false)
                .ipcTermBufferLength(16 << 20) // as the harness's AeronEndpoint
                .dirDeleteOnStart(true)
                .dirDeleteOnShutdown(true));
        aeron = Aeron.connect(new Aeron.Context().aeronDirectoryName(dir.toString())
                .useConductorAgentInvoker(true).driverAgentInvoker(driver.sharedAgentInvoker()));
        publication = aeron.addExclusivePublication("aeron:ipc", 1001);
        subscription = aeron.addSubscription("aeron:ipc", 1001);
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!publication.isConnected() || !subscription.isConnected()) {
            if (System.nanoTime() - deadline > 0) {
                throw new IllegalStateException("Aeron IPC did not connect in 30 s");
            }
            driver.sharedAgentInvoker().invoke();
            aeron.conductorAgentInvoker().invoke();
        }
        source = new UnsafeBuffer(ByteBuffer.allocateDirect(Math.max(payload, 64)));
    }

    /**
     * Offers one message and polls it back; when the publication is back-pressured (the driver's
     * limit lags), runs the driver's duty cycle and offers again.
     *
     * @return what the handler saw, for the blackhole
     */
    @Benchmark
    public long offerAndPoll() {
        source.putLong(0, sum);
        while (publication.offer(source, 0, payload) < 0) {
            driver.sharedAgentInvoker().invoke();
            aeron.conductorAgentInvoker().invoke();
        }
        subscription.poll(handler, 1);
        return sum;
    }

    /** Closes everything; the driver removes its directory. */
    @TearDown(Level.Trial)
    public void tearDown() {
        CloseHelper.closeAll(publication, subscription, aeron, driver);
    }
}
