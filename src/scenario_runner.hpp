// scenario_runner.hpp — the scenario engine: one pool for the whole run, the phases in
// order through run_load, each phase's faults on a fault clock, recovery and outage
// measured from the fine-grained timeline, one report, expectations evaluated on it.
// stress, soak and leak are scenarios built from their flags; run loads one from TOML.
// Inside: scenario_run.hpp (one run class, its jobs in scenario_{runner,report,verdict,
// check}.cpp).
//
// Thread-safety: check_scenario and run_scenario are called from the main thread;
// run_scenario starts and joins its own threads (workers, sampler, fault clock).
#pragma once

#include "faults.hpp"
#include "report.hpp"
#include "runner.hpp"
#include "scenario.hpp"

#include <poolbench/connection.hpp>
#include <poolbench/url.hpp>

#include <memory>
#include <string>

namespace poolbench::cli {

class RunObserver;

struct ScenarioRunOptions {
    std::string restart_command;  ///< --restart-command ("" = none)
    std::string self_exe;         ///< this binary (sqlite.lock starts its lock holder from it)
    /// The command the report names: "run" (the scenario is named), or "stress" / "soak" /
    /// "leak", whose phases are built from their flags (built-in expectations then carry
    /// no phase scope, as they always did; the first phase's settings are the run's; leak's
    /// one leak fault's check is the report's leak_check).
    std::string command = "run";
    /// Told of the pool, the phases, samples and faults as the run goes on (the live
    /// /metrics endpoint); null: none. It must outlive run_scenario.
    RunObserver* observer = nullptr;
    /// `run --check`: the file alone is checked; what the run's flags will add (replicas,
    /// commands) is not required yet.
    bool file_only = false;
    NodeCommands node_commands{};  ///< --replica-stop-command, --replica-start-command, --promote-command
};

/// Everything that can be checked before anything runs, against the database chosen:
/// the backend is one the scenario allows, each fault can run on it (and has what it
/// needs: --restart-command, a table to lock, leak tracking), every expectation names a
/// path the report will have. Throws UsageFailure naming the file:line:column.
void check_scenario(const ScenarioSpec& spec, const DbUrl& db, const ScenarioRunOptions& options);

/// Runs the scenario. `hooks.on_sample` sees every timeline point (progress line);
/// `hooks.cancel` is the interrupt flag. Throws DatabaseUnusable when the preflight
/// connection or the workload setup fails.
[[nodiscard]] Report run_scenario(const ScenarioSpec& spec, const DbUrl& db, std::shared_ptr<Driver> driver,
                                  const ScenarioRunOptions& options, const RunHooks& hooks);

/// The stall rule (check_stalls): full sample intervals that should hold at least two
/// operations (at the target rate, or unpaced at the phase's average) and completed none.
/// Returns when each stalled interval ended (t_s).
[[nodiscard]] std::vector<double> stalled_intervals(const std::vector<TimelinePoint>& timeline, double interval_s,
                                                   double expected_ops_s);

/// The rule recovery_ms follows, as the report states it.
inline constexpr const char* recovery_rule =
    "recovery_ms: from the fault's end to the start of the first 100 ms interval that reaches 90% of the phase's "
    "throughput before the fault (after it, for a fault at 0) with no failed operation, from which 20 operations in "
    "a row succeed; outage_ms: from the first failed operation after the fault started to the first success "
    "that began after it";

}  // namespace poolbench::cli
