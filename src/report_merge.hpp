// report_merge.hpp — several agents' reports of one command and scenario merged into one
// report, exactly where the figures allow it (`poolbench merge`):
//   - counts (ops, errors by class, pool counters, writes) summed;
//   - latency histograms summed bucket by bucket (Histogram::merge, as HdrHistogram's
//     add()), percentiles recomputed from the sum: the same buckets one run of all the
//     operations would have filled, so within one bucket (0.4%) of the union's;
//   - throughput = all successful operations / (latest load end - earliest load start);
//   - timelines aligned on wall-clock start and summed into common bins (see merge_timeline);
//   - phases and faults matched by position when every agent ran the same ones;
//   - expectations re-evaluated on the merged figures (see merge_expectations);
//   - a note for every setting in which the runs differ.
// Inputs come from read_report_for_merge. Refusals (exit 2) throw UsageFailure.
//
// Thread-safety: free functions on values; reentrant.
#pragma once

#include "report.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace poolbench::cli {

struct MergeInput {
    std::string path;
    nlohmann::ordered_json report;
};

/// The merged report, expectations evaluated: the agents' own (on the merged figures where
/// they name a report path, else judged per agent) and `extra_expect` (PATH OP VALUE, on
/// the merged report). Throws UsageFailure when the inputs cannot be merged (fewer than
/// one, different commands, scenarios or histogram layouts, a bad --expect).
[[nodiscard]] Report merge_reports(const std::vector<MergeInput>& inputs, const std::vector<std::string>& extra_expect);

/// One agent's timeline for merge_timeline: its points (t_s from its own start), its start
/// after the earliest agent's, and each phase's (load start, sample interval) in seconds.
struct TimelineSource {
    std::vector<TimelinePoint> points;
    double offset_s = 0;
    std::vector<std::pair<double, double>> phases;
};

/// The agents' timelines on the common clock (the earliest agent's start), summed into
/// bins of `bin_s`: each point's operations (its rate times the interval it covers: from
/// the previous point, or its phase's load start) go to the bin holding the interval's
/// midpoint; failures summed; pool gauges summed over each agent's last sample in the bin;
/// the interval percentiles (p50, p99, acquire p50, p99) the highest agent's (interval
/// histograms are not in the report, so a merged interval percentile is an upper bound). A bin ends at its boundary or its last sample; its rate
/// is over the time since the previous bin ended (the first: since the earliest load start).
[[nodiscard]] std::vector<TimelinePoint> merge_timeline(const std::vector<TimelineSource>& sources, double bin_s);

}  // namespace poolbench::cli
