package dev.shm.spring.autoconfigure;

import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.segment.SegmentOptions;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.util.unit.DataSize;

/**
 * Configuration properties for shared-memory messaging: segments, channels and memfd buffers.
 * The names are a contract (docs/configuration.md); the defaults are shm-core's.
 *
 * {@snippet lang = yaml :
 * shm:
 *   segments:
 *     main:
 *       size: 64MB
 *   channels:
 *     orders:
 *       capacity: 4096
 * }
 */
@ConfigurationProperties("shm")
public class ShmProperties {

    /** The name of the segment used when no segment is configured but channels are. */
    public static final String DEFAULT_SEGMENT = "shm";

    /** Whether to enable shared-memory messaging. */
    private boolean enabled = true;

    /** Directory that holds the segment files, one "<name>.shm" file per segment; a tmpfs such as /dev/shm. */
    private Path directory = SegmentOptions.DEFAULT_DIRECTORY;

    /** Segments, by name: each becomes a Segment bean of that name and the file "<directory>/<name>.shm". */
    private Map<String, Segment> segments = new LinkedHashMap<>();

    /** Channels, by name: each becomes a MessageChannel bean of that name. */
    private Map<String, Channel> channels = new LinkedHashMap<>();

    /** Memfd buffers, by name: each becomes a MemfdBuffer bean of that name. */
    private Map<String, Buffer> buffers = new LinkedHashMap<>();

    /** How messages are encoded. */
    private final Codec codec = new Codec();

    /** Graceful shutdown. */
    private final Shutdown shutdown = new Shutdown();

    /** @return whether shared-memory messaging is enabled */
    public boolean isEnabled() {
        return enabled;
    }

    /** @param enabled whether shared-memory messaging is enabled */
    public void setEnabled(boolean enabled) {
        this.enabled = enabled;
    }

    /** @return the directory of the segment files */
    public Path getDirectory() {
        return directory;
    }

    /** @param directory the directory of the segment files */
    public void setDirectory(Path directory) {
        this.directory = directory;
    }

    /** @return the segments by name */
    public Map<String, Segment> getSegments() {
        return segments;
    }

    /** @param segments the segments by name */
    public void setSegments(Map<String, Segment> segments) {
        this.segments = segments;
    }

    /** @return the channels by name */
    public Map<String, Channel> getChannels() {
        return channels;
    }

    /** @param channels the channels by name */
    public void setChannels(Map<String, Channel> channels) {
        this.channels = channels;
    }

    /** @return the memfd buffers by name */
    public Map<String, Buffer> getBuffers() {
        return buffers;
    }

    /** @param buffers the memfd buffers by name */
    public void setBuffers(Map<String, Buffer> buffers) {
        this.buffers = buffers;
    }

    /** @return the codec settings */
    public Codec getCodec() {
        return codec;
    }

    /** @return the shutdown settings */
    public Shutdown getShutdown() {
        return shutdown;
    }

    /** One segment: a file shared by the processes of the host. */
    public static class Segment {

        /** Largest size the segment file may grow to. */
        private DataSize size = DataSize.ofBytes(SegmentOptions.DEFAULT_SIZE);

        /** Number of processes that may attach to the segment at the same time (1 to 254). */
        private int maxPeers = SegmentOptions.DEFAULT_MAX_PEERS;

        /** How often each process writes its heartbeat into the segment. */
        private Duration heartbeatInterval = SegmentOptions.DEFAULT_HEARTBEAT_INTERVAL;

        /** How old a heartbeat may get before its process is reported as stalled; longer than the heartbeat interval. */
        private Duration livenessTimeout = SegmentOptions.DEFAULT_LIVENESS_TIMEOUT;

        /** File mode of the segment file, as in "ls -l", for example rw-rw----. */
        private String permissions = SegmentOptions.DEFAULT_PERMISSIONS;

        /** Size classes of the slot pool that carries messages too large for a ring slot, in ascending size. */
        private List<SlotClass> slotClasses = defaultSlotClasses();

        private static List<SlotClass> defaultSlotClasses() {
            List<SlotClass> classes = new ArrayList<>();
            for (dev.shm.core.segment.SlotClass c : SegmentOptions.DEFAULT_SLOT_CLASSES) {
                classes.add(new SlotClass(DataSize.ofBytes(c.size()), c.count()));
            }
            return classes;
        }

        /** @return the largest size of the file */
        public DataSize getSize() {
            return size;
        }

        /** @param size the largest size of the file */
        public void setSize(DataSize size) {
            this.size = size;
        }

        /** @return the peer table size */
        public int getMaxPeers() {
            return maxPeers;
        }

