package dev.shm.core.cli;

import dev.shm.core.ShmException;
import dev.shm.core.lane.LaneTable;
import dev.shm.core.pool.SlotPool;
import dev.shm.core.ring.Channel;
import dev.shm.core.segment.Directory;
import dev.shm.core.segment.DirectoryDescriptor;
import dev.shm.core.segment.LeaseTable;
import dev.shm.core.segment.PeerInfo;
import dev.shm.core.segment.PeerState;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentDescriptor.Header;
import dev.shm.core.segment.SegmentDescriptor.Layout;
import dev.shm.core.segment.SegmentInspector;
import dev.shm.core.segment.SegmentOptions;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The command line of shm-core, run as {@code java -jar shm-core-<version>.jar}:
 *
 * <pre>
 * stat &lt;segment-file&gt;   print a segment's header, peers, directory, channels, lanes, slot pool, leases and counters
 * clean &lt;directory&gt;     remove the segments whose peers are all dead, and temporary files of dead creators
 * </pre>
 *
 * Neither command attaches as a peer. Exit codes: 0 done; 1 the file or directory is missing, is
 * not a segment, or cannot be read (one line on standard error says why); 2 bad usage.
 */
public final class ShmCli {

    /** Exit code: done. */
    public static final int OK = 0;
    /** Exit code: a missing, foreign, damaged or unreadable file or directory. */
    public static final int FAILED = 1;
    /** Exit code: bad usage. */
    public static final int USAGE = 2;

    private static final String USAGE_TEXT = """
            usage: java -jar shm-core.jar <command> <argument>
              stat <segment-file>   print a segment's header, peers, directory, channels, lanes, slot pool, leases and counters
              clean <directory>     remove segments whose peers are all dead (and temporary files of dead creators)""";

    /** Temporary names of segments being created: {@code .<name>.shm.<pid>.<n>.tmp}. */
    private static final Pattern TEMPORARY = Pattern.compile("\\..+\\" + SegmentOptions.FILE_SUFFIX
            + "\\.(\\d+)\\.\\d+\\.tmp");

    private final PrintStream out;
    private final PrintStream err;

    private ShmCli(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /**
     * Runs a command and exits with its code.
     *
     * @param args the command and its argument
     */
    public static void main(String[] args) {
        int code = run(args, System.out, System.err);
        System.out.flush();
        System.exit(code);
    }

    /**
     * Runs a command.
     *
     * @param args the command and its argument
     * @param out where the report goes
     * @param err where problems go, one line each
     * @return the exit code: {@link #OK}, {@link #FAILED} or {@link #USAGE}
     */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        return new ShmCli(out, err).run(args);
    }

    private int run(String[] args) {
        if (args.length == 1 && (args[0].equals("help") || args[0].equals("--help") || args[0].equals("-h"))) {
            out.println(USAGE_TEXT);
            return OK;
        }
        if (args.length != 2 || !(args[0].equals("stat") || args[0].equals("clean"))) {
            err.println("shm: expected 'stat <segment-file>' or 'clean <directory>', got "
                    + (args.length == 0 ? "nothing" : "'" + String.join(" ", args) + "'"));
            err.println(USAGE_TEXT);
            return USAGE;
        }
        Path path = Path.of(args[1]);
        try {
            return args[0].equals("stat") ? stat(path) : clean(path);
        } catch (ShmException | UncheckedIOException | IllegalStateException e) {
            err.println("shm: " + oneLine(e.getMessage()));
            return FAILED;
        }
    }

    // ---------------------------------------------------------------- stat

    private int stat(Path path) {
        if (Files.isDirectory(path)) {
            err.println("shm: " + path + " is a directory; stat takes a segment file (" + SegmentOptions.FILE_SUFFIX
                    + "), clean takes a directory");
            return FAILED;
        }
        try (SegmentInspector inspector = SegmentInspector.open(path)) {
            header(path, inspector);
            peers(inspector.peers());
            directory(inspector.directory());
            channels(inspector);
            lanes(inspector.lanes());
            pool(inspector.slotPool());
            leases(inspector.leases());
            counters(inspector);
        }
        return OK;
    }

