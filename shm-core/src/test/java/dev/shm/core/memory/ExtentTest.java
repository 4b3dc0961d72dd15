package dev.shm.core.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.shm.core.memory.MappingException.Reason;
import dev.shm.core.testing.ShmDirectory;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class ExtentTest {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    @Test
    void extentMapsWhatAnotherMappingGrewWithoutRemappingTheFirstPart() {
        Path path = shm.path("extent");
        try (MappedFile file = MappedFile.create(path, 4096);
             MappedFile grower = MappedFile.open(path, MapMode.READ_WRITE)) {
            AtomicLongView head = file.atomicLong(0);
            head.setRelease(1);
            grower.resize(3 * 4096);
            grower.putLong(8192, 42);

            assertThat(file.size()).isEqualTo(4096);
            assertThat(file.fileSize()).isEqualTo(3 * 4096);
            try (MappedExtent extent = file.mapExtent(4096, 8192)) {
                assertThat(extent.fileOffset()).isEqualTo(4096);
                assertThat(extent.size()).isEqualTo(8192);
                assertThat(extent.getLong(4096)).isEqualTo(42);
                extent.putLong(0, 7);
                assertThat(grower.getLong(4096)).isEqualTo(7);
                assertThatThrownBy(() -> extent.getLong(8192)).isInstanceOf(OutOfBoundsAccessException.class);
            }
            // The first part was never remapped: its view still works.
            assertThat(head.getAcquire()).isEqualTo(1);
        }
    }

    @Test
    void extentNeedNotStartOnAPage() {
        try (MappedFile file = MappedFile.create(shm.path("unaligned"), 8192)) {
            file.putLong(5000, 11);
            try (MappedExtent extent = file.mapExtent(5000, 100)) {
                assertThat(extent.getLong(0)).isEqualTo(11);
            }
        }
    }

    @Test
    void extentPastTheEndOfTheFileIsRefusedAsTooShort() {
        Path path = shm.path("short");
        try (MappedFile file = MappedFile.create(path, 4096)) {
            assertThatThrownBy(() -> file.mapExtent(4096, 4096))
                    .isInstanceOfSatisfying(MappingException.class, e -> assertThat(e.reason()).isEqualTo(Reason.TOO_SHORT))
                    .hasMessage(path + " is 4096 bytes, shorter than the caller expects: the extent at offset=4096, "
                            + "length=4096 needs 8192 bytes");
            assertThatThrownBy(() -> file.mapExtent(Long.MAX_VALUE, 1)).isInstanceOf(MappingException.class);
            assertThatThrownBy(() -> file.mapExtent(0, 0)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> file.mapExtent(-1, 8)).isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void closingTheFileClosesItsExtents() {
        MappedFile file = MappedFile.create(shm.path("close"), 8192);
        MappedExtent extent = file.mapExtent(4096, 4096);
        AtomicLongView view = extent.atomicLong(0);
        file.close();
        assertThatThrownBy(view::getVolatile).isInstanceOf(StaleMappingException.class);
        assertThatThrownBy(() -> extent.getLong(0)).isInstanceOf(StaleMappingException.class);
        assertThatThrownBy(() -> file.mapExtent(0, 8)).isInstanceOf(IllegalStateException.class);
    }
}
