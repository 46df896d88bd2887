// run_command.cpp — the shared tail of stress, soak, leak and run (run_command.hpp).
#include "run_command.hpp"

namespace poolbench::cli {

ExitCode run_and_report(const ScenarioSpec& spec, const DbUrl& db, ScenarioRunOptions options,
                        const RunCommand& command) {
    check_scenario(spec, db, options);
    MetricsEndpoint metrics(command.metrics);  // binds before the database is touched: a port in use is exit 2
    options.observer = metrics.observer();
    std::shared_ptr<Driver> driver = open_driver(db);

    ProgressLine progress(command.common);
    if (command.ops_target && spec.phases.front().ops) progress.set_ops_target(*spec.phases.front().ops);
    const RunHooks hooks = command_hooks(progress);
    Report report = run_scenario(spec, db, driver, options, hooks);
    if (command.after) command.after(report, *driver, hooks);
    progress.finish();
    const bool interrupted = report.interrupted;
    const ExitCode code = emit_report(std::move(report), command.common);
    metrics.finish(interrupted);
    return code;
}

}  // namespace poolbench::cli
