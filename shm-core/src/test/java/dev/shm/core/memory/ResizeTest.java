package dev.shm.core.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.testing.ShmDirectory;
import dev.shm.core.testing.TestNative;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class ResizeTest {

    private static final long MAGIC = 0x5EED_5EED_5EED_5EEDL;
    private static final int PAGE = 4096;

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    @Test
    void growKeepsContentAndMakesOldViewsStaleWithAClearMessage() throws IOException {
        Path path = shm.path("grow");
        try (MappedFile file = MappedFile.create(path, PAGE)) {
            file.putLong(0, MAGIC);
            AtomicLongView old = file.atomicLong(0);
            AtomicIntSliceView oldSlice = file.atomicIntSlice(8, 2);

            file.resize(4 * PAGE);

            assertThat(file.size()).isEqualTo(4 * PAGE);
            assertThat(Files.size(path)).isEqualTo(4 * PAGE);
            assertThat(file.getLong(0)).isEqualTo(MAGIC);
            file.putLong(4 * PAGE - 8, 1);
            assertThatThrownBy(old::getAcquire)
                    .isInstanceOf(StaleMappingException.class)
                    .hasMessage("access to " + path + " at offset=0, length=8 refused: the view is stale; it was "
                            + "taken from mapping generation 1 (4096 bytes), which a resize replaced with generation 2 "
                            + "(16384 bytes); take a new view");
            assertThatThrownBy(() -> old.setRelease(1)).isInstanceOf(StaleMappingException.class);
            assertThatThrownBy(() -> oldSlice.getPlain(1))
                    .isInstanceOf(StaleMappingException.class)
                    .hasMessageContaining("offset=12, length=4");
            assertThat(file.atomicLong(0).getAcquire()).isEqualTo(MAGIC);
        }
    }

    @Test
    void shrinkCutsTheFileAndClosesExtentsPastTheNewEnd() throws IOException {
        Path path = shm.path("shrink");
        try (MappedFile file = MappedFile.create(path, 4 * PAGE)) {
            file.putLong(0, MAGIC);
            MappedExtent inside = file.mapExtent(PAGE, PAGE);
            MappedExtent beyond = file.mapExtent(2 * PAGE, 2 * PAGE);
            file.resize(2 * PAGE);
            assertThat(Files.size(path)).isEqualTo(2 * PAGE);
            assertThat(file.getLong(0)).isEqualTo(MAGIC);
            assertThatThrownBy(() -> file.getLong(2 * PAGE)).isInstanceOf(OutOfBoundsAccessException.class);
            inside.putLong(0, 3);
            assertThat(file.getLong(PAGE)).isEqualTo(3);
            assertThatThrownBy(() -> beyond.getLong(0))
                    .isInstanceOf(StaleMappingException.class)
                    .hasMessageContaining("extent [offset=8192, length=8192]");
        }
    }

    @Test
    void resizeToTheSameSizeKeepsViews() {
        try (MappedFile file = MappedFile.create(shm.path("same"), PAGE)) {
            AtomicLongView view = file.atomicLong(0);
            file.resize(PAGE);
            view.setVolatile(9);
            assertThat(file.getLong(0)).isEqualTo(9);
        }
    }

    @Test
    void growDoesNotCutAFileThatAnotherMappingMadeLonger() throws IOException {
        Path path = shm.path("longer");
        try (MappedFile small = MappedFile.create(path, PAGE);
             MappedFile other = MappedFile.open(path, MapMode.READ_WRITE)) {
            other.resize(8 * PAGE);
            other.putLong(8 * PAGE - 8, MAGIC);
            small.resize(2 * PAGE);
            assertThat(Files.size(path)).isEqualTo(8 * PAGE);
            assertThat(other.getLong(8 * PAGE - 8)).isEqualTo(MAGIC);
        }
    }

    /**
     * A native call that holds the old mapping (here: a read from a pipe into a slice of it) must
     * make a shrinking resize wait, and the file must not be cut before the old mapping is gone.
     */
    @Test
    void shrinkWaitsForANativeCallThatHoldsTheOldMappingAndNeverCutsUnderIt() throws Exception {
        Path path = shm.path("held");
        int[] pipe = TestNative.pipe();
        try (MappedFile file = MappedFile.create(path, 4 * PAGE)) {
            AtomicLongView far = file.atomicLong(3 * PAGE);
            MemorySegment slice = file.slice(0, 16);
            AtomicInteger holderTid = new AtomicInteger();
            AtomicBoolean released = new AtomicBoolean();
            AtomicReference<Throwable> holderFailure = new AtomicReference<>();
            Thread holder = Thread.ofPlatform().name("holder").start(() -> {
                try {
                    holderTid.set(TestNative.gettid());
                    TestNative.read(pipe[0], slice);
                } catch (Throwable t) {
                    holderFailure.set(t);
                }
            });
            while (holderTid.get() == 0 && holder.isAlive()) {
                Thread.onSpinWait();
            }
            TestNative.awaitBlockedInRead(holderTid.get(), Duration.ofSeconds(10));

            AtomicBoolean releasedBeforeResizeReturned = new AtomicBoolean();
            Thread resizer = Thread.ofPlatform().name("resizer").start(() -> {
                file.resize(PAGE);
                releasedBeforeResizeReturned.set(released.get());
            });
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (resizer.getState() != Thread.State.TIMED_WAITING && System.nanoTime() - deadline < 0) {
                Thread.onSpinWait(); // until the resizer backs off, waiting for the held mapping
            }
            assertThat(resizer.getState()).isEqualTo(Thread.State.TIMED_WAITING);
            assertThat(Files.size(path)).as("not cut while mapped").isEqualTo(4 * PAGE);

            released.set(true);
            TestNative.writeByte(pipe[1]);
            holder.join(10_000);
            resizer.join(10_000);
            assertThat(holderFailure.get()).isNull();
            assertThat(releasedBeforeResizeReturned).isTrue();
            assertThat(Files.size(path)).isEqualTo(PAGE);
            assertThatThrownBy(far::getVolatile).isInstanceOf(StaleMappingException.class);
        } finally {
            TestNative.close(pipe[0]);
            TestNative.close(pipe[1]);
        }
    }

    /**
     * A grow whose old mapping a native call still holds keeps that mapping (it cannot unmap it); a
     * later shrink must not cut the file under it either, but fail and leave the file as it is until
     * the call returned. Before, the shrink looked only at the mapping it replaced, and cut.
     */
    @Test
    void aShrinkDoesNotCutUnderAMappingThatAnEarlierGrowCouldNotUnmap() throws Exception {
        Path path = shm.path("kept");
        int[] pipe = TestNative.pipe();
        try (MappedFile file = MappedFile.create(path, 4 * PAGE)) {
            MemorySegment slice = file.slice(3 * PAGE, 16); // beyond the size the shrink asks for
            AtomicInteger holderTid = new AtomicInteger();
            AtomicReference<Throwable> holderFailure = new AtomicReference<>();
            Thread holder = Thread.ofPlatform().name("holder").start(() -> {
                try {
                    holderTid.set(TestNative.gettid());
                    TestNative.read(pipe[0], slice);
                } catch (Throwable t) {
                    holderFailure.set(t);
                }
            });
            while (holderTid.get() == 0 && holder.isAlive()) {
                Thread.onSpinWait();
            }
            TestNative.awaitBlockedInRead(holderTid.get(), Duration.ofSeconds(10));

            file.resize(8 * PAGE); // waits its patience for the held mapping, then keeps it
            assertThat(Files.size(path)).isEqualTo(8 * PAGE);
            assertThatThrownBy(() -> file.resize(PAGE)).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("still used by a native call");
            assertThat(Files.size(path)).as("not cut under the held mapping").isEqualTo(8 * PAGE);

            TestNative.writeByte(pipe[1]);
            holder.join(10_000);
            assertThat(holderFailure.get()).isNull();
            file.resize(PAGE);
            assertThat(Files.size(path)).isEqualTo(PAGE);
        } finally {
            TestNative.close(pipe[0]);
            TestNative.close(pipe[1]);
        }
    }

    /** Four mappings of one file (four open file descriptions) grow it at once; none cuts another. */
    @Test
    void concurrentGrowersNeverCutEachOthersGrowth() throws Exception {
        Path path = shm.path("growers");
        try (MappedFile a = MappedFile.create(path, PAGE);
             MappedFile b = MappedFile.open(path, MapMode.READ_WRITE);
             MappedFile c = MappedFile.open(path, MapMode.READ_WRITE);
             MappedFile d = MappedFile.open(path, MapMode.READ_WRITE)) {
            AtomicLong largest = new AtomicLong(PAGE);
            Queue<Throwable> failures = new ConcurrentLinkedQueue<>();
            List<Thread> growers = new ArrayList<>();
            for (MappedFile file : List.of(a, b, c, d)) {
                growers.add(Thread.ofPlatform().start(() -> {
                    try {
                        for (int i = 1; i <= 1000; i++) {
                            // Aim past the file's end, so that every grower races at the frontier.
                            long size = file.fileSize() + (long) PAGE * ThreadLocalRandom.current().nextInt(1, 4);
                            file.resize(size);
                            largest.accumulateAndGet(size, Math::max);
                            long now = file.fileSize();
                            if (now < file.size()) {
                                failures.add(new AssertionError("file cut to " + now + " under a " + file.size()
                                        + "-byte mapping"));
                            }
                        }
                    } catch (Throwable t) {
                        failures.add(t);
                    }
                }));
            }
            for (Thread grower : growers) {
                grower.join(60_000);
            }
            assertThat(failures).isEmpty();
            assertThat(Files.size(path)).isEqualTo(largest.get());
        }
    }

    /**
     * Readers hammer views and the file's own accessors while another thread resizes the mapping
     * up and down. Views must turn stale, never read unmapped memory; the file's accessors must
     * always see the bytes of the first page.
     */
    @Test
    void readersHammeringViewsWhileAnotherThreadResizesNeverTouchUnmappedMemory() throws InterruptedException {
        try (MappedFile file = MappedFile.create(shm.path("hammer"), 16 * PAGE)) {
            file.putLong(0, MAGIC);
            file.putLong(8, MAGIC);
            AtomicBoolean stop = new AtomicBoolean();
            AtomicLong reads = new AtomicLong();
            AtomicLong stale = new AtomicLong();
            AtomicLong outOfBounds = new AtomicLong();
            Queue<Throwable> failures = new ConcurrentLinkedQueue<>();
            List<Thread> readers = new ArrayList<>();
            for (int r = 0; r < 3; r++) {
                int kind = r;
                readers.add(Thread.ofPlatform().name("reader-" + r).start(() -> {
                    try {
                        AtomicLongView view = file.atomicLong(0);
                        AtomicLongSliceView slice = file.atomicLongSlice(0, 2);
                        while (!stop.get()) {
                            try {
                                long value = switch (kind) {
                                    case 0 -> view.getAcquire();
                                    case 1 -> slice.getVolatile(1);
                                    default -> file.getLong(ThreadLocalRandom.current().nextBoolean() ? 0 : 8);
                                };
                                if (value != MAGIC) {
                                    failures.add(new AssertionError("read " + Long.toHexString(value)));
                                }
                                if (kind == 2) {
                                    // Past the smallest size: either mapped now, or refused; never a crash.
                                    try {
                                        file.getLong(12 * PAGE);
                                    } catch (OutOfBoundsAccessException expected) {
                                        outOfBounds.incrementAndGet();
                                    }
                                }
                                reads.incrementAndGet();
                            } catch (StaleMappingException e) {
                                stale.incrementAndGet();
                                view = file.atomicLong(0);
                                slice = file.atomicLongSlice(0, 2);
                            }
                        }
                    } catch (Throwable t) {
                        failures.add(t);
                    }
                }));
            }
            for (int i = 0; i < 200; i++) {
                file.resize((i % 2 == 0 ? 4 : 16) * PAGE + (i % 7) * PAGE);
                long before = reads.get();
                // Let the readers make progress on each mapping; bounded, not a sleep.
                for (int spin = 0; spin < 1_000_000 && reads.get() < before + 50; spin++) {
                    Thread.onSpinWait();
                }
            }
            stop.set(true);
            for (Thread reader : readers) {
                reader.join(10_000);
                assertThat(reader.isAlive()).as("reader still running").isFalse();
            }
            assertThat(failures).isEmpty();
            assertThat(reads.get()).isGreaterThan(1000);
            assertThat(stale.get()).as("stale views seen").isPositive();
            assertThat(outOfBounds.get()).as("reads past a shrunk end refused").isPositive();
            assertThat(file.getLong(0)).isEqualTo(MAGIC);
        }
    }
}
