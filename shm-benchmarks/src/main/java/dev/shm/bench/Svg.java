package dev.shm.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Grouped bar charts as plain SVG, written by hand: no external tools. A logarithmic value axis,
 * because the peers differ by orders of magnitude.
 */
final class Svg {

    private static final String[] COLOURS = {
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f", "#bab0ac"};
    private static final int WIDTH = 900;
    private static final int HEIGHT = 420;
    private static final int LEFT = 80;
    private static final int RIGHT = 170;
    private static final int TOP = 40;
    private static final int BOTTOM = 50;

    private Svg() {
    }

    /**
     * Writes a grouped bar chart.
     *
     * @param file where to write
     * @param title the chart's title
     * @param unit the value axis' unit
     * @param groups the groups along the x axis
     * @param series the bars of each group (the legend)
     * @param values {@code values[series][group]}, NaN for a missing bar
     */
    static void bars(Path file, String title, String unit, List<String> groups, List<String> series, double[][] values) {
        double min = Double.MAX_VALUE;
        double max = 0;
        for (double[] row : values) {
            for (double v : row) {
                if (Double.isFinite(v) && v > 0) {
                    min = Math.min(min, v);
                    max = Math.max(max, v);
                }
            }
        }
        if (max == 0) {
            min = 1;
            max = 10;
        }
        double lo = Math.floor(Math.log10(min));
        double hi = Math.ceil(Math.log10(max));
        if (hi <= lo) {
            hi = lo + 1;
        }
        int plotW = WIDTH - LEFT - RIGHT;
        int plotH = HEIGHT - TOP - BOTTOM;
        StringBuilder svg = new StringBuilder();
        svg.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                + "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">%n", WIDTH, HEIGHT, WIDTH, HEIGHT));
        svg.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"22\" font-size=\"15\" font-weight=\"bold\">%s</text>%n",
                LEFT, escape(title)));
        for (int d = (int) lo; d <= (int) hi; d++) {
            double y = TOP + plotH - (d - lo) / (hi - lo) * plotH;
            svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>%n",
                    LEFT, y, LEFT + plotW, y));
            svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>%n",
                    LEFT - 6, y + 4, escape(tick(d))));
        }
        svg.append(String.format(Locale.ROOT, "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" "
                + "text-anchor=\"middle\">%s (log scale)</text>%n", TOP + plotH / 2, TOP + plotH / 2, escape(unit)));
        double groupW = (double) plotW / groups.size();
        double barW = groupW * 0.8 / series.size();
        for (int g = 0; g < groups.size(); g++) {
            double x0 = LEFT + g * groupW + groupW * 0.1;
            for (int s = 0; s < series.size(); s++) {
                double v = values[s][g];
                if (!Double.isFinite(v) || v <= 0) {
                    continue;
                }
                double h = Math.max(1, (Math.log10(v) - lo) / (hi - lo) * plotH);
                double x = x0 + s * barW;
                svg.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                        + "fill=\"%s\"><title>%s %s: %s %s</title></rect>%n", x, TOP + plotH - h, barW * 0.92, h,
                        COLOURS[s % COLOURS.length], escape(series.get(s)), escape(groups.get(g)), number(v),
                        escape(unit)));
            }
            svg.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>%n",
                    LEFT + g * groupW + groupW / 2, TOP + plotH + 18, escape(groups.get(g))));
        }
        svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>%n",
                LEFT, TOP + plotH, LEFT + plotW, TOP + plotH));
        for (int s = 0; s < series.size(); s++) {
            int y = TOP + 10 + s * 20;
            svg.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                    + "<text x=\"%d\" y=\"%d\">%s</text>%n", LEFT + plotW + 14, y, COLOURS[s % COLOURS.length],
                    LEFT + plotW + 32, y + 11, escape(series.get(s))));
        }
        svg.append("</svg>\n");
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            Files.writeString(file, svg);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    private static String tick(int decade) {
        double v = Math.pow(10, decade);
        return number(v);
    }

    private static String number(double v) {
        if (v >= 1e9) {
            return trim(v / 1e9) + "G";
        }
        if (v >= 1e6) {
            return trim(v / 1e6) + "M";
        }
        if (v >= 1e3) {
            return trim(v / 1e3) + "k";
        }
        return trim(v);
    }

    private static String trim(double v) {
        return v >= 100 || v == Math.rint(v) ? String.format(Locale.ROOT, "%.0f", v) : String.format(Locale.ROOT, "%.2g", v);
    }

    private static String escape(String text) {
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }
}
