// report_merge_detail.hpp — what report_merge.cpp and report_merge_parts.cpp share.
// Internal to `poolbench merge`. Thread-safety: free functions on values; reentrant.
#pragma once

#include "cli.hpp"
#include "report_merge.hpp"

#include <optional>

namespace poolbench::cli::merge_detail {

using Json = nlohmann::ordered_json;

/// The member `key` of `j`, or a null value.
[[nodiscard]] const Json& at(const Json& j, const char* key);
[[nodiscard]] double num(const Json& j, const char* key, double fallback = 0);
[[nodiscard]] std::uint64_t u64(const Json& j, const char* key);
[[nodiscard]] std::string str(const Json& j, const char* key);
[[nodiscard]] std::optional<double> opt(const Json& j, const char* key);

[[nodiscard]] OpCounts read_ops(const Json& ops);
void add_ops(OpCounts& to, const OpCounts& ops);
void add_error_counts(ErrorCounts& to, const Json& errors_by_class);
/// Each of acquire, query, op, failed: the sum of the entries' histograms, summarised.
/// With `histograms`, also the summed acquire and op histograms (for latency_histogram_us).
[[nodiscard]] LatencySet merge_latency_sets(const std::vector<const Json*>& sets, const std::vector<std::string>& where,
                                            std::pair<Histogram, Histogram>* histograms = nullptr);
[[nodiscard]] std::chrono::system_clock::time_point from_unix_ms(double ms);

[[nodiscard]] std::vector<TimelinePoint> read_timeline(const Json& timeline);
/// Phases (and their faults) matched by position, when every agent ran the same ones;
/// else a note says they are left out.
void merge_phases(Report& r, const std::vector<MergeInput>& in, const std::vector<double>& offsets_s);
/// The agents' expectations, and `extra`, judged on the merged report.
void merge_expectations(Report& r, const std::vector<MergeInput>& in, const std::vector<std::string>& extra);

}  // namespace poolbench::cli::merge_detail
