// compare_render.hpp — `poolbench compare`'s documents beyond its text and JSON: JUnit XML
// (one test case per judged check, a <failure> for each regression) and one self-contained
// HTML page (the table, then BASE and NEW overlaid: throughput and op p99 over time and the
// op latency distribution, from the reports' timelines and histograms when they have them).
//
// Thread-safety: pure functions of their arguments; reentrant.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace poolbench::cli {

/// One compared metric.
struct CompareRow {
    std::string name;
    std::optional<double> base, now;
    std::string limit;  ///< empty: shown, not judged
    bool regressed = false;
    int decimals = 0;
};

/// Everything compare decided, for its renderers.
struct CompareResult {
    std::string base_path, new_path;
    std::vector<std::string> differences;  ///< how the runs differ (command, backend, ...)
    std::vector<CompareRow> rows;
    std::size_t regressions = 0;
    const nlohmann::json* base = nullptr;  ///< the reports themselves (timelines, histograms)
    const nlohmann::json* now = nullptr;
};

/// "12.5" for a row's value with its decimals; "-" when absent.
[[nodiscard]] std::string compare_value(const std::optional<double>& v, int decimals);
/// NEW against BASE in percent; none when either is absent or BASE is 0.
[[nodiscard]] std::optional<double> compare_change_pct(const CompareRow& row);

/// JUnit XML: one test case per judged row (classname poolbench.compare), the text report
/// in <system-out>.
[[nodiscard]] std::string render_compare_junit(const CompareResult& result, const std::string& text);
/// The HTML page.
[[nodiscard]] std::string render_compare_html(const CompareResult& result);

}  // namespace poolbench::cli
