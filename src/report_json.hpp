// report_json.hpp — the report as a JSON value ("poolbench/report@1"), for the JSON
// renderer and for expectations, which are evaluated on the very paths the JSON has.
//
// Thread-safety: a pure function of its argument.
#pragma once

#include "report.hpp"

#include <nlohmann/json.hpp>

namespace poolbench::cli {

[[nodiscard]] nlohmann::ordered_json report_to_json(const Report& report);
/// One latency entry: {count, mean, p50, p90, p99, p999, max, min, buckets}.
[[nodiscard]] nlohmann::ordered_json latency_json(const LatencySummary& summary);

}  // namespace poolbench::cli
