package dev.shm.core.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.testing.ShmDirectory;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class AtomicViewTest {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    private MappedFile file;

    @BeforeEach
    void map() {
        file = MappedFile.create(shm.path("atomic"), 64);
    }

    @AfterEach
    void unmap() {
        file.close();
    }

    @Test
    void longViewReadsAndWritesInEveryOrder() {
        AtomicLongView view = file.atomicLong(8);
        assertThat(view.offset()).isEqualTo(8);
        view.setPlain(1);
        assertThat(view.getPlain()).isEqualTo(1);
        view.setOpaque(2);
        assertThat(view.getOpaque()).isEqualTo(2);
        view.setRelease(3);
        assertThat(view.getAcquire()).isEqualTo(3);
        view.setVolatile(0x1234567890ABCDEFL);
        assertThat(view.getVolatile()).isEqualTo(0x1234567890ABCDEFL);
        assertThat(file.getLong(8)).isEqualTo(0x1234567890ABCDEFL);

        assertThat(view.compareAndSet(0x1234567890ABCDEFL, 10)).isTrue();
        assertThat(view.compareAndSet(0x1234567890ABCDEFL, 11)).isFalse();
        assertThat(view.compareAndExchange(10, 20)).isEqualTo(10);
        assertThat(view.compareAndExchange(10, 30)).isEqualTo(20);
        assertThat(view.getAndAdd(5)).isEqualTo(20);
        assertThat(view.getAndSet(-1)).isEqualTo(25);
        assertThat(view.getVolatile()).isEqualTo(-1);
    }

    @Test
    void intViewReadsAndWritesInEveryOrder() {
        AtomicIntView view = file.atomicInt(4);
        view.setPlain(1);
        assertThat(view.getPlain()).isEqualTo(1);
        view.setOpaque(2);
        assertThat(view.getOpaque()).isEqualTo(2);
        view.setRelease(3);
        assertThat(view.getAcquire()).isEqualTo(3);
        view.setVolatile(0x12345678);
        assertThat(view.getVolatile()).isEqualTo(0x12345678);
        assertThat(file.getInt(4)).isEqualTo(0x12345678);
        assertThat(view.compareAndSet(0x12345678, 7)).isTrue();
        assertThat(view.compareAndSet(0x12345678, 8)).isFalse();
        assertThat(view.compareAndExchange(7, 9)).isEqualTo(7);
        assertThat(view.getAndAdd(1)).isEqualTo(9);
        assertThat(view.getAndSet(0)).isEqualTo(10);
    }

    @Test
    void slicesAddressConsecutiveValues() {
        AtomicLongSliceView longs = file.atomicLongSlice(0, 4);
        assertThat(longs.length()).isEqualTo(4);
        for (int i = 0; i < 4; i++) {
            longs.setRelease(i, i * 100L);
        }
        for (int i = 0; i < 4; i++) {
            assertThat(longs.getAcquire(i)).isEqualTo(i * 100L);
            assertThat(file.getLong(i * 8L)).isEqualTo(i * 100L);
        }
        assertThat(longs.getAndAdd(3, 1)).isEqualTo(300);
        assertThat(longs.compareAndSet(3, 301, 0)).isTrue();

        AtomicIntSliceView ints = file.atomicIntSlice(32, 8);
        for (int i = 0; i < 8; i++) {
            ints.setVolatile(i, i * 10);
        }
        for (int i = 0; i < 8; i++) {
            assertThat(ints.getVolatile(i)).isEqualTo(i * 10);
            assertThat(ints.getOpaque(i)).isEqualTo(i * 10);
        }
        assertThatThrownBy(() -> ints.getPlain(8))
                .isInstanceOf(OutOfBoundsAccessException.class)
                .hasMessageContaining("offset=32, length=4, size=32");
        assertThatThrownBy(() -> longs.setPlain(-1, 0)).isInstanceOf(OutOfBoundsAccessException.class);
        assertThat(file.atomicLongSlice(64, 0).length()).isZero();
    }

    @Test
    void misalignedOffsetsFailWithOffsetLengthSizeAndAlignment() {
        assertThatThrownBy(() -> file.atomicLong(1))
                .isInstanceOf(MisalignedAccessException.class)
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("misaligned atomic access to " + file.path() + ": offset=1, length=8, size=64; "
                        + "a 8-byte atomic value needs an offset that is a multiple of 8");
        assertThatThrownBy(() -> file.atomicLong(7)).isInstanceOf(MisalignedAccessException.class);
        assertThatThrownBy(() -> file.atomicLong(4)).isInstanceOf(MisalignedAccessException.class);
        assertThatThrownBy(() -> file.atomicInt(2))
                .isInstanceOf(MisalignedAccessException.class)
                .hasMessageContaining("offset=2, length=4, size=64");
        assertThatThrownBy(() -> file.atomicLongSlice(12, 2))
                .isInstanceOf(MisalignedAccessException.class)
                .hasMessageContaining("offset=12, length=16, size=64");
        assertThatThrownBy(() -> file.atomicIntSlice(2, 2)).isInstanceOf(MisalignedAccessException.class);
        MisalignedAccessException e = org.junit.jupiter.api.Assertions.assertThrows(
                MisalignedAccessException.class, () -> file.atomicLong(3));
        assertThat(e.offset()).isEqualTo(3);
        assertThat(e.alignment()).isEqualTo(8);
    }

    @Test
    void outOfBoundsViewsFailWithADistinctException() {
        assertThatThrownBy(() -> file.atomicLong(64))
                .isInstanceOf(OutOfBoundsAccessException.class)
                .isNotInstanceOf(MisalignedAccessException.class)
                .hasMessage("access out of bounds of " + file.path() + ": offset=64, length=8, size=64");
        assertThatThrownBy(() -> file.atomicInt(64)).isInstanceOf(OutOfBoundsAccessException.class);
        assertThatThrownBy(() -> file.atomicLong(-8)).isInstanceOf(OutOfBoundsAccessException.class);
        assertThatThrownBy(() -> file.atomicLongSlice(48, 3))
                .isInstanceOf(OutOfBoundsAccessException.class)
                .hasMessageContaining("offset=48, length=24, size=64");
        assertThatThrownBy(() -> file.atomicIntSlice(60, 2))
                .isInstanceOf(OutOfBoundsAccessException.class)
                .hasMessageContaining("offset=60, length=8, size=64");
        assertThatThrownBy(() -> file.atomicLongSlice(0, Integer.MAX_VALUE))
                .isInstanceOf(OutOfBoundsAccessException.class);
        assertThatThrownBy(() -> file.atomicLongSlice(0, -1)).isInstanceOf(IllegalArgumentException.class);
        assertThat(file.atomicLong(56).getVolatile()).isZero();
    }

    @Test
    void getAndAddFromManyThreadsIsExact() throws InterruptedException {
        AtomicLongView counter = file.atomicLong(0);
        AtomicIntView intCounter = file.atomicInt(8);
        int threads = 4;
        int iterations = 100_000;
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            workers.add(Thread.ofPlatform().start(() -> {
                for (int i = 0; i < iterations; i++) {
                    counter.getAndAdd(1);
                    intCounter.getAndAdd(1);
                }
            }));
        }
        for (Thread worker : workers) {
            worker.join();
        }
        assertThat(counter.getVolatile()).isEqualTo((long) threads * iterations);
        assertThat(intCounter.getVolatile()).isEqualTo(threads * iterations);
    }

    @Test
    void alignmentIsCheckedOnTheAddressSoExtentsInsideAPageWork() {
        try (MappedFile big = MappedFile.create(shm.path("extent-align"), 8192);
             MappedExtent extent = big.mapExtent(4100, 100)) {
            // Extent offset 4 is file offset 4104, which is 8-aligned; extent offset 0 is not.
            extent.atomicLong(4).setVolatile(5);
            assertThat(big.getLong(4104)).isEqualTo(5);
            assertThatThrownBy(() -> extent.atomicLong(0)).isInstanceOf(MisalignedAccessException.class);
        }
    }
}
