// cmd_run.cpp — `poolbench run FILE|NAME`, `poolbench scenarios`, and the hidden
// `poolbench __hold-sqlite-lock` that the sqlite.lock fault starts as its other process.
#include "cli.hpp"
#include "faults.hpp"
#include "metrics_endpoint.hpp"
#include "report_files.hpp"
#include "run_command.hpp"
#include "scenario_file.hpp"
#include "scenario_runner.hpp"
#include "topology.hpp"

#include <poolbench/url.hpp>

#include "cli11.hpp"
#include <fmt/format.h>

#include <filesystem>
#include <map>

namespace poolbench::cli {

namespace {

namespace fs = std::filesystem;

struct RunOptions {
    CommonOptions common;
    TopologyOptions topology;
    MetricsOptions metrics;
    std::string scenario;
    std::vector<std::string> sets;
    std::string restart_command;
    NodeCommands node_commands;
    bool check = false;
};

std::string self_exe() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    return ec ? std::string() : exe.string();
}

std::string count_of(std::size_t n, std::string_view one, std::string_view many) {
    return fmt::format("{} {}", n, n == 1 ? one : many);
}

/// --check: the file against each backend it names (or the database given). With a
/// database on the command line (--db, --primary) it checks that invocation as the run
/// would, short of connecting: the commands its faults need, their nodes, --metrics-addr.
/// Without one, the file alone: commands and replicas come at run time.
ExitCode check_only(const ScenarioSpec& spec, const RunOptions& o, const std::string& flagged) {
    const bool invocation = !flagged.empty();
    ScenarioRunOptions options{o.restart_command.empty() && !invocation ? "(given at run time)" : o.restart_command,
                               self_exe()};
    options.file_only = !invocation;
    options.node_commands = o.node_commands;
    if (!invocation) {
        for (auto* c : {&options.node_commands.stop, &options.node_commands.start}) {
            if (c->empty()) *c = "(given at run time)";
        }
    }
    if (!o.metrics.addr.empty()) (void)parse_metrics_address(o.metrics.addr);  // UsageFailure: exit 2
    std::string db_text = !flagged.empty() ? flagged : spec.db_url;
    std::vector<DbUrl> targets;
    if (!db_text.empty()) {
        // The URLs as the run would read them, parameters too (ssl_mode=bogus exits 2 there).
        targets.push_back(parse_db_url(db_text));
        check_url_options(targets.back());
        for (const auto& url : spec.topology.replicas) check_url_options(parse_db_url(url));
        for (const auto& url : spec.topology.shard_urls) check_url_options(parse_db_url(url));
    } else {
        for (auto b : spec.backends) {
            targets.push_back(parse_db_url(b == Backend::sqlite       ? "sqlite:///tmp/poolbench-check.db"
                                           : b == Backend::postgresql ? "postgresql://check@127.0.0.1/check"
                                           : b == Backend::mariadb    ? "mariadb://check@127.0.0.1/check"
                                                                      : "null://"));
        }
    }
    for (const auto& db : targets) check_scenario(spec, db, options);
    std::size_t faults = 0, expectations = spec.expect.size();
    for (const auto& p : spec.phases) {
        faults += p.faults.size();
        expectations += p.expect.size();
        for (const auto& f : p.faults) expectations += f.expect.size();
    }
    fmt::print("{}: scenario '{}' is valid: {}, {}, {}; runs on {}\n", spec.source, spec.name,
               count_of(spec.phases.size(), "phase", "phases"), count_of(faults, "fault", "faults"),
               count_of(expectations, "expectation", "expectations"), [&] {
                   std::string out;
                   for (auto b : spec.backends) out += (out.empty() ? "" : ", ") + std::string(to_string(b));
                   return out;
               }());
    return ExitCode::ok;
}

ExitCode run_run(const RunOptions& o) {
    if (!o.check) {
        check_report_targets(o.common);
        arm_error_reports(o.common, "run", o.scenario);
    }
    std::string note;
    const fs::path path = resolve_scenario(o.scenario, note);
    if (!note.empty()) fmt::print(stderr, "poolbench: {}\n", note);
    ScenarioSpec spec = load_scenario(path, o.sets);
    // --db (or --primary), else the file's [database] url, else $POOLBENCH_DB, else a
    // temporary SQLite file; the topology flags over the file's (topology.hpp).
    const std::string flagged = apply_topology_options(o.topology, spec.topology);
    if (o.check) return check_only(spec, o, flagged);

    const DatabaseChoice choice = DatabaseChoice::resolve(!flagged.empty() ? flagged : spec.db_url);
    const DbUrl db = parse_db_url(resolve_topology(spec.topology, choice.url(), choice.temporary()));  // ConfigError: exit 2
    guard_reports_against_shards(o.common, spec.topology);
    guard_reports_against(o.common, db);
    ScenarioRunOptions options{o.restart_command, self_exe()};
    options.node_commands = o.node_commands;
    return run_and_report(spec, db, options, RunCommand{o.common, o.metrics, false, {}});
}

ExitCode list_scenarios() {
    std::map<std::string, std::pair<fs::path, ScenarioSpec>> found;
    std::vector<std::string> broken;
    std::error_code ec;
    for (const auto& dir : scenario_dirs()) {
        if (!fs::is_directory(dir, ec)) continue;
        for (const auto& entry : fs::directory_iterator(dir, ec)) {
            if (entry.path().extension() != ".toml") continue;
            const std::string name = entry.path().stem().string();
            if (found.count(name) != 0) continue;  // an earlier directory wins
            try {
                found.emplace(name, std::make_pair(entry.path(), load_scenario(entry.path(), {})));
            } catch (const UsageFailure& e) {
                broken.push_back(e.what());
            }
        }
    }
    if (found.empty() && broken.empty()) {
        throw UsageFailure("no shipped scenarios found (looked in $POOLBENCH_SCENARIOS, the install's "
                           "share/poolbench/scenarios and the source checkout)");
    }
    auto backends_of = [](const ScenarioSpec& spec) {
        std::string backends;
        for (auto b : spec.backends) backends += (backends.empty() ? "" : ",") + std::string(to_string(b));
        return backends;
    };
    std::size_t width = 4, backends_width = 8;
    for (const auto& [name, item] : found) {
        width = std::max(width, name.size());
        backends_width = std::max(backends_width, backends_of(item.second).size());
    }
    for (const auto& [name, item] : found) {
        fmt::print("{:<{}}  {:<{}}  {}\n", name, width, backends_of(item.second), backends_width, item.second.description);
    }
    fmt::print("\nRun one with 'poolbench run NAME' (shorten it with --set, e.g. --set phase.steady.duration=5s); "
               "files are in {}\n",
               found.empty() ? std::string("-") : found.begin()->second.first.parent_path().string());
    for (const auto& b : broken) fmt::print(stderr, "poolbench: skipped a broken scenario: {}\n", b);
    return broken.empty() ? ExitCode::ok : ExitCode::usage;
}

}  // namespace

