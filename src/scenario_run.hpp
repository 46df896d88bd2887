// scenario_run.hpp — the scenario engine's one run, inside (scenario_runner.hpp is its
// face). One class, its jobs in files named for them:
//
//   scenario_runner.cpp   the run: preflight, one pool (or a Topology), the phases in order with their
//                         fault clocks, abort_on_fail
//   scenario_report.cpp   the report: header, phase and fault records, drift, writes
//                         verification, notes
//   scenario_verdict.cpp  the built-in checks and the scenario's expectations, evaluated
//                         on the finished report
//   scenario_check.cpp    what is checked before anything runs, and the rules the others
//                         share (sampling, default tables, write ratios)
//
// Thread-safety: a ScenarioRun is used by the thread that calls run_scenario; run_phase
// starts and joins the phase's threads.
#pragma once

#include "fault_clock.hpp"
#include "faults.hpp"
#include "report.hpp"
#include "runner.hpp"
#include "scenario.hpp"
#include "scenario_runner.hpp"
#include "topology.hpp"
#include "workload.hpp"

#include <poolbench/url.hpp>
#include <poolbench/writer_gate.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace poolbench::cli::scenario_detail {

using Clock = std::chrono::steady_clock;

[[nodiscard]] inline double seconds(std::chrono::milliseconds d) { return std::chrono::duration<double>(d).count(); }
[[nodiscard]] inline double seconds_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

/// The table a *.lock_table fault locks when it names none: the phase's workload table.
[[nodiscard]] std::string default_table(const PhaseSpec& p);
/// The fraction of a phase's operations that write.
[[nodiscard]] double write_ratio(const PhaseSpec& p);
/// Whether any phase writes (the report then verifies the writes).
[[nodiscard]] bool any_writes(const ScenarioSpec& spec);
/// "fault 1 (leak) in phase load": an expectation's scope.
[[nodiscard]] std::string fault_scope(const FaultRecord& f);
/// The sampling rule: 100 ms in a phase with faults (recovery needs it) or one bounded by
/// operations; otherwise at least 20 points, at most 1 s apart.
[[nodiscard]] std::chrono::milliseconds sample_interval(const PhaseSpec& p);

/// One phase's part of the run, kept for the report.
struct PhaseOutcome {
    LoadResult load;
    double started_s = 0;       // since the run started: the phase (its faults at 0 start first)
    double load_started_s = 0;  // ... its load, which the timeline and the load's figures count from
    double ended_s = 0;         // ... the phase's end, its faults reverted
    std::vector<FaultRun> faults;
    /// A phase without faults still times its outage (first failure to steady success),
    /// so a plain stress run reports it beside its failure counts.
    std::unique_ptr<OutageProbe> probe = std::make_unique<OutageProbe>();
    std::unique_ptr<std::atomic<OutageProbe*>> probe_slot;
    std::uint64_t open_fds = 0, rss_bytes = 0, pool_connections = 0;
};

class ScenarioRun {
public:
    ScenarioRun(const ScenarioSpec& spec, const DbUrl& db, std::shared_ptr<Driver> driver,
                const ScenarioRunOptions& options, const RunHooks& hooks);
    [[nodiscard]] Report run();

private:
    // scenario_runner.cpp
    void preflight();
    void check_headroom(Connection& conn);
    PhaseOutcome run_phase(std::size_t index, Pool& pool, FaultTargets& targets, Report& report);
    void check_abort(const ProgressSample& s, double phase_started_s, std::atomic<bool>& stop_phase, Report& report);

    // scenario_report.cpp
    [[nodiscard]] Report header() const;
    void assemble(Report& report);
    void verify_writes(Report& report);
    [[nodiscard]] std::optional<DriftSection> drift() const;
    [[nodiscard]] PhaseRecord phase_record(std::size_t index) const;
    [[nodiscard]] FaultRecord fault_record(const PhaseSpec& p, std::size_t k, const PhaseOutcome& o) const;
    void merge_errors(Report& report, const LoadResult& r) const;
    [[nodiscard]] std::string cli_advice(std::string message) const;
    [[nodiscard]] std::string redact(std::string_view text) const;
    static void journal_notes(Report& report, const std::optional<std::string>& before,
                              const std::optional<std::string>& after);

    // scenario_verdict.cpp
    void evaluate(Report& report) const;

    const ScenarioSpec& spec_;
    const DbUrl& db_;
    std::shared_ptr<Driver> driver_;
    const ScenarioRunOptions& options_;
    const RunHooks& hooks_;
    std::vector<std::string> secrets_;
    std::string run_id_;
    std::vector<Workload> workloads_;
    std::string headroom_note_;
    WriterGate gate_{"poolbench-writers"};  // one per database file, shared by every phase
    std::vector<PhaseOutcome> outcomes_;
    std::unique_ptr<Topology> topology_;  // several pools (replicas, shards); null: one database
    Clock::time_point run_start_;
    std::atomic<bool> stop_{false};
    std::uint64_t done_ok_ = 0, done_failed_ = 0, done_timed_out_ = 0;
    std::uint64_t writes_acknowledged_ = 0;
    bool limit_violated_ = false;
};

}  // namespace poolbench::cli::scenario_detail
