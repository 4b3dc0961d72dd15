package dev.shm.spring.autoconfigure;

import dev.shm.core.ring.Backpressure;
import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.ring.RingDescriptor;
import dev.shm.core.ring.WaitStrategy;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentDescriptor;
import dev.shm.core.segment.SegmentOptions;
import dev.shm.core.segment.SlotClass;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns {@link ShmProperties} into shm-core options, after checking every value and naming the
 * property of any that cannot work ({@link InvalidShmPropertyException}).
 */
public final class ShmOptions {

    /** The one consumer group of every process on a point-to-point channel. */
    public static final String POINT_TO_POINT_GROUP = "point-to-point";

    private ShmOptions() {
    }

    /**
     * Returns the segments to create: those configured, or, when none is and channels are, one
     * named {@value ShmProperties#DEFAULT_SEGMENT} with the defaults.
     *
     * @param properties the properties
     * @return segment properties by name
     */
    public static Map<String, ShmProperties.Segment> segments(ShmProperties properties) {
        if (properties.getSegments().isEmpty() && !properties.getChannels().isEmpty()) {
            Map<String, ShmProperties.Segment> segments = new LinkedHashMap<>();
            segments.put(ShmProperties.DEFAULT_SEGMENT, new ShmProperties.Segment());
            return segments;
        }
        return properties.getSegments();
    }

    /**
     * Returns the segment that holds a channel.
     *
     * @param properties the properties
     * @param channel the channel's name
     * @return the segment's name
     * @throws InvalidShmPropertyException when the channel names no segment and there are several, or
     *     names one that is not configured
     */
    public static String segmentOf(ShmProperties properties, String channel) {
        ShmProperties.Channel c = properties.getChannels().get(channel);
        Map<String, ShmProperties.Segment> segments = segments(properties);
        String property = "shm.channels." + channel + ".segment";
        if (c.getSegment() == null || c.getSegment().isBlank()) {
            if (segments.size() == 1) {
                return segments.keySet().iterator().next();
            }
            throw new InvalidShmPropertyException(property, null, "the channel names no segment and there are "
                    + segments.size() + " segments " + segments.keySet(), "name one of " + segments.keySet());
        }
        if (!segments.containsKey(c.getSegment())) {
            throw new InvalidShmPropertyException(property, c.getSegment(), "no segment of that name is configured"
                    + " (shm.segments has " + segments.keySet() + ")", "name one of " + segments.keySet()
                    + ", or add 'shm.segments." + c.getSegment() + "'");
        }
        return c.getSegment();
    }

    /**
     * Checks every property.
     *
     * @param properties the properties
     * @throws InvalidShmPropertyException naming the first property that cannot work
     */
    public static void validate(ShmProperties properties) {
        if (properties.getDirectory() == null) {
            throw new InvalidShmPropertyException("shm.directory", null, "no directory", "set it, e.g. to /dev/shm");
        }
        Map<String, String> names = new HashMap<>();
        for (String name : segments(properties).keySet()) {
            segmentOptions(properties, name);
            unique(names, name, "shm.segments." + name);
        }
        for (String name : properties.getChannels().keySet()) {
            segmentOf(properties, name);
            channelOptions(name, properties.getChannels().get(name));
            group(name, properties.getChannels().get(name), "default");
            unique(names, name, "shm.channels." + name);
        }
        checkRingsFit(properties);
        for (Map.Entry<String, ShmProperties.Buffer> buffer : properties.getBuffers().entrySet()) {
            String property = "shm.buffers." + buffer.getKey() + ".size";
            if (buffer.getValue().getSize() == null || buffer.getValue().getSize().toBytes() <= 0) {
                throw new InvalidShmPropertyException(property, buffer.getValue().getSize(), "a buffer needs a "
                        + "positive size", "set it, e.g. to 16MB");
            }
            unique(names, buffer.getKey(), "shm.buffers." + buffer.getKey());
        }
    }

    private static void unique(Map<String, String> names, String name, String property) {
        String previous = names.putIfAbsent(name, property);
        if (previous != null) {
            throw new InvalidShmPropertyException(property, name, "its bean name '" + name + "' is taken by '"
                    + previous + "'", "give segments, channels and buffers distinct names");
        }
    }