    private void header(Path path, SegmentInspector inspector) {
        Header header = inspector.header();
        Layout layout = header.layout();
        out.println("segment " + path);
        out.printf(Locale.ROOT, "  layout version %d, created %s by pid %d%n", header.version(),
                Instant.ofEpochMilli(header.creationTimeMillis()), header.creatorPid());
        out.printf(Locale.ROOT, "  size %s of at most %s; heartbeat every %s, liveness timeout %s%n",
                bytes(inspector.currentSize()), bytes(header.maxSize()),
                duration(Duration.ofNanos(header.heartbeatIntervalNanos())),
                duration(Duration.ofNanos(header.livenessTimeoutNanos())));
        out.printf(Locale.ROOT, "  host goodbye: %s; stale (no peer alive): %s%n", yesNo(inspector.isHostGoodbye()),
                yesNo(inspector.isStale()));
        out.printf(Locale.ROOT, "  parts: peer table @%d (%d), counters @%d (%d), directory @%d (%d), lanes @%d (%d x %s),"
                        + " leases @%d (%d), slot classes @%d (%d), extents @%d%n",
                layout.peerTableOffset(), layout.maxPeers(), layout.countersOffset(), layout.maxCounters(),
                layout.directoryOffset(), layout.maxDirectoryEntries(), layout.laneTableOffset(), layout.maxLanes(),
                bytes(header.laneCapacity()), layout.leaseTableOffset(), layout.maxLeases(), layout.poolOffset(),
                layout.slotClassCount(), layout.extentsOffset());
    }

