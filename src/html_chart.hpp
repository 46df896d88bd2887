// html_chart.hpp — inline SVG charts for the HTML report: the tick/axis math (nice 1-2-5
// steps, time axes in s / min / h, log axes), line charts over a run's timeline with
// gridlines, a legend and shaded phase and fault windows, and a latency histogram.
//
// Every chart is a fixed-size <svg> (960 x 260 CSS px, scaled down on narrow screens) with
// no scripts and no external references. Its plot area has the background `plot_fill`
// and a 1 px frame in `plot_frame`, drawn with crisp edges, colours used nowhere else on
// the page: the render test (tests/cli/test_html_render.cpp) finds each chart's plot
// area in a screenshot by them and counts what was drawn inside.
//
// Thread-safety: pure functions of their arguments; reentrant.
#pragma once

#include "report.hpp"

#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace poolbench::cli::chart {

inline constexpr const char* plot_fill = "#fcfdff";
inline constexpr const char* plot_frame = "#8b949e";
inline constexpr const char* grid_line = "#e4e8ee";

/// One axis: its range and where its ticks go. Linear axes have evenly spaced ticks
/// `step` apart from `lo` to `hi` (both multiples of step); log axes have ticks on a
/// 1-2-5 series and `step` 0.
struct Axis {
    double lo = 0, hi = 1, step = 1;
    bool log = false;
    std::vector<double> ticks;
};

/// The smallest 1, 2 or 5 × 10^n at least `span` / `target` (span > 0, target >= 1).
[[nodiscard]] double nice_step(double span, int target);
/// An axis from `lo` down and `hi` up to whole steps, with about `target` intervals;
/// a range of zero width (or a non-finite one) becomes 0..1 or lo..lo+1.
[[nodiscard]] Axis linear_axis(double lo, double hi, int target = 5);
/// 0 to at least `t_max` seconds: steps of 1, 2 or 5 × 10^n s under a minute, then
/// 1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6, 12, 24 h (a person reads "20 min", not "1200 s").
[[nodiscard]] Axis time_axis(double t_max, int target = 8);
/// A log axis from the 1-2-5 value at or below `lo` to the one at or above `hi` (lo > 0);
/// ticks at 1, 2 and 5 × 10^n, or only at powers of ten when that is more than 12 ticks.
[[nodiscard]] Axis log_axis(double lo, double hi);

/// How an axis prints its values (the one human formatter, human.hpp).
enum class Format { number, micros, seconds, percent };
[[nodiscard]] std::string tick_label(double v, const Axis& axis, Format format);

/// A line; points with a NaN value are gaps (an interval with nothing to measure).
struct Series {
    std::string name;
    std::string color;
    std::vector<std::pair<double, double>> points;
    bool dashed = false;
};

/// A shaded stretch of the time axis: a phase (alternate phases tinted, name on top) or a
/// fault window (orange, hatched by colour, kind on top).
struct Band {
    double from_s = 0, to_s = 0;
    std::string label;
    bool fault = false;
};

struct LineChart {
    std::string id;     ///< the <svg> element's id ("chart-throughput")
    std::string title;  ///< "Throughput (ops/s)"
    Format y_format = Format::number;
    bool y_log_allowed = false;  ///< a log y axis when the values span more than 100x
    double t_max = 0;   ///< the time axis' extent in seconds
    std::vector<Series> series;
    std::vector<Band> bands;
};
/// The chart as one <svg> element (empty string when no series has a point).
[[nodiscard]] std::string line_chart(const LineChart& chart);

/// One distribution in a histogram chart.
struct Distribution {
    std::string name;
    std::string color;
    std::vector<HistogramBin> bins;
};
struct HistogramChart {
    std::string id, title;
    std::vector<Distribution> sets;
};
/// Each distribution's bins as bars (operations per bin; a log scale when the counts span
/// more than 100x) on a log time axis.
[[nodiscard]] std::string histogram_chart(const HistogramChart& chart);

}  // namespace poolbench::cli::chart

namespace poolbench::cli {

/// The report's charts (render_html_charts.cpp): throughput, acquire and op latency over
/// time, pool occupancy over time and the latency histogram, with phases and faults
/// shaded; "" when the report has no timeline and no latencies.
[[nodiscard]] std::string report_charts(const Report& report);
/// The HTML pages' one style sheet (render_html.cpp): system fonts, the charts' classes.
[[nodiscard]] const char* report_page_style() noexcept;

}  // namespace poolbench::cli
