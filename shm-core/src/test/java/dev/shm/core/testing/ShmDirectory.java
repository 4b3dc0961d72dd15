package dev.shm.core.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Unique file names in {@code /dev/shm} for one test, removed after it. When the test failed, the
 * files are first copied to {@code target/failed-shm/<test>/} for diagnosis, so {@code /dev/shm}
 * is left clean either way.
 *
 * {@snippet :
 * @RegisterExtension
 * final ShmDirectory shm = new ShmDirectory();
 *
 * Path file = shm.path("orders");   // /dev/shm/shmtest-<pid>-<n>-orders
 * }
 */
public final class ShmDirectory implements AfterEachCallback {

    private static final Path DEV_SHM = Path.of("/dev/shm");
    private static final AtomicInteger COUNTER = new AtomicInteger();

    private final List<Path> paths = new ArrayList<>();

    /**
     * Returns a new, unused path in {@code /dev/shm}, removed after the test.
     *
     * @param name a readable part of the file name
     * @return the path
     */
    public synchronized Path path(String name) {
        Path path = DEV_SHM.resolve("shmtest-" + ProcessHandle.current().pid() + "-" + COUNTER.incrementAndGet()
                + "-" + name);
        paths.add(path);
        return path;
    }

    /**
     * Creates a new directory in {@code /dev/shm}, removed with everything in it after the test.
     *
     * @param name a readable part of the directory name
     * @return the directory
     */
    public synchronized Path directory(String name) {
        Path dir = path(name);
        try {
            Files.createDirectory(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return dir;
    }

    @Override
    public synchronized void afterEach(ExtensionContext context) {
        boolean failed = context.getExecutionException().isPresent();
        Path keep = Path.of("target", "failed-shm", context.getRequiredTestClass().getSimpleName() + "-"
                + context.getRequiredTestMethod().getName());
        IOException problem = null;
        for (Path path : paths) {
            try {
                removeTree(path, failed ? keep : null);
            } catch (IOException e) {
                if (problem == null) {
                    problem = e;
                } else {
                    problem.addSuppressed(e);
                }
            }
        }
        paths.clear();
        if (problem != null) {
            throw new UncheckedIOException("cannot remove a test file from /dev/shm", problem);
        }
    }

    /** Removes a file or a directory tree, first copying regular files to {@code keep} when given. */
    private static void removeTree(Path path, Path keep) throws IOException {
        if (Files.isDirectory(path, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            try (var children = Files.list(path)) {
                for (Path child : children.toList()) {
                    removeTree(child, keep == null ? null : keep.resolve(path.getFileName()));
                }
            }
        } else if (keep != null && Files.isRegularFile(path, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            try {
                Files.createDirectories(keep);
                Files.copy(path, keep.resolve(path.getFileName()), StandardCopyOption.REPLACE_EXISTING);
            } catch (IOException e) {
                // keeping the evidence is best effort; removing the file is not
            }
        }
        Files.deleteIfExists(path);
    }
}