    private void peers(List<PeerInfo> peers) {
        List<PeerInfo> used = peers.stream().filter(p -> p.state() != PeerState.EMPTY).toList();
        out.println();
        out.println("peers (" + used.size() + " of " + peers.size() + " in use)");
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"ID", "STATE", "EPOCH", "PID", "LIVENESS", "HEARTBEAT AGE", "NAME"});
        for (PeerInfo p : used) {
            String state = p.state() + (p.actor() >= 0 ? " (by " + p.actor() + ")" : "");
            rows.add(new String[] {String.valueOf(p.id()), state, String.valueOf(p.epoch()), String.valueOf(p.pid()),
                    p.liveness().name(), p.heartbeatAge() == null ? "-" : duration(p.heartbeatAge()), p.name()});
        }
        table(rows);
    }

    private void directory(List<Directory.Entry> entries) {
        out.println();
        out.println("directory (" + entries.size() + ")");
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"INDEX", "TYPE", "NAME", "PROVIDER", "PARAMETERS", "STRUCTURE"});
        for (Directory.Entry e : entries) {
            String type = switch (e.type()) {
                case DirectoryDescriptor.CHANNEL -> "channel";
                case DirectoryDescriptor.SERVICE -> "service";
                default -> "type " + e.type();
            };
            rows.add(new String[] {String.valueOf(e.index()), type, e.name(),
                    e.provider() < 0 ? "-" : String.valueOf(e.provider()), Arrays.toString(e.params()),
                    e.structureLength() == 0 ? "-" : "@" + e.structureOffset() + " (" + bytes(e.structureLength()) + ")"});
        }
        table(rows);
    }

    private void channels(SegmentInspector inspector) {
        List<Directory.Entry> entries = inspector.directory().stream()
                .filter(e -> e.type() == DirectoryDescriptor.CHANNEL).toList();
        out.println();
        out.println("channels (" + entries.size() + ")");
        if (entries.isEmpty()) {
            out.println("  (none)");
            return;
        }
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"CHANNEL", "CAPACITY", "SLOT", "CURSOR", "PUBLISHED", "OCCUPANCY", "FULL-WAITS", "DROPS",
                "SKIPS", "CORRUPT"});
        List<String[]> groups = new ArrayList<>();
        groups.add(new String[] {"CHANNEL", "GROUP", "REQUIRED", "MEMBERS", "EXCLUSIVE", "CONSUMED", "LAG", "REDELIVERED",
                "LOST"});
        for (Directory.Entry e : entries) {
            Channel.Stats stats;
            try {
                stats = Channel.inspect(inspector, e);
            } catch (RuntimeException damaged) {
                rows.add(new String[] {e.name(), "damaged: " + oneLine(damaged.getMessage()), "", "", "", "", "", "", "",
                        ""});
                continue;
            }
            rows.add(new String[] {stats.name(), String.valueOf(stats.capacity()), bytes(stats.slotSize()),
                    String.valueOf(stats.cursor()), String.valueOf(stats.published()), String.valueOf(stats.occupancy()),
                    String.valueOf(stats.fullWaits()), String.valueOf(stats.drops()), String.valueOf(stats.skips()),
                    String.valueOf(stats.corrupt())});
            for (Channel.GroupStats g : stats.groups()) {
                groups.add(new String[] {stats.name(), g.name(), yesNo(g.required()), String.valueOf(g.members()),
                        yesNo(g.exclusive()), String.valueOf(g.consumed()), String.valueOf(g.lag()), String.valueOf(g.redeliveries()),
                        String.valueOf(g.lost())});
            }
        }
        table(rows);
        out.println();
        out.println("consumer groups (" + (groups.size() - 1) + ")");
        table(groups);
    }

    private void lanes(List<LaneTable.LaneInfo> lanes) {
        out.println();
        out.println("lanes (" + lanes.size() + " used)");
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"INDEX", "STATE", "EPOCH", "CLIENT", "PROVIDER", "SERVICE", "CAPACITY",
                "PENDING TO SERVICE", "PENDING TO CLIENT"});
        for (LaneTable.LaneInfo l : lanes) {
            rows.add(new String[] {String.valueOf(l.index()), l.state(), String.valueOf(l.epoch()),
                    String.valueOf(l.client()), String.valueOf(l.provider()), String.valueOf(l.service()),
                    bytes(l.capacity()), bytes(l.pendingToService()), bytes(l.pendingToClient())});
        }
        table(rows);
    }

    private void pool(List<SlotPool.ClassStats> classes) {
        out.println();
        out.println("slot pool (" + classes.size() + " classes)");
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"CLASS", "SLOT SIZE", "TOTAL", "FREE", "ALLOCATED", "FREEING", "EXTENTS", "RECLAIMED"});
        for (SlotPool.ClassStats c : classes) {
            rows.add(new String[] {String.valueOf(c.classIndex()), bytes(c.slotSize()), String.valueOf(c.total()),
                    String.valueOf(c.free()), String.valueOf(c.allocated()), String.valueOf(c.freeing()),
                    String.valueOf(c.extents()), String.valueOf(c.reclaimed())});
        }
        table(rows);
    }

    private void leases(List<LeaseTable.Lease> leases) {
        out.println();
        out.println("memfd leases (" + leases.size() + ")");
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"INDEX", "GENERATION", "OWNER", "PID", "FD", "SIZE"});
        for (LeaseTable.Lease l : leases) {
            rows.add(new String[] {String.valueOf(l.index()), String.valueOf(l.generation()), String.valueOf(l.owner()),
                    String.valueOf(l.pid()), String.valueOf(l.fd()), bytes(l.size())});
        }
        table(rows);
    }

    private void counters(SegmentInspector inspector) {
        out.println();
        out.println("counters");
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"ID", "TYPE", "OWNER", "LABEL", "VALUE"});
        inspector.counters().forEach((id, type, owner, label, value) -> rows.add(new String[] {String.valueOf(id),
                String.valueOf(type), String.valueOf(owner), label, String.valueOf(value)}));
        table(rows);
    }

    /** Prints rows as columns, the first row as the heading. */
    private void table(List<String[]> rows) {
        if (rows.size() == 1) {
            out.println("  (none)");
            return;
        }
        int[] widths = new int[rows.getFirst().length];
        for (String[] row : rows) {
            for (int i = 0; i < row.length; i++) {
                widths[i] = Math.max(widths[i], row[i].length());
            }
        }
        for (String[] row : rows) {
            StringBuilder line = new StringBuilder("  ");
            for (int i = 0; i < row.length; i++) {
                line.append(row[i]);
                if (i + 1 < row.length) {
                    line.append(" ".repeat(widths[i] - row[i].length() + 2));
                }
            }
            out.println(line);
        }
    }

    // ---------------------------------------------------------------- clean

    private int clean(Path directory) {
        if (!Files.isDirectory(directory)) {
            err.println("shm: " + directory + (Files.exists(directory) ? " is not a directory" : " does not exist")
                    + "; clean takes the directory of the segments, e.g. /dev/shm");
            return FAILED;
        }
        List<Path> files;
        try (Stream<Path> listing = Files.list(directory)) {
            files = listing.filter(Files::isRegularFile).sorted().toList();
        } catch (IOException e) {
            err.println("shm: cannot list " + directory + ": " + oneLine(e.getMessage()));
            return FAILED;
        }
        int removed = 0;
        int kept = 0;
        for (Path file : files) {
            String name = file.getFileName().toString();
            Matcher temporary = TEMPORARY.matcher(name);
            if (temporary.matches()) {
                if (ProcessHandle.of(Long.parseLong(temporary.group(1))).isEmpty() && delete(file)) {
                    out.println("removed " + file + " (an unfinished segment of dead process " + temporary.group(1) + ")");
                    removed++;
                }
                continue;
            }
            if (!name.endsWith(SegmentOptions.FILE_SUFFIX)) {
                continue;
            }
            try {
                Segment.Removal removal = Segment.removeIfStale(file);
                switch (removal) {
                    case REMOVED -> {
                        out.println("removed " + file + " (no peer alive)");
                        removed++;
                    }
                    case IN_USE -> {
                        out.println("kept " + file + " (in use)");
                        kept++;
                    }
                    case BUSY -> {
                        out.println("kept " + file + " (a process is attaching)");
                        kept++;
                    }
                }
            } catch (ShmException | UncheckedIOException e) {
                out.println("skipped " + file + ": " + oneLine(e.getMessage()));
            }
        }
        out.println(removed + " removed, " + kept + " kept");
        return OK;
    }

    private boolean delete(Path file) {
        try {
            return Files.deleteIfExists(file);
        } catch (IOException e) {
            out.println("skipped " + file + ": " + oneLine(e.getMessage()));
            return false;
        }
    }

    // ---------------------------------------------------------------- formatting

    private static String oneLine(String message) {
        return message == null ? "failed" : message.replaceAll("\\s*\\R\\s*", "; ");
    }

    private static String yesNo(boolean value) {
        return value ? "yes" : "no";
    }

    static String bytes(long bytes) {
        if (bytes < 1024 || bytes % 1024 != 0 && bytes < 10 * 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double value = bytes;
        int unit = -1;
        while (value >= 1024 && unit + 1 < units.length) {
            value /= 1024;
            unit++;
        }
        return value == Math.rint(value) ? String.format(Locale.ROOT, "%d %s", (long) value, units[unit])
                : String.format(Locale.ROOT, "%.1f %s", value, units[unit]);
    }

    static String duration(Duration duration) {
        long nanos = duration.toNanos();
        if (nanos < 0) {
            return "-";
        }
        if (nanos < 1_000_000) {
            return nanos / 1000 + " us";
        }
        if (nanos < 10_000_000_000L) {
            return nanos / 1_000_000 + " ms";
        }
        return duration.toSeconds() + " s";
    }
}
