// cmd_stress.cpp — `poolbench stress` and `poolbench soak`: options → a one-phase
// scenario → the scenario engine → Report → renderers. A soak is a stress run bounded by time and paced at --rate
// operations per second (sysbench --rate), with leak tracking on; it also fails when the
// run falls behind its rate or a sample interval completes no operation (a stall).
#include "cli.hpp"
#include "metrics_endpoint.hpp"
#include "report_files.hpp"
#include "run_command.hpp"
#include "runner.hpp"
#include "scenario.hpp"
#include "scenario_runner.hpp"
#include "topology.hpp"
#include "workload.hpp"

#include <poolbench/drivers.hpp>
#include <poolbench/error.hpp>
#include <poolbench/url.hpp>

#include "cli11.hpp"
#include <fmt/format.h>

#include <algorithm>
#include <memory>

namespace poolbench::cli {

namespace {

struct StressOptions {
    CommonOptions common;
    TopologyOptions topology;
    MetricsOptions metrics;
    LoadOptions load;
    std::size_t pool_size = 10;
    std::size_t min_idle = 0;
    std::string acquire_timeout = "30s";
    std::string starvation_threshold = "10ms";
    std::string leak_threshold;  ///< empty: leak tracking off
    std::string workload = "select1";
    double write_ratio = 0.2;
    std::uint64_t rows = 10'000;
    bool baseline = false;
    double rate = 0;  ///< soak only

