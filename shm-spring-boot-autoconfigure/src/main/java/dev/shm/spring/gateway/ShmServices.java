package dev.shm.spring.gateway;

import dev.shm.core.segment.DirectoryDescriptor;
import dev.shm.core.segment.Segment;

/** Declares request-reply services in a segment's directory. */
final class ShmServices {

    private static final String[] NO_NAMES = new String[0];
    private static final long[] NO_PARAMS = new long[0];

    private ShmServices() {
    }

    /** Declares a service (or finds it declared); its name shares the directory with channels. */
    static int declare(Segment segment, String service) {
        return segment.directory().declare(service, DirectoryDescriptor.SERVICE, NO_NAMES, NO_PARAMS,
                _ -> new long[] {0, 0});
    }
}
