// rotation_times.hpp — how long a primary/replica router took to react to a fault on one
// replica, read afterwards from its per-node state history (NodeStats::history, both
// clocks), not sampled: failover_ms is from when the fault began to take effect (its
// command's start) to the replica's first change out of rotation; rejoin_ms from the
// fault's end (the start command returned) to its first change back into rotation after
// that.
//
// Thread-safety: a pure function.
#pragma once

#include <poolbench/router.hpp>

#include <chrono>
#include <optional>
#include <vector>

namespace poolbench::cli {

/// How long the router took to react to a fault on one replica.
struct RotationTimes {
    std::optional<double> failover_ms;  ///< fault start -> first change out of rotation (none: never left)
    std::optional<double> rejoin_ms;    ///< fault end -> first change back in after that (none: not back)
};

/// From a replica's state history: `started` is when the fault began to take effect, `ended`
/// when it was reverted (none: still in effect, or it has no end). A replica already out of
/// rotation when the fault started has failover_ms 0. A replica in rotation again when the
/// fault ended (the router noticed the started server before the command returned) has
/// rejoin_ms 0; a return during the fault that was followed by another leave is not one.
[[nodiscard]] RotationTimes rotation_times(const std::vector<RotationEvent>& history,
                                           std::chrono::steady_clock::time_point started,
                                           std::optional<std::chrono::steady_clock::time_point> ended);

}  // namespace poolbench::cli
