package dev.shm.core.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.shm.core.memory.MappingException.Reason;
import dev.shm.core.testing.ShmDirectory;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

class MappedFileTest {

    @RegisterExtension
    final ShmDirectory shm = new ShmDirectory();

    @TempDir
    Path dir;

    @Test
    void createMapsZeroedOwnerOnlyFileReadWrite() throws IOException {
        Path path = shm.path("create");
        try (MappedFile file = MappedFile.create(path, 4096)) {
            assertThat(file.size()).isEqualTo(4096);
            assertThat(file.mode()).isEqualTo(MapMode.READ_WRITE);
            assertThat(file.isReadOnly()).isFalse();
            assertThat(file.getBytes(0, 4096)).containsOnly(0);
            assertThat(Files.size(path)).isEqualTo(4096);
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(path))).isEqualTo("rw-------");
        }
    }

    @Test
    void createSetsTheRequestedModeExactlyWhateverTheUmask() throws IOException {
        Path path = shm.path("mode");
        try (MappedFile _ = MappedFile.create(path, 4096,
                CreateOptions.DEFAULTS.withPermissions("rw-rw-r--"))) {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(path))).isEqualTo("rw-rw-r--");
        }
    }

    @Test
    void typedWritesReachTheFileLittleEndianAfterFlush() throws IOException {
        Path path = shm.path("typed");
        try (MappedFile file = MappedFile.create(path, 64)) {
            file.putByte(0, (byte) 0x7f);
            file.putShort(1, (short) 0x1234);      // unaligned on purpose
            file.putInt(3, 0xCAFEBABE);
            file.putLong(7, 0x0102030405060708L);
            file.putBytes(20, new byte[] {9, 8, 7}, 0, 3);
            file.flush();

            assertThat(file.getByte(0)).isEqualTo((byte) 0x7f);
            assertThat(file.getShort(1)).isEqualTo((short) 0x1234);
            assertThat(file.getInt(3)).isEqualTo(0xCAFEBABE);
            assertThat(file.getLong(7)).isEqualTo(0x0102030405060708L);
            assertThat(file.getBytes(20, 3)).containsExactly(9, 8, 7);

            ByteBuffer onDisk = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
            assertThat(onDisk.get(0)).isEqualTo((byte) 0x7f);
            assertThat(onDisk.getShort(1)).isEqualTo((short) 0x1234);
            assertThat(onDisk.getInt(3)).isEqualTo(0xCAFEBABE);
            assertThat(onDisk.getLong(7)).isEqualTo(0x0102030405060708L);
        }
    }

    @Test
    void twoReadWriteMappingsShareWrites() {
        Path path = shm.path("shared");
        try (MappedFile a = MappedFile.create(path, 4096);
             MappedFile b = MappedFile.open(path, MapMode.READ_WRITE)) {
            a.putLong(128, 42);
            assertThat(b.getLong(128)).isEqualTo(42);
            b.putInt(256, 7);
            assertThat(a.getInt(256)).isEqualTo(7);
        }
    }

    @Test
    void readOnlyMappingSeesContentAndRefusesEveryWrite() {
        Path path = shm.path("ro");
        try (MappedFile writer = MappedFile.create(path, 4096);
             MappedFile reader = MappedFile.open(path, MapMode.READ_ONLY)) {
            writer.putLong(0, 99);
            assertThat(reader.isReadOnly()).isTrue();
            assertThat(reader.getLong(0)).isEqualTo(99);
            assertThat(reader.atomicLong(0).getAcquire()).isEqualTo(99);

            assertThatThrownBy(() -> reader.putLong(8, 1))
                    .isInstanceOf(ReadOnlyMappingException.class)
                    .hasMessage("write refused: " + path + " is mapped read-only (write at offset=8)");
            assertThatThrownBy(() -> reader.atomicLong(0).setRelease(1)).isInstanceOf(ReadOnlyMappingException.class);
            assertThatThrownBy(() -> reader.atomicIntSlice(0, 4).getAndAdd(1, 1))
                    .isInstanceOf(ReadOnlyMappingException.class);
            assertThatThrownBy(() -> reader.slice(0, 8).set(ValueLayout.JAVA_LONG, 0, 1L))
                    .isInstanceOf(RuntimeException.class);
            assertThatThrownBy(() -> reader.resize(8192))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("resize needs a READ_WRITE mapping");
            assertThat(writer.getLong(8)).isZero();
        }
    }

    @Test
    void copyOnWriteKeepsWritesPrivate() throws IOException {
        Path path = shm.path("cow");
        try (MappedFile owner = MappedFile.create(path, 8192)) {
            owner.putLong(0, 1);
            try (MappedFile cow = MappedFile.open(path, MapMode.COPY_ON_WRITE)) {
                assertThat(cow.getLong(0)).isEqualTo(1);
                cow.putLong(0, 2);
                cow.flush(); // a no-op: private pages never reach the file
                assertThat(cow.getLong(0)).isEqualTo(2);
                assertThat(owner.getLong(0)).isEqualTo(1);
                assertThat(ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN).getLong(0))
                        .isEqualTo(1);
                // The second page, which the private mapping never wrote, still shows the file's changes.
                owner.putLong(4096, 5);
                assertThat(cow.getLong(4096)).isEqualTo(5);
            }
        }
    }

    @Test
    void outOfBoundsAccessNamesOffsetLengthAndSize() {
        Path path = shm.path("bounds");
        try (MappedFile file = MappedFile.create(path, 4096)) {
            assertThatThrownBy(() -> file.getLong(4089))
                    .isInstanceOf(OutOfBoundsAccessException.class)
                    .isInstanceOf(IndexOutOfBoundsException.class)
                    .hasMessage("access out of bounds of " + path + ": offset=4089, length=8, size=4096");
            assertThatThrownBy(() -> file.putInt(-1, 0))
                    .isInstanceOf(OutOfBoundsAccessException.class)
                    .hasMessageContaining("offset=-1, length=4, size=4096");
            assertThatThrownBy(() -> file.getByte(4096)).isInstanceOf(OutOfBoundsAccessException.class);
            assertThatThrownBy(() -> file.getBytes(Long.MAX_VALUE, 16)).isInstanceOf(OutOfBoundsAccessException.class);
            // Checked before allocating: a corrupt length must never become a 2 GiB array.
            assertThatThrownBy(() -> file.getBytes(0, Integer.MAX_VALUE))
                    .isInstanceOf(OutOfBoundsAccessException.class)
                    .hasMessageContaining("length=2147483647, size=4096");
            assertThatThrownBy(() -> file.slice(4000, 97)).isInstanceOf(OutOfBoundsAccessException.class);
            OutOfBoundsAccessException e = org.junit.jupiter.api.Assertions.assertThrows(
                    OutOfBoundsAccessException.class, () -> file.getShort(4095));
            assertThat(e.offset()).isEqualTo(4095);
            assertThat(e.length()).isEqualTo(2);
            assertThat(e.size()).isEqualTo(4096);
        }
    }

    @Test
    void slicesAreZeroCopyAndReadOnlySlicesRefuseWrites() {
        try (MappedFile file = MappedFile.create(shm.path("slice"), 4096)) {
            MemorySegment slice = file.slice(100, 16);
            slice.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 77L);
            assertThat(file.getLong(100)).isEqualTo(77);
            MemorySegment readOnly = file.readOnlySlice(100, 16);
            assertThat(readOnly.isReadOnly()).isTrue();
            assertThat(readOnly.get(ValueLayout.JAVA_LONG_UNALIGNED, 0)).isEqualTo(77);
        }
    }

    @Test
    void createFailsWhenTheFileExistsAndLeavesItAlone() throws IOException {
        Path path = dir.resolve("exists");
        Files.write(path, new byte[] {1, 2, 3});
        assertThatThrownBy(() -> MappedFile.create(path, 4096))
                .isInstanceOfSatisfying(MappingException.class, e -> assertThat(e.reason()).isEqualTo(Reason.ALREADY_EXISTS))
                .hasMessage("cannot create " + path + ": the file exists (EEXIST); open it instead, or remove it first");
        assertThat(Files.readAllBytes(path)).containsExactly(1, 2, 3);
    }

    @Test
    void createRejectsSizesThatAreNotPositive() {
        Path path = dir.resolve("zero");
        assertThatThrownBy(() -> MappedFile.create(path, 0))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("size=0 must be positive");
        assertThatThrownBy(() -> MappedFile.create(path, -5))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("size=-5 must be positive");
        assertThat(path).doesNotExist();
    }

    @Test
    void createWithPreallocationFailsEarlyWhenTheFileSystemHasNoRoomAndRemovesTheFile() throws IOException {
        Path path = shm.path("huge");
        long petabyte = 1L << 50;
        long capacity = Files.getFileStore(path.getParent()).getTotalSpace();
        assumeTrue(capacity > 0 && capacity < petabyte, "/dev/shm has no size limit below 1 PiB: " + capacity);
        assertThatThrownBy(() -> MappedFile.create(path, petabyte, CreateOptions.DEFAULTS.withPreallocate(true)))
                .isInstanceOfSatisfying(MappingException.class, e -> assertThat(e.reason()).isEqualTo(Reason.NO_SPACE))
                .hasMessageContaining("cannot create " + path + ": no room on the file system (ENOSPC)")
                .hasMessageContaining("bytes free")
                .hasMessageContaining("--shm-size");
        assertThat(path).doesNotExist();
    }

    @Test
    void preallocatedFileIsUsable() {
        try (MappedFile file = MappedFile.create(shm.path("prealloc"), 1 << 20,
                CreateOptions.DEFAULTS.withPreallocate(true))) {
            file.putLong((1 << 20) - 8, 3);
            assertThat(file.getLong((1 << 20) - 8)).isEqualTo(3);
            file.resize(2 << 20);
            assertThat(file.fileSize()).isEqualTo(2 << 20);
        }
    }

    @Test
    void accessAfterCloseIsRefusedClearly() {
        Path path = shm.path("closed");
        MappedFile file = MappedFile.create(path, 4096);
        AtomicLongView view = file.atomicLong(0);
        file.close();
        file.close(); // idempotent
        assertThat(file.isOpen()).isFalse();
        assertThatThrownBy(() -> file.getLong(0))
                .isInstanceOf(StaleMappingException.class)
                .hasMessage("access to " + path + " at offset=0, length=8 refused: " + path + " is closed");
        assertThatThrownBy(view::getVolatile)
                .isInstanceOf(StaleMappingException.class)
                .hasMessageEndingWith("is closed");
        assertThatThrownBy(() -> file.atomicInt(0)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("it is closed");
        assertThatThrownBy(file::flush).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> file.resize(8192)).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void openWithMinimumSizeAcceptsALongEnoughFile() {
        Path path = shm.path("min");
        try (MappedFile _ = MappedFile.create(path, 8192);
             MappedFile file = MappedFile.open(path, MapMode.READ_ONLY, 8192)) {
            assertThat(file.size()).isEqualTo(8192);
            assertThat(file.toString()).contains(path.toString(), "READ_ONLY", "size=8192");
        }
    }
}