    CLI::Option* write_ratio_option = nullptr;
};

/// A stress or soak run is a one-phase scenario built from the flags, run by the same
/// engine as `poolbench run`; its built-in expectations are the scenario's.
ScenarioSpec make_spec(const StressOptions& o, std::string_view command) {
    ScenarioSpec spec;
    spec.name = std::string(command);
    spec.source = "--" + std::string(command);

    if (o.min_idle > o.pool_size) {
        throw UsageFailure(fmt::format("--min-idle {} exceeds --pool-size {}", o.min_idle, o.pool_size));
    }
    spec.pool.name = "poolbench";
    spec.pool.max_size = o.pool_size;
    spec.pool.min_idle = o.min_idle;
    spec.pool.acquire_timeout = parse_duration(o.acquire_timeout, "--acquire-timeout");
    spec.pool.starvation_threshold = o.starvation_threshold == "0" || o.starvation_threshold == "0ms"
                                         ? std::chrono::milliseconds{0}
                                         : parse_duration(o.starvation_threshold, "--starvation-threshold");
    if (!o.leak_threshold.empty()) {
        spec.pool.leak_threshold = parse_duration(o.leak_threshold, "--leak-threshold");
        spec.pool.leak_trace_every = 1;
    }
    spec.pool.validate();

    PhaseSpec phase;
    phase.name = std::string(command);
    if (command == "soak") {
        phase.threads = o.load.threads;
        phase.duration = parse_duration(o.load.duration, "--duration");
        phase.rate = o.rate;
        // The one sampling rule (at least 20 points, at most 1 s apart) unless --sample-interval says.
        if (o.common.sample_interval_option != nullptr && o.common.sample_interval_option->count() > 0) {
            const auto interval = parse_duration(o.common.sample_interval, "--sample-interval");
            if (interval > *phase.duration) {
                throw UsageFailure(fmt::format("--sample-interval {} is longer than --duration {}",
                                               o.common.sample_interval, o.load.duration));
            }
            phase.sample_interval = interval;
        }
        phase.check_stalls = true;  // a soak fails on a stall, paced or not
    } else {
        LoadSpec load;
        apply_load_options(o.load, o.common, load);
        phase.threads = load.threads;
        phase.ops = load.ops;
        phase.duration = load.duration;
        if (o.common.sample_interval_option != nullptr && o.common.sample_interval_option->count() > 0) {
            phase.sample_interval = load.sample_interval;
        }
    }

    const auto kind = parse_workload(o.workload);
    if (!kind) throw UsageFailure(fmt::format("--workload: unknown workload '{}'", o.workload));
    if (o.write_ratio_option->count() > 0 && *kind != WorkloadKind::mixed) {
        throw UsageFailure(fmt::format("--write-ratio applies only to --workload mixed (not {})", o.workload));
    }
    phase.workload.kind = *kind;
    phase.workload.write_ratio = o.write_ratio;
    phase.workload.rows = o.rows;
    spec.phases.push_back(std::move(phase));
    spec.expect = {{"ops.failed == 0", {spec.source}},
                   {"ops.timed_out == 0", {spec.source}},
                   {"ops.statement_timeouts == 0", {spec.source}}};
    return spec;
}

/// --baseline: the same workload with no pool (a new connection per operation), bounded.
BaselineSection run_baseline(const ScenarioSpec& spec, const DbUrl& db, Driver& driver, const RunHooks& hooks,
                             double pooled_ops_s) {
    constexpr std::uint64_t max_ops = 20'000;
    constexpr std::chrono::milliseconds max_duration{10'000};
    const PhaseSpec& phase = spec.phases.front();
    LoadSpec load;
    load.threads = phase.threads;
    load.connect_timeout = spec.pool.acquire_timeout;
    load.sample_interval = phase.sample_interval.value_or(std::chrono::milliseconds{1000});
    load.error_backoff = spec.error_backoff;
    BaselineSection b;
    if (phase.ops) {
        load.ops = std::min(*phase.ops, max_ops);
        b.ops_requested = *load.ops;
    } else if (phase.duration) {
        load.duration = std::min(*phase.duration, max_duration);
        b.duration_limit_s = std::chrono::duration<double>(*load.duration).count();
    }
    const Workload workload(phase.workload, db.backend, make_run_id() + "-baseline");
    const LoadResult r = run_load_unpooled(driver, workload, load, hooks);
    b.duration_s = r.duration_s;
    b.ops = r.ops;
    b.throughput_ops_s = r.throughput_ops_s();
    b.latency_us = summarize(r);
    b.speedup = b.throughput_ops_s > 0 ? pooled_ops_s / b.throughput_ops_s : 0.0;
    return b;
}

ExitCode run_stress(const StressOptions& o, std::string_view command) {
    check_report_targets(o.common);
    arm_error_reports(o.common, std::string(command));
    ScenarioSpec spec = make_spec(o, command);
    // One database, or a primary with replicas, or shards (topology.hpp): exit 2 when the
    // combination cannot work, with what would.
    const DatabaseChoice choice = DatabaseChoice::resolve(apply_topology_options(o.topology, spec.topology));
    const DbUrl db = parse_db_url(resolve_topology(spec.topology, choice.url(), choice.temporary()));  // ConfigError: exit 2
    if (o.baseline && spec.topology.multi()) {
        throw UsageFailure("--baseline compares one database with and without a pool; drop it with --replica or --shards");
    }
    guard_reports_against_shards(o.common, spec.topology);
    guard_reports_against(o.common, db);
    ScenarioRunOptions options;
    options.command = std::string(command);
    RunCommand run{o.common, o.metrics, true, {}};
    if (o.baseline) {
        run.after = [&spec, &db](Report& report, Driver& driver, const RunHooks& hooks) {
            if (report.interrupted) return;
            report.baseline = run_baseline(spec, db, driver, hooks, report.throughput_ops_s);
            if (interrupt_flag().load()) {
                report.interrupted = true;
                report.interrupted_at = "during the baseline";
            }
        };
    }
    return run_and_report(spec, db, options, run);
}

/// The Pool and Workload groups, shared by stress and soak.
void add_pool_and_workload_options(CLI::App* cmd, const std::shared_ptr<StressOptions>& o) {
    cmd->add_option("--pool-size", o->pool_size, "Maximum connections in the pool")
        ->check(CLI::Range(std::size_t{1}, std::size_t{10'000}))
        ->capture_default_str()
        ->group("Pool");
    cmd->add_option("--min-idle", o->min_idle, "Idle connections the pool keeps open")
        ->check(CLI::Range(std::size_t{0}, std::size_t{10'000}))
        ->capture_default_str()
        ->group("Pool");
    cmd->add_option("--acquire-timeout", o->acquire_timeout, "How long a worker waits for a connection")
        ->type_name("DURATION")
        ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
        ->capture_default_str()
        ->group("Pool");

    cmd->add_option("--starvation-threshold", o->starvation_threshold,
                    "How long the longest waiter may be passed over by running threads before every returned "
                    "connection is handed straight to it (0ms: strict first-come-first-served hand-off)")
        ->type_name("DURATION")
        ->check(CLI::Validator(
            [](const std::string& text) { return text == "0" || text == "0ms" ? std::string{} : check_duration(text); },
            "0ms|250ms|30s|10m|1h"))
        ->capture_default_str()
        ->group("Pool");

    cmd->add_option("--leak-threshold", o->leak_threshold,
                    "Report any lease held longer than this, with the stack that acquired it (off by default; "
                    "the run then fails if any lease is reported)")
        ->type_name("DURATION")
        ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
        ->group("Pool");

    cmd->add_option("--workload", o->workload,
                    "select1: SELECT 1; read: point select on seeded rows; write: one INSERT per "
                    "transaction, verified after the run; mixed: read or write by --write-ratio; read_write: read "
                    "then write in one DEFERRED transaction")
        ->check(CLI::IsMember({"select1", "read", "write", "mixed", "read_write"}))
        ->capture_default_str()
        ->group("Workload");
    o->write_ratio_option = cmd->add_option("--write-ratio", o->write_ratio, "Fraction of writes (mixed only)")
                                ->check(CLI::Validator(check_finite, "NUMBER") & CLI::Range(0.0, 1.0))
                                ->capture_default_str()
                                ->group("Workload");
    cmd->add_option("--rows", o->rows, "Rows seeded in poolbench_accounts (read, mixed)")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{100'000'000}))
        ->capture_default_str()
        ->group("Workload");
}

}  // namespace

Command add_stress_command(CLI::App& app) {
    auto o = std::make_shared<StressOptions>();
    CLI::App* cmd = app.add_subcommand(
        "stress", "Run concurrent workers through the pool and report latency, throughput and pool behaviour");

    add_topology_options(*cmd, o->common, o->topology);

    add_load_options(*cmd, o->load,
                     {"Concurrent worker threads", "Total operations, all threads together",
                      "Run for this long instead of --ops"});

    add_pool_and_workload_options(cmd, o);

    cmd->add_flag("--baseline", o->baseline,
                  "Then run the same workload without a pool (connect per operation; at most 20000 ops or 10 s) "
                  "and report the speedup")
        ->group("Comparison");

    add_metrics_options(*cmd, o->metrics);
    add_output_options(*cmd, o->common);
    return {cmd, [o] { return run_stress(*o, "stress"); }};
}

Command add_soak_command(CLI::App& app) {
    auto o = std::make_shared<StressOptions>();
    o->load.threads = 16;
    o->load.duration = "60s";
    o->rate = 1000;
    o->leak_threshold = "10s";
    CLI::App* cmd = app.add_subcommand(
        "soak",
        "Run a steady, paced load for a long time and fail on what builds up: errors, leaks, lost writes, "
        "falling behind the rate, stalls");

    add_topology_options(*cmd, o->common, o->topology);
    cmd->add_option("--duration", o->load.duration, "How long to run")
        ->type_name("DURATION")
        ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
        ->capture_default_str()
        ->group("Load");
    cmd->add_option("--rate", o->rate, "Target operations per second, all threads together (0: as fast as possible)")
        ->check(CLI::Validator(check_finite, "NUMBER") & CLI::Range(0.0, 100'000'000.0))
        ->capture_default_str()
        ->group("Load");
    cmd->add_option("--threads", o->load.threads, "Concurrent worker threads")
        ->check(CLI::Range(std::size_t{1}, std::size_t{10'000}))
        ->capture_default_str()
        ->group("Load");

    add_pool_and_workload_options(cmd, o);
    cmd->get_option("--leak-threshold")
        ->description("Report any lease held longer than this, with the stack that acquired it; the run then fails")
        ->capture_default_str();

    add_metrics_options(*cmd, o->metrics);
    add_output_options(*cmd, o->common);
    // Visible here: a soak's timeline is much of its point.
    cmd->get_option("--sample-interval")
        ->group("Output")
        ->description("Timeline sampling interval (default: a twentieth of --duration, at most 1s)")
        ->type_name("DURATION");
    return {cmd, [o] { return run_stress(*o, "soak"); }};
}

}  // namespace poolbench::cli
