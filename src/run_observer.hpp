// run_observer.hpp — what the scenario engine tells an observer while a run goes on: its
// pools (one, or one per node of a multi-node run), each phase's start, its timeline samples and exact end, each fault taking effect
// and being reverted. The live /metrics endpoint (run_metrics.hpp) is one observer; the
// engine knows nothing of what it does with them. Nothing here is called from a worker's
// per-operation path.
//
// Thread-safety: an observer must take calls from several threads: the run's main thread
// (run_started, pool_opened, phase_started, phase_ended, pool_closed, and faults started
// or reverted with the phase), the sampler thread (phase_sample) and the fault clock
// thread (fault_changed). The engine never calls it while holding a pool lock.
#pragma once

#include "report.hpp"
#include "runner.hpp"
#include "scenario.hpp"

#include <poolbench/pool.hpp>
#include <poolbench/stats.hpp>

#include <cstddef>

namespace poolbench::cli {

class RunObserver {
public:
    RunObserver() = default;
    RunObserver(const RunObserver&) = delete;
    RunObserver& operator=(const RunObserver&) = delete;
    virtual ~RunObserver() = default;

    /// The run begins: its phases and their faults, as they will run.
    virtual void run_started(const ScenarioSpec& spec) = 0;
    /// One of the run's pools exists (a multi-node run has one per node, named for it by
    /// its config().name); it stays valid until pool_closed for it.
    virtual void pool_opened(const Pool& pool) = 0;
    /// Phase `index` starts (before its faults at 0).
    virtual void phase_started(std::size_t index) = 0;
    /// A timeline sample of the phase running: its cumulative counts so far.
    virtual void phase_sample(const ProgressSample& sample) = 0;
    /// The phase is over: its exact counts (each at least the last sample's).
    virtual void phase_ended(const OpCounts& ops) = 0;
    /// Fault `fault` (0-based) of phase `phase` took effect (true) or was reverted (false).
    virtual void fault_changed(std::size_t phase, std::size_t fault, bool active) = 0;
    /// `pool` has shut down: its last statistics, the ones the report holds. The pool is
    /// destroyed after this call and must not be read again.
    virtual void pool_closed(const Pool& pool, const PoolStats& final_stats) = 0;
};

}  // namespace poolbench::cli