        /** @param maxPeers the peer table size */
        public void setMaxPeers(int maxPeers) {
            this.maxPeers = maxPeers;
        }

        /** @return the heartbeat interval */
        public Duration getHeartbeatInterval() {
            return heartbeatInterval;
        }

        /** @param heartbeatInterval the heartbeat interval */
        public void setHeartbeatInterval(Duration heartbeatInterval) {
            this.heartbeatInterval = heartbeatInterval;
        }

        /** @return the liveness timeout */
        public Duration getLivenessTimeout() {
            return livenessTimeout;
        }

        /** @param livenessTimeout the liveness timeout */
        public void setLivenessTimeout(Duration livenessTimeout) {
            this.livenessTimeout = livenessTimeout;
        }

        /** @return the file mode */
        public String getPermissions() {
            return permissions;
        }

        /** @param permissions the file mode */
        public void setPermissions(String permissions) {
            this.permissions = permissions;
        }

        /** @return the slot classes */
        public List<SlotClass> getSlotClasses() {
            return slotClasses;
        }

        /** @param slotClasses the slot classes */
        public void setSlotClasses(List<SlotClass> slotClasses) {
            this.slotClasses = slotClasses;
        }
    }

    /** One size class of a segment's slot pool. */
    public static class SlotClass {

        /** Size of one slot, a multiple of 64 bytes. */
        private DataSize size;

        /** Number of slots created with the segment; the class grows when they run out. */
        private int count;

        /** Creates an empty class, for binding. */
        public SlotClass() {
        }

        /**
         * Creates a class.
         *
         * @param size the size of one slot
         * @param count the slots created with the segment
         */
        public SlotClass(DataSize size, int count) {
            this.size = size;
            this.count = count;
        }

        /** @return the size of one slot */
        public DataSize getSize() {
            return size;
        }

        /** @param size the size of one slot */
        public void setSize(DataSize size) {
            this.size = size;
        }

        /** @return the slots created with the segment */
        public int getCount() {
            return count;
        }

        /** @param count the slots created with the segment */
        public void setCount(int count) {
            this.count = count;
        }
    }

    /** How the consumers of a channel share its messages. */
    public enum ChannelType {
        /** Every consumer group receives every message; the members of a group compete. */
        PUBLISH_SUBSCRIBE,
        /** All consumers of every process form one group and compete for each message. */
        POINT_TO_POINT
    }

    /** What a send does when the ring is full. */
    public enum BackpressureMode {
        /** Wait for room up to the send timeout, then fail the send. */
        BLOCK,
        /** Fail the send at once. */
        FAIL,
        /** Drop the message, count it, and report the send as accepted. */
        DROP
    }

    /** How consumers wait for messages and blocked producers for room. */
    public enum WaitMode {
        /** Spin: the lowest latency, a whole core. */
        BUSY_SPIN,
        /** Yield the thread between polls. */
        YIELD,
        /** Spin, then yield, then park with growing pauses up to 1 ms. */
        BACKOFF,
        /** Sleep on a futex in the shared mapping: no CPU while idle. */
        BLOCKING
    }

    /** One channel: a ring in a segment, and a MessageChannel bean. */
    public static class Channel {

        /** Segment that holds the channel's ring; may be left out when there is one segment. */
        private String segment;

        /** How consumers share messages: publish-subscribe (one group per application) or point-to-point (one group for all). */
        private ChannelType type = ChannelType.PUBLISH_SUBSCRIBE;

        /** Consumer group of this application for a publish-subscribe channel (1 to 48 UTF-8 bytes, no control character); defaults to spring.application.name. */
        private String group;

        /** Number of ring slots, a power of two; every process must declare the channel alike. */
        private int capacity = ChannelOptions.DEFAULT_CAPACITY;

        /** Size of one ring slot, a multiple of 8 bytes; messages that do not fit travel in the slot pool. Every process must declare it alike. */
        private DataSize slotSize = DataSize.ofBytes(ChannelOptions.DEFAULT_SLOT_SIZE);

        /** Number of consumer groups the ring can hold (1 to 16); every process must declare the channel alike. */
        private int maxGroups = ChannelOptions.DEFAULT_MAX_GROUPS;

        /** Whether this application's consumer group gates producers, so that it loses nothing; an optional group may be overrun. */
        private boolean required = true;

        /** Whether this application's member holds its consumer group alone: the cheapest receive path; another member of the group, in any process, cannot join while it lives. */
        private boolean exclusive;

        /** Number of members of the consumer group this application runs, each with a thread of its own: they compete for messages, so per-producer order no longer holds. 1 when exclusive. */
        private int concurrency = 1;

