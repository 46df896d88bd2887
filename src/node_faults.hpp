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
// The router's reaction to them is measured afterwards (rotation_times.hpp).
//
// Thread-safety: as faults.hpp (an ActiveFault belongs to the fault clock's thread).
#pragma once

#include "faults.hpp"
#include "scenario.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

namespace poolbench::cli {

/// Starts a replica.stop or replica.promote fault. Throws FaultFailure (no such node, no
/// command, the command failed, pg_promote refused).
[[nodiscard]] std::unique_ptr<ActiveFault> start_node_fault(const FaultSpec& spec, FaultTargets& targets);


}  // namespace poolbench::cli
