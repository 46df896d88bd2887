// run_metrics.hpp — a run's live figures for the /metrics endpoint: the pools' series
// (poolbench/prometheus.hpp; one pool="NAME" per node of a multi-node run: primary,
// replica-1.., shard-0..) and the run's own, fed by the scenario engine as a
// RunObserver (its sampler and fault clock, never the workers).
//
// The run's series, each labelled scenario="NAME" (stress, soak and leak are named for
// their command):
//   poolbench_run_operations_total{result=ok|failed|timed_out|statement_timeouts}  counter
//       the report's ops figures; live from the sampler (one sample interval old), exact
//       at each phase's end
//   poolbench_run_phase{phase=NAME}                 gauge  1 for the phase running, 0 for the others
//   poolbench_run_fault_active{phase,fault,kind}     gauge  1 while the fault is in effect (fault
//                                                    counts from 1 in its phase; absent when the run has none)
//   poolbench_run_finished                           gauge  1 once the run is over and every figure final
//
// Thread-safety: every member may be called from any thread; one mutex guards the state.
// render() calls Pool::stats() under it, so pool_closed() waits for a scrape in progress
// and a pool is never read after it is gone.
#pragma once

#include "run_observer.hpp"

#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace poolbench::cli {

class RunMetrics final : public RunObserver {
public:
    RunMetrics() = default;

    void run_started(const ScenarioSpec& spec) override;
    void pool_opened(const Pool& pool) override;
    void phase_started(std::size_t index) override;
    void phase_sample(const ProgressSample& sample) override;
    void phase_ended(const OpCounts& ops) override;
    void fault_changed(std::size_t phase, std::size_t fault, bool active) override;
    void pool_closed(const Pool& pool, const PoolStats& final_stats) override;

    /// The command is over (its report written): the figures are final.
    void finish();
    /// The exposition, text format 0.0.4.
    [[nodiscard]] std::string render() const;

private:
    struct Fault {
        std::string phase, kind;
        std::size_t phase_index = 0, number = 0;
        bool active = false;
    };

    mutable std::mutex mu_;
    std::string scenario_;
    struct PoolEntry {
        std::string name;
        const Pool* pool = nullptr;             ///< while it lives
        std::optional<PoolStats> final_stats;  ///< once it is gone
    };
    std::vector<PoolEntry> pools_;  ///< in the order opened; the series' pool label is each name
    std::vector<std::string> phases_;
    std::optional<std::size_t> phase_;      ///< the phase running
    std::vector<Fault> faults_;
    OpCounts done_;     ///< phases that ended, exact
    OpCounts current_;  ///< the phase running, at its last sample
    bool finished_ = false;
};

}  // namespace poolbench::cli