        /** What a send does when the slowest required group is a whole ring behind, or the slot it needs is still held by the previous lap. */
        private BackpressureMode backpressure = BackpressureMode.BLOCK;

        /** Longest a send waits for room (a ring slot, and a pool slot for a large message) with the block backpressure; also how long closing the channel keeps the memfd buffers of messages above the largest slot class for the required groups that have not read them yet (later, those groups count them lost). */
        private Duration sendTimeout = ChannelOptions.DEFAULT_SEND_TIMEOUT;

        /** How the consumer waits for messages and a blocked producer for room. */
        private WaitMode wait = WaitMode.BACKOFF;

        /** @return the segment's name, or null */
        public String getSegment() {
            return segment;
        }

        /** @param segment the segment's name */
        public void setSegment(String segment) {
            this.segment = segment;
        }

        /** @return the channel type */
        public ChannelType getType() {
            return type;
        }

        /** @param type the channel type */
        public void setType(ChannelType type) {
            this.type = type;
        }

        /** @return the consumer group, or null for the application's name */
        public String getGroup() {
            return group;
        }

        /** @param group the consumer group */
        public void setGroup(String group) {
            this.group = group;
        }

        /** @return the ring slots */
        public int getCapacity() {
            return capacity;
        }

        /** @param capacity the ring slots */
        public void setCapacity(int capacity) {
            this.capacity = capacity;
        }

        /** @return the size of a ring slot */
        public DataSize getSlotSize() {
            return slotSize;
        }

        /** @param slotSize the size of a ring slot */
        public void setSlotSize(DataSize slotSize) {
            this.slotSize = slotSize;
        }

        /** @return the most consumer groups of the ring */
        public int getMaxGroups() {
            return maxGroups;
        }

        /** @param maxGroups the most consumer groups of the ring */
        public void setMaxGroups(int maxGroups) {
            this.maxGroups = maxGroups;
        }

        /** @return whether the group gates producers */
        public boolean isRequired() {
            return required;
        }

        /** @param required whether the group gates producers */
        public void setRequired(boolean required) {
            this.required = required;
        }

        /** @return whether this application's member holds its group alone */
        public boolean isExclusive() {
            return exclusive;
        }

        /** @param exclusive whether this application's member holds its group alone */
        public void setExclusive(boolean exclusive) {
            this.exclusive = exclusive;
        }

        /** @return the members of the group this application runs */
        public int getConcurrency() {
            return concurrency;
        }

        /** @param concurrency the members of the group this application runs */
        public void setConcurrency(int concurrency) {
            this.concurrency = concurrency;
        }

        /** @return the backpressure */
        public BackpressureMode getBackpressure() {
            return backpressure;
        }

        /** @param backpressure the backpressure */
        public void setBackpressure(BackpressureMode backpressure) {
            this.backpressure = backpressure;
        }

        /** @return the send timeout */
        public Duration getSendTimeout() {
            return sendTimeout;
        }

        /** @param sendTimeout the send timeout */
        public void setSendTimeout(Duration sendTimeout) {
            this.sendTimeout = sendTimeout;
        }

        /** @return the wait strategy */
        public WaitMode getWait() {
            return wait;
        }

        /** @param wait the wait strategy */
        public void setWait(WaitMode wait) {
            this.wait = wait;
        }
    }

    /** One memfd buffer: anonymous shared memory that can be handed to another process. */
    public static class Buffer {

        /** Size of the buffer. */
        private DataSize size;

        /** @return the size */
        public DataSize getSize() {
            return size;
        }

        /** @param size the size */
        public void setSize(DataSize size) {
            this.size = size;
        }
    }

    /** How messages are encoded. */
    public static class Codec {

        /**
         * Packages whose types a JSON payload may name (sub-packages included), besides java.lang, java.util and the
         * application's own packages; "*" trusts every type.
         */
        private List<String> trustedPackages = new ArrayList<>();

        /** @return the trusted packages */
        public List<String> getTrustedPackages() {
            return trustedPackages;
        }

        /** @param trustedPackages the trusted packages */
        public void setTrustedPackages(List<String> trustedPackages) {
            this.trustedPackages = trustedPackages;
        }
    }

    /** Graceful shutdown. */
    public static class Shutdown {

        /**
         * Longest a stopping consumer waits for the message it is handling, and a closing channel for sends in
         * progress; an exclusive consumer started again waits as long for the previous one's thread to return.
         */
        private Duration drainTimeout = Duration.ofSeconds(10);

        /** @return the drain timeout */
        public Duration getDrainTimeout() {
            return drainTimeout;
        }

        /** @param drainTimeout the drain timeout */
        public void setDrainTimeout(Duration drainTimeout) {
            this.drainTimeout = drainTimeout;
        }
    }
}