Command add_run_command(CLI::App& app) {
    auto o = std::make_shared<RunOptions>();
    CLI::App* cmd = app.add_subcommand(
        "run", "Run a scenario: phases of load with faults injected and recovery measured (a TOML file, or the name "
               "of a shipped scenario: see 'poolbench scenarios')");
    cmd->add_option("SCENARIO", o->scenario, "A scenario file (with a '/' or ending in .toml), or a shipped name")
        ->required()
        ->type_name("FILE|NAME");
    add_topology_options(*cmd, o->common, o->topology);
    cmd->get_option("--db")->description(
        "Database URL (overrides the file's [database] url): sqlite:///abs/path.db, sqlite://rel/path.db, "
        "postgresql://user:pass@host:port/db, mariadb://user:pass@host:port/db, null://; repeat it to give one URL "
        "per shard");
    cmd->add_option("--set", o->sets,
                    "Override one value: scenario.KEY, pool.KEY, phase.NAME.KEY, phase.NAME.fault.N.KEY (N from 1); "
                    "repeatable")
        ->type_name("KEY=VALUE")
        ->group("Scenario");
    cmd->add_option("--restart-command", o->restart_command,
                    "Shell command that restarts the database server, for server.restart (pg.restart, "
                    "mariadb.restart) faults (a scenario file never carries one)")
        ->type_name("CMD")
        ->group("Scenario");
    cmd->add_option("--replica-stop-command", o->node_commands.stop,
                    "Shell command that stops a replica, for replica.stop faults; run with POOLBENCH_NODE (e.g. "
                    "replica-1), POOLBENCH_NODE_HOST and POOLBENCH_NODE_PORT set")
        ->type_name("CMD")
        ->group("Scenario");
    cmd->add_option("--replica-start-command", o->node_commands.start,
                    "Shell command that starts the stopped replica again when its replica.stop fault ends (same "
                    "variables)")
        ->type_name("CMD")
        ->group("Scenario");
    cmd->add_option("--promote-command", o->node_commands.promote,
                    "Shell command that promotes a standby, for replica.promote faults (same variables; default: "
                    "SELECT pg_promote() on the standby)")
        ->type_name("CMD")
        ->group("Scenario");
    cmd->add_flag("--check", o->check,
                  "Validate the scenario (and --set) without running anything: exit 0 or 2. With --db or --primary "
                  "it checks that invocation as the run would (the commands its faults need, their nodes), short of "
                  "connecting")
        ->group("Scenario");
    add_metrics_options(*cmd, o->metrics);
    add_output_options(*cmd, o->common);
    return {cmd, [o] { return run_run(*o); }};
}

Command add_scenarios_command(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("scenarios", "List the shipped scenarios: name, backends, description");
    return {cmd, [] { return list_scenarios(); }};
}

Command add_hold_lock_command(CLI::App& app) {
    struct Args {
        std::string url, mode;
        std::int64_t timeout_ms = 10'000;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand("__hold-sqlite-lock", "");  // internal: the sqlite.lock fault's other process
    cmd->group("");
    cmd->add_option("URL", a->url)->required();
    cmd->add_option("MODE", a->mode)->required();
    cmd->add_option("TIMEOUT_MS", a->timeout_ms);
    return {cmd, [a] {
                return static_cast<ExitCode>(hold_sqlite_lock(a->url, a->mode, std::chrono::milliseconds(a->timeout_ms)));
            }};
}

}  // namespace poolbench::cli