    /**
     * Returns the options of a segment.
     *
     * @param properties the properties
     * @param name the segment's name
     * @return the options
     * @throws InvalidShmPropertyException naming a property that cannot work
     */
    public static SegmentOptions segmentOptions(ShmProperties properties, String name) {
        ShmProperties.Segment s = segments(properties).get(name);
        String prefix = "shm.segments." + name + ".";
        if (name.isEmpty() || name.contains("/") || name.equals(".") || name.equals("..")) {
            throw new InvalidShmPropertyException("shm.segments", name, "a segment name must be a file name without '/'",
                    "rename the segment");
        }
        long size = s.getSize() == null ? -1 : s.getSize().toBytes();
        if (size <= 0) {
            throw new InvalidShmPropertyException(prefix + "size", s.getSize(), "a segment needs a positive size",
                    "set it, e.g. to 64MB");
        }
        if (s.getMaxPeers() < 1 || s.getMaxPeers() > SegmentDescriptor.MAX_PEERS) {
            throw new InvalidShmPropertyException(prefix + "max-peers", s.getMaxPeers(), "must be between 1 and "
                    + SegmentDescriptor.MAX_PEERS, "set it to the most processes that attach at once");
        }
        positive(prefix + "heartbeat-interval", s.getHeartbeatInterval());
        positive(prefix + "liveness-timeout", s.getLivenessTimeout());
        if (s.getLivenessTimeout().compareTo(s.getHeartbeatInterval()) <= 0) {
            throw new InvalidShmPropertyException(prefix + "liveness-timeout", s.getLivenessTimeout(), "must be longer "
                    + "than heartbeat-interval=" + s.getHeartbeatInterval(), "make it several heartbeat intervals");
        }
        try {
            PosixFilePermissions.fromString(s.getPermissions());
        } catch (RuntimeException e) {
            throw new InvalidShmPropertyException(prefix + "permissions", s.getPermissions(), "not a file mode",
                    "write it as in 'ls -l', nine characters such as rw-rw----");
        }
        List<SlotClass> classes = new ArrayList<>();
        List<ShmProperties.SlotClass> configured = s.getSlotClasses();
        if (configured.size() > SegmentDescriptor.MAX_SLOT_CLASSES) {
            throw new InvalidShmPropertyException(prefix + "slot-classes", configured.size() + " classes", "at most "
                    + SegmentDescriptor.MAX_SLOT_CLASSES, "merge some classes");
        }
        for (int i = 0; i < configured.size(); i++) {
            ShmProperties.SlotClass c = configured.get(i);
            String p = prefix + "slot-classes[" + i + "]";
            long bytes = c.getSize() == null ? -1 : c.getSize().toBytes();
            if (bytes <= 0 || bytes % SlotClass.ALIGNMENT != 0) {
                throw new InvalidShmPropertyException(p + ".size", c.getSize(), "a slot size must be a positive "
                        + "multiple of " + SlotClass.ALIGNMENT + " bytes", "round it up to a multiple of 64 bytes");
            }
            if (c.getCount() <= 0) {
                throw new InvalidShmPropertyException(p + ".count", c.getCount(), "a class needs at least one slot",
                        "set a positive count");
            }
            if (i > 0 && bytes <= classes.get(i - 1).size()) {
                throw new InvalidShmPropertyException(p + ".size", c.getSize(), "slot classes must ascend strictly "
                        + "in size", "list the classes from the smallest to the largest");
            }
            classes.add(new SlotClass(bytes, c.getCount()));
        }
        SegmentOptions options;
        try {
            options = SegmentOptions.named(name)
                    .withDirectory(properties.getDirectory())
                    .withSize(size)
                    .withMaxPeers(s.getMaxPeers())
                    .withLiveness(s.getHeartbeatInterval(), s.getLivenessTimeout())
                    .withPermissions(s.getPermissions())
                    .withSlotClasses(classes);
        } catch (IllegalArgumentException e) {
            throw new InvalidShmPropertyException("shm.segments." + name, name, e.getMessage(), "correct the value");
        }
        long initial = Segment.initialSize(options);
        if (initial > size) {
            throw new InvalidShmPropertyException(prefix + "size", s.getSize(), "the segment's tables and the first "
                    + "extent of each slot class need " + initial + " bytes (" + megabytes(initial) + ")", "raise it to "
                    + "at least " + megabytes(initial) + " plus room for the rings of its channels, or give "
                    + prefix + "slot-classes fewer or smaller slots");
        }
        return options;
    }

    /**
     * Checks that the rings of the channels configured in each segment fit beside its tables and
     * slot classes. (Channels that other processes or the DSL declare in it take room too: a ring
     * that finds none fails when it is declared, with a {@code ShmRingSpaceException}.)
     *
     * @param properties the properties, each segment and channel already checked
     * @throws InvalidShmPropertyException naming the segment's size when they do not
     */
    private static void checkRingsFit(ShmProperties properties) {
        for (String segment : segments(properties).keySet()) {
            SegmentOptions options = segmentOptions(properties, segment);
            long used = Segment.initialSize(options);
            List<String> channels = new ArrayList<>();
            for (Map.Entry<String, ShmProperties.Channel> channel : properties.getChannels().entrySet()) {
                if (segmentOf(properties, channel.getKey()).equals(segment)) {
                    ChannelOptions c = channelOptions(channel.getKey(), channel.getValue());
                    used = SegmentDescriptor.alignExtent(used + RingDescriptor.length(c.capacity(), c.slotSize(),
                            c.maxGroups()));
                    channels.add(channel.getKey());
                }
            }
            if (used > options.size()) {
                String property = "shm.segments." + segment + ".size";
                throw new InvalidShmPropertyException(property, properties.getSegments().containsKey(segment)
                        ? properties.getSegments().get(segment).getSize() : options.size() + "B (the default)",
                        "its tables, slot classes and the rings of its channels " + channels + " need " + used
                                + " bytes (" + megabytes(used) + ")", "raise it to at least " + megabytes(used)
                                + ", or lower the capacity or slot-size of those channels");
            }
        }
    }

