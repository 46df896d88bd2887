// render_html_charts.cpp — which charts the HTML report shows, from the report model:
// throughput (and failures) over time, acquire and op latency percentiles over time, the
// pool's occupancy over time, and the latency distributions; phases and fault windows
// shaded on every timeline chart.
#include "html_chart.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace poolbench::cli {

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// The page's palette (GitHub Primer's, readable on white and for most colour vision).
constexpr const char* blue = "#0969da";
constexpr const char* purple = "#8250df";
constexpr const char* red = "#cf222e";
constexpr const char* green = "#1a7f37";
constexpr const char* amber = "#bf8700";
constexpr const char* grey = "#6e7781";
constexpr const char* pink = "#bf3989";

/// Phases (when there are two or more) and fault windows, on the timeline's time base.
std::vector<chart::Band> bands_of(const Report& r) {
    std::vector<chart::Band> bands;
    if (r.phases.size() > 1) {
        for (const auto& p : r.phases) {
            if (p.duration_s <= 0) continue;
            bands.push_back(chart::Band{p.started_s, p.started_s + p.duration_s, p.name, false});
        }
    }
    for (const auto& f : r.faults) {
        if (!f.started_s || !f.ended_s) continue;
        bands.push_back(chart::Band{*f.started_s, *f.ended_s, f.kind, true});
    }
    return bands;
}

double t_max_of(const Report& r) {
    double t = r.timeline.empty() ? 0.0 : r.timeline.back().t_s;
    if (r.phases.size() > 1) {
        for (const auto& p : r.phases) t = std::max(t, p.started_s + p.duration_s);
    }
    return t;
}

/// A latency series: intervals that completed nothing have no latency (a gap, not 0).
chart::Series latency_series(const Report& r, const char* name, const char* color, double TimelinePoint::*field) {
    chart::Series s{name, color, {}, false};
    for (const auto& p : r.timeline) {
        const double v = p.*field;
        s.points.emplace_back(p.t_s, v > 0 ? v : nan);
    }
    return s;
}

}  // namespace

std::string report_charts(const Report& r) {
    if (r.timeline.empty() && r.latency_histogram_us.op.empty()) return {};
    std::string o;
    const auto bands = bands_of(r);
    const double t_max = t_max_of(r);

    if (!r.timeline.empty()) {
        chart::LineChart tp{"chart-throughput", "Throughput (operations per second)", chart::Format::number, false,
                            t_max, {}, bands};
        chart::Series ok{"ok", blue, {}, false};
        chart::Series failed{"failed", red, {}, false};
        bool any_failed = false;
        double previous = 0;
        for (const auto& p : r.timeline) {
            ok.points.emplace_back(p.t_s, p.ops_s);
            const double dt = p.t_s - previous;
            failed.points.emplace_back(p.t_s, dt > 0 ? static_cast<double>(p.failed) / dt : 0.0);
            any_failed = any_failed || p.failed > 0;
            previous = p.t_s;
        }
        tp.series.push_back(std::move(ok));
        if (any_failed) tp.series.push_back(std::move(failed));
        o += chart::line_chart(tp);

        chart::LineChart acquire{"chart-acquire-latency", "Acquire latency per interval (lease in hand)",
                                 chart::Format::micros, true, t_max, {}, bands};
        acquire.series.push_back(latency_series(r, "p50", blue, &TimelinePoint::acquire_p50_us));
        acquire.series.push_back(latency_series(r, "p99", purple, &TimelinePoint::acquire_p99_us));
        o += chart::line_chart(acquire);

        chart::LineChart op{"chart-op-latency", "Operation latency per interval (acquire, statement, release)",
                            chart::Format::micros, true, t_max, {}, bands};
        op.series.push_back(latency_series(r, "p50", blue, &TimelinePoint::p50_us));
        op.series.push_back(latency_series(r, "p99", purple, &TimelinePoint::p99_us));
        o += chart::line_chart(op);

        chart::LineChart occupancy{"chart-occupancy", "Pool occupancy (connections; threads waiting)",
                                   chart::Format::number, false, t_max, {}, bands};
        chart::Series active{"active", green, {}, false}, idle{"idle", amber, {}, false},
            waiting{"waiting threads", red, {}, false};
        for (const auto& p : r.timeline) {
            active.points.emplace_back(p.t_s, static_cast<double>(p.active));
            idle.points.emplace_back(p.t_s, static_cast<double>(p.idle));
            waiting.points.emplace_back(p.t_s, static_cast<double>(p.waiting));
        }
        occupancy.series.push_back(std::move(active));
        occupancy.series.push_back(std::move(idle));
        occupancy.series.push_back(std::move(waiting));
        if (r.pool.max_size > 0) {
            const auto max = static_cast<double>(r.pool.max_size);
            occupancy.series.push_back(chart::Series{"pool max", grey, {{0.0, max}, {t_max, max}}, true});
        }
        o += chart::line_chart(occupancy);
    }

    chart::HistogramChart histogram{"chart-latency-histogram", "Latency distribution (operations per bin)", {}};
    if (!r.latency_histogram_us.acquire.empty()) {
        histogram.sets.push_back(chart::Distribution{"acquire", pink, r.latency_histogram_us.acquire});
    }
    if (!r.latency_histogram_us.op.empty()) {
        histogram.sets.push_back(chart::Distribution{"operation", blue, r.latency_histogram_us.op});
    }
    o += chart::histogram_chart(histogram);
    return o;
}

}  // namespace poolbench::cli
