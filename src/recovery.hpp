// recovery.hpp — how long a phase took to get back to its level after a fault, read off
// its fine-grained timeline (scenario_runner.hpp states the rule in every report).
//
// Thread-safety: a pure function.
#pragma once

#include "report.hpp"

#include <optional>
#include <string>
#include <vector>

namespace poolbench::cli {

struct Recovery {
    /// Fault end → the start of the first interval back at 90% of the level with no failure,
    /// from which recovery_successes operations in a row succeeded; none: not within the phase.
    std::optional<double> recovery_ms;
    std::string basis;                  ///< "before" or "after" (no full interval before the fault)
    double level_ops_s = 0;
    /// The longest stretch of intervals that completed no operation, from the fault's start
    /// to its recovery: operations that block (a lock) rather than fail show here.
    double stalled_ms = 0;
    std::uint64_t failed = 0;           ///< failed operations from the fault's start to its recovery
    ErrorCounts errors_by_class{};      ///< ... by class
};

/// Successful operations in a row (no failure among them) that confirm a recovery.
inline constexpr double recovery_successes = 20;
/// The share of the level that counts as recovered.
inline constexpr double recovery_share = 0.9;

/// `timeline` holds a phase's points (t_s = end of each interval since the phase
/// started), `interval_errors` the failures in each; the fault ran from `start_s` to
/// `end_s` (seconds since the phase started).
[[nodiscard]] Recovery measure_recovery(const std::vector<TimelinePoint>& timeline,
                                        const std::vector<ErrorCounts>& interval_errors, double start_s, double end_s);

}  // namespace poolbench::cli