    /** Bytes as whole megabytes, rounded up, as a {@code DataSize} property takes them. */
    private static String megabytes(long bytes) {
        return ((bytes + (1L << 20) - 1) >> 20) + "MB";
    }

    /**
     * Returns the options of a channel.
     *
     * @param name the channel's name
     * @param c its properties
     * @return the options
     * @throws InvalidShmPropertyException naming a property that cannot work
     */
    public static ChannelOptions channelOptions(String name, ShmProperties.Channel c) {
        String prefix = "shm.channels." + name + ".";
        int capacity = c.getCapacity();
        if (capacity < 2 || capacity > RingDescriptor.MAX_CAPACITY || Integer.bitCount(capacity) != 1) {
            throw new InvalidShmPropertyException(prefix + "capacity", capacity, "the ring's capacity must be a power "
                    + "of two from 2 to " + RingDescriptor.MAX_CAPACITY, "use a power of two such as "
                    + Integer.highestOneBit(Math.max(2, Math.min(capacity, RingDescriptor.MAX_CAPACITY))) + " or "
                    + Math.min(RingDescriptor.MAX_CAPACITY, Integer.highestOneBit(Math.max(2, capacity)) * 2));
        }
        int maxGroups = c.getMaxGroups();
        if (maxGroups < 1 || maxGroups > RingDescriptor.MAX_GROUPS) {
            throw new InvalidShmPropertyException(prefix + "max-groups", maxGroups, "a ring holds 1 to "
                    + RingDescriptor.MAX_GROUPS + " consumer groups", "set it to the number of applications (groups) "
                    + "that read the channel, at most " + RingDescriptor.MAX_GROUPS);
        }
        int minimum = RingDescriptor.SLOT_BODY_OFFSET + RingDescriptor.SLOT_REF_LENGTH;
        long slotSize = c.getSlotSize() == null ? -1 : c.getSlotSize().toBytes();
        if (slotSize < minimum || slotSize > RingDescriptor.MAX_SLOT_SIZE || slotSize % 8 != 0) {
            throw new InvalidShmPropertyException(prefix + "slot-size", c.getSlotSize(), "a ring slot must be a "
                    + "multiple of 8 bytes from " + minimum + "B (the slot header and a reference) to "
                    + RingDescriptor.MAX_SLOT_SIZE + "B", "use at least " + minimum + "B, e.g. 512B; messages "
                    + "larger than a slot travel in the segment's slot pool");
        }
        if (c.getConcurrency() < 1) {
            throw new InvalidShmPropertyException(prefix + "concurrency", c.getConcurrency(), "a consumer runs at least "
                    + "one member", "set it to 1, or to the number of messages to handle at once");
        }
        if (c.isExclusive() && c.getConcurrency() > 1) {
            throw new InvalidShmPropertyException(prefix + "concurrency", c.getConcurrency(), "an exclusive member ("
                    + prefix + "exclusive=true) holds its group alone, so it cannot run beside other members",
                    "set " + prefix + "concurrency=1, or " + prefix + "exclusive=false to handle messages in parallel");
        }
        Duration sendTimeout = c.getSendTimeout();
        if (sendTimeout == null || sendTimeout.isNegative()) {
            throw new InvalidShmPropertyException(prefix + "send-timeout", sendTimeout, "must be zero or positive",
                    "set a duration such as 5s");
        }
        return ChannelOptions.defaults()
                .withCapacity(capacity)
                .withSlotSize((int) slotSize)
                .withMaxGroups(maxGroups)
                .withBackpressure(Backpressure.valueOf(c.getBackpressure().name()))
                .withSendTimeout(sendTimeout)
                .withWaitStrategy(WaitStrategy.valueOf(c.getWait().name()));
    }

    /**
     * Returns the consumer group of this application on a channel.
     *
     * @param name the channel's name
     * @param c its properties
     * @param applicationName {@code spring.application.name}, or a default
     * @return the group
     */
    public static String group(String name, ShmProperties.Channel c, String applicationName) {
        String group = c.getType() == ShmProperties.ChannelType.POINT_TO_POINT
                ? POINT_TO_POINT_GROUP
                : c.getGroup() != null && !c.getGroup().isBlank() ? c.getGroup() : applicationName;
        if (!RingDescriptor.isGroupName(group)) {
            throw new InvalidShmPropertyException("shm.channels." + name + ".group", group, "a consumer group name has "
                    + "1 to " + RingDescriptor.GROUP_NAME_CAPACITY + " UTF-8 bytes and no control character",
                    "set a shorter 'group' (it defaults to spring.application.name)");
        }
        return group;
    }

    private static void positive(String property, Duration value) {
        if (value == null || value.isNegative() || value.isZero()) {
            throw new InvalidShmPropertyException(property, value, "must be positive", "set a duration such as 100ms");
        }
    }
}
