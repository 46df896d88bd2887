// node_faults.hpp — the faults that act on one node of a primary/replica run, and how
// long the router took to react to them.
//
//   replica.stop      --replica-stop-command stops the replica when the fault starts,
//                     --replica-start-command starts it again when it ends ('for')
//   replica.promote   the standby is promoted: SELECT pg_promote(true, timeout) on a side
//                     connection to it, or --promote-command; over when that returns
//
// Each command runs under /bin/sh with POOLBENCH_NODE (the node's name), POOLBENCH_NODE_HOST
// and POOLBENCH_NODE_PORT in its environment, bounded by the fault's timeout. poolbench does
// not stop or start servers itself: the command is the user's (pg_ctl, systemctl, docker
// stop, kubectl scale), as Toxiproxy leaves the server alone and acts on what lies between.
//
// The router's reaction is read afterwards from its per-node state history
// (NodeStats::history, both clocks), not sampled: failover_ms is from when the fault began
// to take effect (its command's start) to the replica's first change out of rotation;
// rejoin_ms from the fault's end (the start command returned) to its first change back
// into rotation after that. See rotation_times.
//
// Thread-safety: as faults.hpp (an ActiveFault belongs to the fault clock's thread);
// rotation_times is a pure function.
#pragma once

#include "faults.hpp"
#include "scenario.hpp"

#include <poolbench/router.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

namespace poolbench::cli {

/// Starts a replica.stop or replica.promote fault. Throws FaultFailure (no such node, no
/// command, the command failed, pg_promote refused).
[[nodiscard]] std::unique_ptr<ActiveFault> start_node_fault(const FaultSpec& spec, FaultTargets& targets);

/// The node a replica fault acts on: 'node', or "replica-1" when it names none.
[[nodiscard]] std::string replica_fault_node(const FaultSpec& spec);

/// How long the router took to react to a fault on one replica.
struct RotationTimes {
    std::optional<double> failover_ms;  ///< fault start -> first change out of rotation (none: never left)
    std::optional<double> rejoin_ms;    ///< fault end -> first change back in after that (none: not back)
};

/// From a replica's state history: `started` is when the fault began to take effect, `ended`
/// when it was reverted (none: still in effect, or it has no end). A replica already out of
/// rotation when the fault started has failover_ms 0. A return seen before `ended` (the
/// router noticed the start command's server before the command returned) counts as 0.
[[nodiscard]] RotationTimes rotation_times(const std::vector<RotationEvent>& history,
                                           std::chrono::steady_clock::time_point started,
                                           std::optional<std::chrono::steady_clock::time_point> ended);

}  // namespace poolbench::cli
