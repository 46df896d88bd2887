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
/// How a row's values read for a person (the JSON keeps raw numbers).
enum class CompareUnit { plain, rate, micros, count, percent };

struct CompareRow {
    std::string name;
    std::optional<double> base, now;
    std::string limit;  ///< empty: shown, not judged
    bool regressed = false;
    int decimals = 0;   ///< for plain and percent
    CompareUnit unit = CompareUnit::plain;
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

/// A row's value for a person, by its unit: "1.77 M ops/s", "812.0 µs", "27,890", "0.125%",
/// or with its decimals; "-" when absent.
[[nodiscard]] std::string compare_value(const std::optional<double>& v, const CompareRow& row);
/// The row's name for a table whose values carry their unit: "op latency p99", not
/// "op latency p99 (us)" beside "81 ns". (JSON and JUnit keep the name as it is.)
[[nodiscard]] std::string compare_label(const CompareRow& row);
/// NEW against BASE in percent; none when either is absent or BASE is 0.
[[nodiscard]] std::optional<double> compare_change_pct(const CompareRow& row);

/// JUnit XML: one test case per judged row (classname poolbench.compare), the text report
/// in <system-out>.
[[nodiscard]] std::string render_compare_junit(const CompareResult& result, const std::string& text);
/// The HTML page.
[[nodiscard]] std::string render_compare_html(const CompareResult& result);

}  // namespace poolbench::cli
