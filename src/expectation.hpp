// expectation.hpp — expectations written as strings on report paths, as k6 writes
// thresholds ("p(95)<500"), but on any number of the JSON report:
//
//   "writes.lost == 0"   "latency_us.op.p99 < 50ms"   "recovery_ms < 1.5s"   "ops.failed <= 20"
//
// Grammar: PATH OP VALUE[UNIT]. PATH is dot-separated keys of the report (an array element
// by its index: timeline.0.ops_s). OP is one of < <= > >= == !=. UNIT converts VALUE into
// the path's own unit, read from its name: a key ending in _us is microseconds, _ms
// milliseconds, _s seconds (but _ops_s is a rate); units are us (or µs), ms, s, m, h.
// A path without a time unit takes a plain number. A figure that got no samples (a
// latency with count 0, a recovery that never came: null) fails; it is never skipped.
//
// Thread-safety: free functions on values; reentrant.
#pragma once

#include "report.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace poolbench::cli {

struct ParsedExpectation {
    std::string text;  ///< as written, trimmed
    std::string path;
    std::string op;
    double value = 0;  ///< in the path's unit
};

/// Parses `text`; on error returns nullopt and sets `error` to what was expected.
[[nodiscard]] std::optional<ParsedExpectation> parse_expectation(std::string_view text, std::string& error);

/// "" when `path` exists in `report` (a skeleton report of the same shape), else why not.
[[nodiscard]] std::string check_expectation_path(const ParsedExpectation& e, const nlohmann::ordered_json& report);

/// Evaluates `e` against `scope` (the report, a phase or a fault record).
[[nodiscard]] Expectation evaluate_expectation(const ParsedExpectation& e, const nlohmann::ordered_json& scope,
                                               std::string scope_name);

}  // namespace poolbench::cli
