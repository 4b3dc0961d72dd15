package dev.shm.core.internal;

import dev.shm.core.ErrnoException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The linker, the C library's symbols and {@code errno} capture, shared by the classes of this
 * package that make downcalls. Nothing outside this package makes downcalls.
 */
@SuppressWarnings("restricted") // every restricted call of shm-core is in this package, by design
final class Native {

    static final Linker LINKER = Linker.nativeLinker();

    /** Asks the linker to save {@code errno} right after each call, before the JVM can clobber it. */
    static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();

    private static final VarHandle ERRNO =
            CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    private static final MethodHandle STRERROR =
            downcall("strerror", FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_INT));

    private Native() {
    }

    /** Looks a C library function up and binds it; fails clearly when the C library lacks it. */
    static MethodHandle downcall(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        MemorySegment symbol = LINKER.defaultLookup().find(name).orElseThrow(() -> new UnsupportedOperationException(
                "the C library of this system has no function " + name + " (shm-core needs glibc 2.28 or newer)"));
        return LINKER.downcallHandle(symbol, descriptor, options);
    }

    /** Allocates the segment that a capturing downcall writes {@code errno} to. */
    static MemorySegment captureState(Arena arena) {
        return arena.allocate(CAPTURE_LAYOUT);
    }

    /** Reads the {@code errno} that a capturing downcall saved. */
    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    /** Builds the exception for a failed call from the captured {@code errno}. */
    static ErrnoException error(String call, MemorySegment state) {
        return error(call, errno(state));
    }

    /** Builds the exception for a failed call from an error number. */
    static ErrnoException error(String call, int errno) {
        return new ErrnoException(call, errno, Errno.name(errno), describe(errno));
    }

    /** The C library's description of an error number, e.g. "Permission denied". */
    static String describe(int errno) {
        try {
            MemorySegment text = (MemorySegment) STRERROR.invokeExact(errno);
            return text.equals(MemorySegment.NULL) ? "errno " + errno : text.reinterpret(256).getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Rethrows what a {@code MethodHandle.invokeExact} threw. A downcall throws no checked exception,
     * so anything checked here is a bug.
     */
    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException e) {
            return e;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException("unexpected checked exception from a downcall", t);
    }
}
