// report_read.hpp — reading a JSON report back (`poolbench merge`): the checks that make
// a file mergeable, and a latency entry's buckets back into the library's Histogram.
//
// Thread-safety: free functions on values; reentrant.
#pragma once

#include "cli.hpp"

#include <poolbench/histogram.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace poolbench::cli {

/// Reads `path` and checks that it is a complete "poolbench/report@1" report written by a
/// version that records histogram buckets and the load's wall-clock span. Throws
/// UsageFailure (exit 2) with one line naming the file, what is wrong and what to do.
[[nodiscard]] nlohmann::ordered_json read_report_for_merge(const std::string& path);

/// The histogram (ns) behind a latency entry {count, mean, min, max, buckets: [[upper_us,
/// count], ...]} as latency_json writes it: the same buckets, counts, min and max, and the
/// sum from mean x count (exact to 0.5 ns per value). Throws UsageFailure naming `where`
/// when the entry is malformed (a bound that is no bucket's, counts that do not add up).
[[nodiscard]] Histogram histogram_from_json(const nlohmann::ordered_json& entry, const std::string& where);

/// The report's `pools` (several pools: replicas, shards) read back, in the file's order:
/// every field but the per-node `pool` section (which `poolbench merge` sums from the JSON
/// itself). Empty when the report has none.
[[nodiscard]] std::vector<NodeRecord> pools_from_json(const nlohmann::ordered_json& report);
/// The report's `router` read back; none when it has none.
[[nodiscard]] std::optional<RouterSection> router_from_json(const nlohmann::ordered_json& report);
}  // namespace poolbench::cli
