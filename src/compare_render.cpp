// compare_render.cpp — compare's JUnit XML and HTML page (see compare_render.hpp).
#include "compare_render.hpp"

#include "html_chart.hpp"
#include "human.hpp"
#include "markup.hpp"
#include "report.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <iterator>
#include <limits>

namespace poolbench::cli {

namespace {

using Json = nlohmann::json;

std::string esc(std::string_view text) { return markup_escape(text); }

constexpr const char* base_colour = "#6e7781";  // BASE in grey, NEW in blue: the new run stands out
constexpr const char* new_colour = "#0969da";

/// The row's verdict in words: "REGRESSED (limit -10%)", "ok (limit -10%)", "not judged".
std::string verdict_of(const CompareRow& r) {
    if (r.limit.empty()) return "not judged";
    return fmt::format("{} (limit {})", r.regressed ? "REGRESSED" : "ok", r.limit);
}

std::string change_text(const CompareRow& r) {
    const auto c = compare_change_pct(r);
    return c ? human_change_pct(*c) : "-";
}

/// A number at `pointer` in `j`, or NaN.
double number(const Json& j, const char* key) {
    return j.contains(key) && j.at(key).is_number() ? j.at(key).get<double>() : std::numeric_limits<double>::quiet_NaN();
}

/// A report's timeline as (t_s, field) points; empty when it has none.
std::vector<std::pair<double, double>> timeline_of(const Json* report, const char* field, bool zero_is_gap) {
    std::vector<std::pair<double, double>> out;
    if (report == nullptr || !report->contains("timeline") || !report->at("timeline").is_array()) return out;
    for (const auto& p : report->at("timeline")) {
        if (!p.is_object()) continue;
        const double t = number(p, "t_s"), v = number(p, field);
        if (!std::isfinite(t)) continue;
        out.emplace_back(t, zero_is_gap && !(v > 0) ? std::numeric_limits<double>::quiet_NaN() : v);
    }
    return out;
}

/// A report's op latency histogram; empty when it has none (a report from before it existed).
std::vector<HistogramBin> histogram_of(const Json* report) {
    std::vector<HistogramBin> out;
    if (report == nullptr) return out;
    const Json::json_pointer p("/latency_histogram_us/op");
    if (!report->contains(p) || !report->at(p).is_array()) return out;
    for (const auto& b : report->at(p)) {
        if (!b.is_object()) continue;
        const double lo = number(b, "lo_us"), hi = number(b, "hi_us"), n = number(b, "count");
        if (!std::isfinite(lo) || !std::isfinite(hi) || !(n >= 0) || !(hi > lo)) continue;
        out.push_back(HistogramBin{lo, hi, static_cast<std::uint64_t>(n)});
    }
    return out;
}

}  // namespace

std::string compare_value(const std::optional<double>& v, const CompareRow& row) {
    if (!v) return "-";
    switch (row.unit) {
        case CompareUnit::rate: return human_rate(*v);
        case CompareUnit::micros: return human_us(*v);
        case CompareUnit::count: return human_count(*v);
        case CompareUnit::percent: return fmt::format("{:.{}f}%", *v, row.decimals);
        case CompareUnit::plain: break;
    }
    if (std::fabs(*v) >= 1e12) return human_count(*v);
    return fmt::format("{:.{}f}", *v, row.decimals);
}

std::string compare_label(const CompareRow& row) {
    if (row.unit != CompareUnit::rate && row.unit != CompareUnit::micros) return row.name;
    const auto open = row.name.rfind(" (");
    return open == std::string::npos ? row.name : row.name.substr(0, open);
}

std::optional<double> compare_change_pct(const CompareRow& r) {
    if (!r.base || !r.now || *r.base == 0) return std::nullopt;
    return (*r.now - *r.base) / *r.base * 100.0;
}

std::string render_compare_junit(const CompareResult& c, const std::string& text) {
    std::size_t tests = 0;
    for (const auto& r : c.rows) tests += r.limit.empty() ? 0 : 1;
    std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out += fmt::format("<testsuites name=\"poolbench\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"0\">\n", tests,
                       c.regressions);
    out += fmt::format(
        "  <testsuite name=\"poolbench compare\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"0\" "
        "timestamp=\"{}\">\n    <properties>\n      <property name=\"base\" value=\"{}\"/>\n      <property "
        "name=\"new\" value=\"{}\"/>\n",
        tests, c.regressions, esc(format_utc(std::chrono::system_clock::now())), esc(c.base_path), esc(c.new_path));
    for (const auto& d : c.differences) out += fmt::format("      <property name=\"difference\" value=\"{}\"/>\n", esc(d));
    out += "    </properties>\n";
    for (const auto& r : c.rows) {
        if (r.limit.empty()) continue;  // shown, not judged: nothing a test case could fail on
        out += fmt::format("    <testcase classname=\"poolbench.compare\" name=\"{}\" time=\"0\"", esc(r.name));
        if (!r.regressed) {
            out += "/>\n";
            continue;
        }
        const std::string message = fmt::format("regressed: base {}, new {} ({}; limit {})", compare_value(r.base, r),
                                                compare_value(r.now, r), change_text(r), r.limit);
        out += fmt::format(">\n      <failure type=\"regression\" message=\"{}\">{}</failure>\n    </testcase>\n",
                           esc(message), esc(message));
    }
    out += fmt::format("    <system-out>{}</system-out>\n", esc(text));
    out += "  </testsuite>\n</testsuites>\n";
    return out;
}

std::string render_compare_html(const CompareResult& c) {
    const bool pass = c.regressions == 0;
    std::string o;
    auto it = std::back_inserter(o);
    fmt::format_to(it,
                   "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
                   "content=\"width=device-width,initial-scale=1\"><title>poolbench compare — {}</title>\n<style>{}"
                   "td.regressed{{background:#ffebe9;color:#cf222e;font-weight:600}}td.ok{{color:#1a7f37}}"
                   "td.quiet{{color:#59636e}}</style></head><body><main>\n",
                   pass ? "PASS" : "FAIL", report_page_style());
    fmt::format_to(it, "<h1>poolbench compare — <span class=\"{}\">{}</span></h1>\n", pass ? "pass" : "fail",
                   pass ? "PASS" : "FAIL");
    fmt::format_to(it, "<p class=\"meta\">BASE <code>{}</code> → NEW <code>{}</code> · {}</p>\n", esc(c.base_path),
                   esc(c.new_path),
                   pass ? "no regression"
                        : fmt::format("{} regression{}", c.regressions, c.regressions == 1 ? "" : "s"));
    for (const auto& d : c.differences) fmt::format_to(it, "<p class=\"note\">note: the runs differ: {}</p>\n", esc(d));
    o += "<table><tr><th>metric</th><th>base</th><th>new</th><th>change</th><th>verdict</th></tr>\n";
    for (const auto& r : c.rows) {
        const char* cls = r.limit.empty() ? "quiet" : r.regressed ? "regressed" : "ok";
        fmt::format_to(it, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>\n",
                       esc(compare_label(r)), compare_value(r.base, r), compare_value(r.now, r),
                       change_text(r), cls, esc(verdict_of(r)));
    }
    o += "</table>\n";

    // BASE and NEW overlaid, where the reports carry the data.
    const auto base_tp = timeline_of(c.base, "ops_s", false), new_tp = timeline_of(c.now, "ops_s", false);
    double t_max = 0;
    for (const auto* points : {&base_tp, &new_tp}) {
        if (!points->empty()) t_max = std::max(t_max, points->back().first);
    }
    std::string charts;
    if (t_max > 0) {
        chart::LineChart tp{"chart-compare-throughput", "Throughput (operations per second)", chart::Format::number,
                            false, t_max, {}, {}};
        tp.series.push_back(chart::Series{"base", base_colour, base_tp, false});
        tp.series.push_back(chart::Series{"new", new_colour, new_tp, false});
        charts += chart::line_chart(tp);
        chart::LineChart p99{"chart-compare-op-p99", "Operation latency p99 per interval", chart::Format::micros, true,
                             t_max, {}, {}};
        p99.series.push_back(chart::Series{"base", base_colour, timeline_of(c.base, "p99_us", true), false});
        p99.series.push_back(chart::Series{"new", new_colour, timeline_of(c.now, "p99_us", true), false});
        charts += chart::line_chart(p99);
    }
    chart::HistogramChart h{"chart-compare-histogram", "Operation latency distribution (operations per bin)", {}};
    if (auto bins = histogram_of(c.base); !bins.empty()) h.sets.push_back(chart::Distribution{"base", base_colour, bins});
    if (auto bins = histogram_of(c.now); !bins.empty()) h.sets.push_back(chart::Distribution{"new", new_colour, bins});
    charts += chart::histogram_chart(h);
    if (!charts.empty()) {
        o += "<h2>BASE and NEW</h2>\n<p class=\"hint\">Time counts from each run's start.</p>\n" + charts;
    }
    o += "</main></body></html>\n";
    return o;
}

}  // namespace poolbench::cli
