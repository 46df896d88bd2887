// run_command.hpp — what every scenario-running command (stress, soak, leak, run) does once
// its flags have become a ScenarioSpec: check it, bind the metrics endpoint, open the
// database, run with a progress line, write the reports, linger for a scraper.
//
// Thread-safety: called from the main thread only.
#pragma once

#include "cli.hpp"
#include "metrics_endpoint.hpp"
#include "scenario_runner.hpp"

#include <functional>

namespace poolbench::cli {

struct RunCommand {
    const CommonOptions& common;
    const MetricsOptions& metrics;
    /// Show an --ops run's progress against its total (one-phase commands).
    bool ops_target = false;
    /// After the scenario, before the reports (stress --baseline); may add to the report.
    std::function<void(Report&, Driver&, const RunHooks&)> after;
};

/// check_scenario (exit 2 before anything runs), then the metrics endpoint (it binds
/// before the database is touched: a port in use is exit 2), then the run and its reports.
[[nodiscard]] ExitCode run_and_report(const ScenarioSpec& spec, const DbUrl& db, ScenarioRunOptions options,
                                      const RunCommand& command);

}  // namespace poolbench::cli
