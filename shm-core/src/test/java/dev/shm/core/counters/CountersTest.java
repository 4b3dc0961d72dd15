package dev.shm.core.counters;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class CountersTest {

    private static List<String> labels(Counters counters) {
        List<String> labels = new ArrayList<>();
        counters.forEach((id, type, owner, label, value) -> labels.add(id + ":" + type + ":" + owner + ":" + label));
        return labels;
    }

    @Test
    void aRecordLeftClaimedByAnAllocatorThatDiedIsTakenByTheNextAllocation() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment memory = arena.allocate(4L * CounterDescriptor.LENGTH, 64);
            Counters counters = new Counters(memory, 4);
            assertThat(counters.allocate(2, 7, "kept")).isZero();
            // An allocator that won record 1 and died before it wrote the metadata: half a label,
            // a value from an earlier use, the state CLAIMED for good.
            long at = CounterDescriptor.LENGTH;
            memory.set(ValueLayout.JAVA_INT, at + CounterDescriptor.STATE_OFFSET, CounterDescriptor.CLAIMED);
            memory.set(ValueLayout.JAVA_LONG, at + CounterDescriptor.VALUE_OFFSET, 99L);
            memory.set(ValueLayout.JAVA_INT, at + CounterDescriptor.TYPE_ID_OFFSET, 5);

            assertThat(counters.allocate(3, 8, "next")).isEqualTo(1);
            assertThat(counters.get(1)).isZero();
            assertThat(labels(counters)).containsExactly("0:2:7:kept", "1:3:8:next");
            assertThat(counters.allocate(3, 9, "then")).as("the free record after it").isEqualTo(2);
        }
    }

    @Test
    void freeOwnedFreesTheAllocatedRecordsOfOneTypeAndOwnerOnly() {
        try (Arena arena = Arena.ofConfined()) {
            Counters counters = new Counters(arena.allocate(6L * CounterDescriptor.LENGTH, 64), 6);
            counters.allocate(2, 1, "a");
            counters.allocate(3, 1, "other type");
            counters.allocate(2, 1, "b");
            counters.allocate(2, 2, "other owner");
            counters.add(2, 5);

            assertThat(counters.freeOwned(2, 1)).isEqualTo(2);
            assertThat(labels(counters)).containsExactly("1:3:1:other type", "3:2:2:other owner");
            assertThat(counters.freeOwned(2, 1)).as("nothing left to free").isZero();
            assertThat(counters.allocate(4, 4, "reused")).as("the lowest freed record").isZero();
            assertThat(counters.allocate(4, 4, "reused too")).isEqualTo(2);
            assertThat(counters.get(2)).as("a reused record counts from zero").isZero();
        }
    }
}
