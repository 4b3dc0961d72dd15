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

    @Override
    public synchronized void afterEach(ExtensionContext context) {
        boolean failed = context.getExecutionException().isPresent();
        IOException problem = null;
        for (Path path : paths) {
            try {
                if (failed && Files.isRegularFile(path)) {
                    Path keep = Path.of("target", "failed-shm", context.getRequiredTestClass().getSimpleName() + "-"
                            + context.getRequiredTestMethod().getName());
                    Files.createDirectories(keep);
                    Files.copy(path, keep.resolve(path.getFileName()), StandardCopyOption.REPLACE_EXISTING);
                }
            } catch (IOException e) {
                // keeping the evidence is best effort; removing the file is not
            } finally {
                try {
                    Files.deleteIfExists(path);
                } catch (IOException e) {
                    if (problem == null) {
                        problem = e;
                    } else {
                        problem.addSuppressed(e);
                    }
                }
            }
        }
        paths.clear();
        if (problem != null) {
            throw new UncheckedIOException("cannot remove a test file from /dev/shm", problem);
        }
    }
}
