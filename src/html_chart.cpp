// html_chart.cpp — axes, ticks and the SVG of the report's charts (see html_chart.hpp).
#include "html_chart.hpp"

#include "human.hpp"
#include "markup.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>

namespace poolbench::cli::chart {

namespace {

// The geometry of every chart, in CSS px.
constexpr int width = 960, height = 260;
constexpr int left = 72, right = 24, top = 44, bottom = 34;
constexpr int plot_w = width - left - right, plot_h = height - top - bottom;

std::string esc(std::string_view text) { return markup_escape(text); }

/// Where `v` falls on `axis`, 0..1 (log axes by the logarithm).
double fraction(double v, const Axis& axis) {
    if (axis.log) {
        if (!(v > 0)) return -1;
        return (std::log10(v) - std::log10(axis.lo)) / (std::log10(axis.hi) - std::log10(axis.lo));
    }
    return (v - axis.lo) / (axis.hi - axis.lo);
}

double x_of(double v, const Axis& axis) { return left + plot_w * fraction(v, axis); }
double y_of(double v, const Axis& axis) { return top + plot_h * (1.0 - fraction(v, axis)); }

/// The value at or below `v` on the 1-2-5 series (v > 0).
double floor125(double v) {
    const double p = std::pow(10.0, std::floor(std::log10(v)));
    for (double m : {5.0, 2.0, 1.0}) {
        if (m * p <= v * (1 + 1e-9)) return m * p;
    }
    return p;
}

/// The value at or above `v` on the 1-2-5 series (v > 0).
double ceil125(double v) {
    const double p = std::pow(10.0, std::floor(std::log10(v)));
    for (double m : {1.0, 2.0, 5.0, 10.0}) {
        if (m * p >= v * (1 - 1e-9)) return m * p;
    }
    return 10 * p;
}

/// The frame of a chart: the <svg> element, its title, the plot's background, and a
/// clip path for what is drawn in the plot.
std::string open_chart(const std::string& id, const std::string& title) {
    return fmt::format(
        "<svg class=\"chart\" id=\"{0}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{1}\" height=\"{2}\" "
        "viewBox=\"0 0 {1} {2}\" role=\"img\" aria-label=\"{3}\"><title>{3}</title>"
        "<defs><clipPath id=\"{0}-clip\"><rect x=\"{4}\" y=\"{5}\" width=\"{6}\" height=\"{7}\"/></clipPath></defs>"
        "<text class=\"title\" x=\"{4}\" y=\"20\">{3}</text>"
        "<rect x=\"{4}\" y=\"{5}\" width=\"{6}\" height=\"{7}\" fill=\"{8}\"/>",
        esc(id), width, height, esc(title), left, top, plot_w, plot_h, plot_fill);
}

/// The 1 px frame, drawn last so nothing covers it.
std::string close_chart() {
    return fmt::format("<rect x=\"{}.5\" y=\"{}.5\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"{}\" "
                       "shape-rendering=\"crispEdges\"/></svg>\n",
                       left, top, plot_w - 1, plot_h - 1, plot_frame);
}

/// Horizontal gridlines and labels for the y axis.
std::string y_grid(const Axis& axis, Format format) {
    std::string o;
    for (double t : axis.ticks) {
        const double y = std::round(y_of(t, axis));
        if (y > top && y < top + plot_h - 1) {
            fmt::format_to(std::back_inserter(o),
                           "<line x1=\"{}\" x2=\"{}\" y1=\"{}.5\" y2=\"{}.5\" stroke=\"{}\" shape-rendering=\"crispEdges\"/>",
                           left + 1, left + plot_w - 1, static_cast<int>(y), static_cast<int>(y), grid_line);
        }
        fmt::format_to(std::back_inserter(o), "<text class=\"tick\" x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>",
                       left - 8, y + 4, esc(tick_label(t, axis, format)));
    }
    return o;
}

/// Vertical gridlines, tick marks and labels for the x axis.
std::string x_grid(const Axis& axis, Format format) {
    std::string o;
    for (double t : axis.ticks) {
        const double x = std::round(x_of(t, axis));
        if (x > left && x < left + plot_w - 1) {
            fmt::format_to(std::back_inserter(o),
                           "<line x1=\"{0}.5\" x2=\"{0}.5\" y1=\"{1}\" y2=\"{2}\" stroke=\"{3}\" shape-rendering=\"crispEdges\"/>",
                           static_cast<int>(x), top + 1, top + plot_h - 1, grid_line);
        }
        fmt::format_to(std::back_inserter(o),
                       "<line x1=\"{0}.5\" x2=\"{0}.5\" y1=\"{1}\" y2=\"{2}\" stroke=\"{3}\"/>"
                       "<text class=\"tick\" x=\"{0}\" y=\"{4}\" text-anchor=\"middle\">{5}</text>",
                       static_cast<int>(x), top + plot_h, top + plot_h + 5, plot_frame, top + plot_h + 19,
                       esc(tick_label(t, axis, format)));
    }
    return o;
}

/// The legend, right-aligned on the title's line.
std::string legend(const std::vector<std::pair<std::string, std::string>>& items, const std::vector<bool>& dashed) {
    std::string o;
    double x = width - right;
    for (std::size_t i = items.size(); i-- > 0;) {
        const auto& [name, color] = items[i];
        const double text_w = 7.0 * static_cast<double>(name.size()) + 4;
        x -= text_w;
        fmt::format_to(std::back_inserter(o), "<text class=\"legend\" x=\"{:.0f}\" y=\"20\">{}</text>", x, esc(name));
        x -= 24;
        fmt::format_to(std::back_inserter(o),
                       "<line x1=\"{:.0f}\" x2=\"{:.0f}\" y1=\"16\" y2=\"16\" stroke=\"{}\" stroke-width=\"{}\"{}/>", x,
                       x + 18, color, dashed[i] ? 2 : 3, dashed[i] ? " stroke-dasharray=\"4 3\"" : "");
        x -= 14;
    }
    return o;
}

/// A value for a tooltip, in the chart's unit.
std::string value_text(double v, Format format) {
    switch (format) {
        case Format::micros: return human_us(v);
        case Format::seconds: return fmt::format("{:.2f} s", v);
        case Format::percent: return human_number(v) + "%";
        case Format::number: break;
    }
    return human_number(v);
}

/// A bin's share of its distribution: "12.34%", "<0.01%".
std::string share_text(std::uint64_t n, std::uint64_t total) {
    const double pct = 100.0 * static_cast<double>(n) / static_cast<double>(total);
    return pct >= 0.01 ? fmt::format("{:.2f}%", pct) : std::string("<0.01%");
}

}  // namespace

double nice_step(double span, int target) {
    if (!(span > 0) || !std::isfinite(span)) return 1;
    return ceil125(span / std::max(target, 1));
}

Axis linear_axis(double lo, double hi, int target) {
    Axis a;
    if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
    if (hi < lo) std::swap(lo, hi);
    if (hi == lo) hi = lo + (lo == 0 ? 1 : std::fabs(lo));
    a.step = nice_step(hi - lo, target);
    a.lo = std::floor(lo / a.step + 1e-9) * a.step;
    a.hi = std::ceil(hi / a.step - 1e-9) * a.step;
    const auto n = static_cast<long long>(std::llround((a.hi - a.lo) / a.step));
    for (long long i = 0; i <= n; ++i) a.ticks.push_back(a.lo + static_cast<double>(i) * a.step);
    return a;
}

Axis time_axis(double t_max, int target) {
    if (!(t_max > 0) || !std::isfinite(t_max)) t_max = 1;
    double step = nice_step(t_max, target);
    if (step >= 60) {
        // Past a minute, steps a clock has.
        static constexpr std::array<double, 12> clock{60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
                                                      86400};
        step = clock.back();
        for (double s : clock) {
            if (s * target >= t_max) {
                step = s;
                break;
            }
        }
    }
    // The axis ends where the run did (no empty stretch after it); ticks up to there.
    Axis a;
    a.step = step;
    a.lo = 0;
    a.hi = t_max;
    const auto n = static_cast<long long>(std::floor(t_max / step + 1e-9));
    for (long long i = 0; i <= n; ++i) a.ticks.push_back(static_cast<double>(i) * step);
    return a;
}

Axis log_axis(double lo, double hi) {
    Axis a;
    a.log = true;
    a.step = 0;
    if (!(lo > 0) || !std::isfinite(lo)) lo = 1;
    if (!(hi > lo) || !std::isfinite(hi)) hi = lo * 10;
    a.lo = floor125(lo);
    a.hi = ceil125(hi);
    if (a.hi <= a.lo) a.hi = ceil125(a.lo * 1.5);
    std::vector<double> all, decades;
    for (double p = std::pow(10.0, std::floor(std::log10(a.lo))); p <= a.hi * (1 + 1e-9); p *= 10) {
        for (double m : {1.0, 2.0, 5.0}) {
            const double v = m * p;
            if (v >= a.lo * (1 - 1e-9) && v <= a.hi * (1 + 1e-9)) {
                all.push_back(v);
                if (m == 1.0) decades.push_back(v);
            }
        }
    }
    a.ticks = all.size() > 12 && decades.size() >= 2 ? decades : all;
    return a;
}

std::string tick_label(double v, const Axis& axis, Format format) {
    const double step = axis.log ? v : axis.step;
    switch (format) {
        case Format::micros: return human_axis_us(v, step);
        case Format::seconds: return human_axis_seconds(v, step);
        case Format::percent: return human_axis_number(v, step) + "%";
        case Format::number: break;
    }
    return human_axis_number(v, step);
}

std::string line_chart(const LineChart& c) {
    double y_max = 0, y_min_positive = std::numeric_limits<double>::infinity();
    std::size_t drawn = 0;
    for (const auto& s : c.series) {
        for (const auto& [t, v] : s.points) {
            if (!std::isfinite(v)) continue;
            ++drawn;
            y_max = std::max(y_max, v);
            if (v > 0) y_min_positive = std::min(y_min_positive, v);
        }
    }
    if (drawn == 0) return {};
    const bool log = c.y_log_allowed && std::isfinite(y_min_positive) && y_max / y_min_positive > 100;
    // Headroom above the highest value, so a line at the maximum is not hidden by the frame.
    const Axis y = log ? log_axis(y_min_positive, y_max * 1.2) : linear_axis(0, y_max * 1.05, 5);
    const Axis x = time_axis(c.t_max);

    std::string o = open_chart(c.id, c.title + (log ? ", log scale" : ""));
    auto it = std::back_inserter(o);
    fmt::format_to(it, "<g clip-path=\"url(#{}-clip)\">", esc(c.id));
    std::size_t phase_index = 0;
    for (const auto& b : c.bands) {
        const double x0 = x_of(std::max(b.from_s, 0.0), x), x1 = x_of(std::min(b.to_s, x.hi), x);
        if (b.fault) {
            fmt::format_to(it,
                           "<rect class=\"fault\" x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"#f0883e\" "
                           "fill-opacity=\"0.22\"><title>{}</title></rect>"
                           "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{}\" y2=\"{}\" stroke=\"#f0883e\" stroke-width=\"1\"/>"
                           "<text class=\"band fault-label\" x=\"{:.1f}\" y=\"{}\">{}</text>",
                           x0, top, std::max(2.0, x1 - x0), plot_h, esc(b.label), x0, x0, top, top + plot_h, x0 + 4,
                           top + plot_h - 8, esc(b.label));
        } else {
            if (phase_index % 2 == 1) {
                fmt::format_to(it, "<rect x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"#eef1f5\"/>", x0,
                               top, std::max(0.0, x1 - x0), plot_h);
            }
            if (phase_index > 0) {
                fmt::format_to(it,
                               "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#6e7781\" "
                               "stroke-dasharray=\"3 3\"/>",
                               x0, top, top + plot_h);
            }
            // The name when it fits in its band (about 6.5 px a character at 11 px).
            if (x1 - x0 >= 6.5 * static_cast<double>(b.label.size()) + 8) {
                fmt::format_to(it, "<text class=\"band\" x=\"{:.1f}\" y=\"{}\">{}</text>", x0 + 4, top + 13,
                               esc(b.label));
            }
            ++phase_index;
        }
    }
    o += "</g>";
    o += y_grid(y, c.y_format);
    o += x_grid(x, Format::seconds);
    fmt::format_to(it, "<g clip-path=\"url(#{}-clip)\" fill=\"none\" stroke-linejoin=\"round\" stroke-linecap=\"round\">",
                   esc(c.id));
    std::vector<std::pair<std::string, std::string>> items;
    std::vector<bool> dashed;
    for (const auto& s : c.series) {
        std::string path;
        bool pen_down = false;
        std::size_t finite = 0;
        for (const auto& [t, v] : s.points) {
            if (!std::isfinite(v) || (log && !(v > 0))) {
                pen_down = false;
                continue;
            }
            ++finite;
            fmt::format_to(std::back_inserter(path), "{}{:.1f},{:.1f}", pen_down ? " L" : (path.empty() ? "M" : " M"),
                           x_of(t, x), y_of(v, y));
            pen_down = true;
        }
        if (finite == 0) continue;
        fmt::format_to(it, "<path class=\"series\" d=\"{}\" stroke=\"{}\" stroke-width=\"2\"{}><title>{}</title></path>",
                       path, s.color, s.dashed ? " stroke-dasharray=\"5 4\"" : "", esc(s.name));
        if (finite <= 60 && !s.dashed) {
            for (const auto& [t, v] : s.points) {
                if (!std::isfinite(v) || (log && !(v > 0))) continue;
                // Hovering a point shows its value (a <title>: no script needed).
                fmt::format_to(it,
                               "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\" stroke=\"none\"><title>{} at "
                               "{:.2f} s: {}</title></circle>",
                               x_of(t, x), y_of(v, y), s.color, esc(s.name), t, esc(value_text(v, c.y_format)));
            }
        }
        items.emplace_back(s.name, s.color);
        dashed.push_back(s.dashed);
    }
    o += "</g>";
    o += legend(items, dashed);
    o += close_chart();
    return o;
}

std::string histogram_chart(const HistogramChart& c) {
    // The x axis starts at the lowest bin above zero (a [0, 1 ns) bin is drawn at its edge).
    double lo = std::numeric_limits<double>::infinity(), hi = 0, count_max = 0;
    double count_min = std::numeric_limits<double>::infinity();
    for (const auto& d : c.sets) {
        for (const auto& b : d.bins) {
            if (b.count == 0) continue;
            lo = std::min(lo, b.lo_us > 0 ? b.lo_us : b.hi_us);
            hi = std::max(hi, b.hi_us);
            count_max = std::max(count_max, static_cast<double>(b.count));
            count_min = std::min(count_min, static_cast<double>(b.count));
        }
    }
    if (!(hi > 0)) return {};
    const Axis x = log_axis(lo, hi);
    // The tail is what a reader looks for: a log scale when it would be a sliver on a linear one.
    const bool log = count_min < count_max / 100;
    const Axis y = log ? log_axis(std::max(count_min * 0.5, 0.5), count_max * 1.5) : linear_axis(0, count_max * 1.05, 4);
    const double baseline = top + plot_h;
    auto y_at = [&](double n) { return n > 0 ? std::min(baseline, y_of(n, y)) : baseline; };
    auto x_at = [&](double us) { return us > 0 ? std::max<double>(left, x_of(us, x)) : left; };
    std::string o = open_chart(c.id, c.title + (log ? ", log scale" : ""));
    auto it = std::back_inserter(o);
    o += y_grid(y, Format::number);
    o += x_grid(x, Format::micros);
    fmt::format_to(it, "<g clip-path=\"url(#{}-clip)\">", esc(c.id));
    std::vector<std::pair<std::string, std::string>> items;
    for (const auto& d : c.sets) {
        std::uint64_t total = 0;
        for (const auto& b : d.bins) total += b.count;
        if (total == 0) continue;
        std::string outline;
        double last_x = left;
        for (const auto& b : d.bins) {
            const double x0 = x_at(b.lo_us), x1 = x_at(b.hi_us);
            const double y0 = y_at(static_cast<double>(b.count));
            if (outline.empty()) fmt::format_to(std::back_inserter(outline), "M{:.1f},{}", x0, baseline);
            fmt::format_to(std::back_inserter(outline), " L{:.1f},{:.1f} L{:.1f},{:.1f}", x0, y0, x1, y0);
            last_x = x1;
            if (b.count == 0) continue;
            fmt::format_to(it,
                           "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\" "
                           "fill-opacity=\"0.3\"><title>{}: {} – {}: {} ({})</title></rect>",
                           x0, y0, std::max(0.5, x1 - x0), baseline - y0, d.color, esc(d.name), human_us(b.lo_us),
                           human_us(b.hi_us), human_count(static_cast<double>(b.count)), share_text(b.count, total));
        }
        fmt::format_to(it, "<path class=\"series\" d=\"{} L{:.1f},{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
                       outline, last_x, baseline, d.color);
        items.emplace_back(d.name, d.color);
    }
    o += "</g>";
    o += legend(items, std::vector<bool>(items.size(), false));
    o += close_chart();
    return o;
}

}  // namespace poolbench::cli::chart
