// cmd_leak.cpp — `poolbench leak`: leak leases on purpose and check that the pool's leak
// detection finds every one of them, exactly once, with a stack trace that points at the
// code that leaked — and never flags a lease that was merely held for a while.
//
// Options → a two-phase scenario → the scenario engine → Report → renderers:
//   load  the workload (--threads, --ops or --duration), no fault;
//   leak  a leak fault at 0 (leak_fault.hpp) that leaks --leaks leases from a thread named
//         "pb-leaker" beside legitimate holds of half the threshold, and awaits the pool's
//         reports (with --reclaim: the reclaim, and LeaseRevoked on a revoked lease); with
//         --reclaim the workload then runs again on the reclaimed capacity, without it the
//         phase runs no load. The leases are returned late when the phase ends.
// The engine's checks on a leak fault are this command's expectations.
#include "cli.hpp"
#include "metrics_endpoint.hpp"
#include "report_files.hpp"
#include "run_command.hpp"
#include "runner.hpp"
#include "scenario.hpp"
#include "scenario_runner.hpp"

#include <poolbench/drivers.hpp>
#include <poolbench/url.hpp>

#include "cli11.hpp"
#include <fmt/format.h>

#include <algorithm>
#include <memory>

namespace poolbench::cli {

namespace {

constexpr std::chrono::milliseconds max_leak_duration{600'000};  // --threshold, --reclaim
constexpr std::uint32_t max_legitimate_holds = 2;
constexpr std::chrono::milliseconds wait_margin{5'000};

struct LeakOptions {
    CommonOptions common;
    MetricsOptions metrics;
    std::size_t leaks = 3;
    std::string threshold = "500ms";
    std::string reclaim;
    LoadOptions load{8, 2000, {}, nullptr};
    std::size_t pool_size = 10;
    std::string acquire_timeout = "10s";

    CLI::Option* reclaim_option = nullptr;
};

PoolConfig make_pool(const LeakOptions& o) {
    const auto threshold = parse_duration(o.threshold, "--threshold");
    if (threshold > max_leak_duration) {
        throw UsageFailure(fmt::format("--threshold {} is above the 10m maximum", o.threshold));
    }
    std::chrono::milliseconds reclaim{0};
    if (o.reclaim_option->count() > 0) {
        reclaim = parse_duration(o.reclaim, "--reclaim");
        if (reclaim > max_leak_duration) {
            throw UsageFailure(fmt::format("--reclaim {} is above the 10m maximum", o.reclaim));
        }
        if (reclaim <= threshold) {
            throw UsageFailure(
                fmt::format("--reclaim {} must be longer than --threshold {}", o.reclaim, o.threshold));
        }
        if (o.leaks > o.pool_size) {
            throw UsageFailure(fmt::format("--leaks {} exceeds --pool-size {}: a lease takes a connection until it is "
                                           "reclaimed, so lower --leaks or raise --pool-size",
                                           o.leaks, o.pool_size));
        }
    } else if (o.leaks >= o.pool_size) {
        throw UsageFailure(fmt::format(
            "--leaks {} must be below --pool-size {}: leaked leases keep their connections, so the pool needs "
            "one left to run (or add --reclaim D to take them back)",
            o.leaks, o.pool_size));
    }
    PoolConfig pool;
    pool.name = "poolbench";
    pool.max_size = o.pool_size;
    pool.acquire_timeout = parse_duration(o.acquire_timeout, "--acquire-timeout");
    pool.leak_threshold = threshold;
    pool.leak_reclaim_after = reclaim;
    pool.leak_trace_every = 1;
    pool.validate();
    return pool;
}

ScenarioSpec make_spec(const LeakOptions& o) {
    ScenarioSpec spec;
    spec.name = "leak";
    spec.source = "--leak";
    spec.pool = make_pool(o);
    const bool reclaiming = spec.pool.leak_reclaim_after.count() > 0;

    LoadSpec load;
    apply_load_options(o.load, o.common, load);
    PhaseSpec phase;
    phase.name = "load";
    phase.threads = load.threads;
    phase.ops = load.ops;
    phase.duration = load.duration;
    if (o.common.sample_interval_option != nullptr && o.common.sample_interval_option->count() > 0) {
        phase.sample_interval = load.sample_interval;
    }
    spec.phases.push_back(phase);

    // The same workload again on the reclaimed capacity (--reclaim), or no load at all.
    phase.name = "leak";
    if (!reclaiming) {
        phase.ops = 0;
        phase.duration.reset();
    }
    FaultSpec leak;
    leak.kind = FaultKind::leak;
    leak.leaks = static_cast<std::uint32_t>(o.leaks);
    leak.holds = static_cast<std::uint32_t>(std::min<std::size_t>(max_legitimate_holds, o.pool_size - o.leaks));
    leak.hold_for = spec.pool.leak_threshold / 2;
    leak.await_detection = true;
    // The housekeeper checks every threshold/4 (at most every second) and symbolizes
    // before it publishes: threshold, reclaim and a margin bound the wait.
    leak.timeout = spec.pool.leak_threshold * 2 + spec.pool.leak_reclaim_after + wait_margin;
    leak.where = {"--leaks"};
    phase.faults.push_back(leak);
    spec.phases.push_back(phase);

    spec.expect = {{"ops.failed == 0", {spec.source}}, {"ops.timed_out == 0", {spec.source}}};
    return spec;
}

ExitCode run_leak(const LeakOptions& o) {
    check_report_targets(o.common);
    arm_error_reports(o.common, "leak");
    const DatabaseChoice choice = DatabaseChoice::resolve(o.common.db);
    const DbUrl db = parse_db_url(choice.url());  // ConfigError: exit 2
    const ScenarioSpec spec = make_spec(o);
    guard_reports_against(o.common, db);
    ScenarioRunOptions options;
    options.command = "leak";
    return run_and_report(spec, db, options, RunCommand{o.common, o.metrics, false, {}});
}

}  // namespace

Command add_leak_command(CLI::App& app) {
    auto o = std::make_shared<LeakOptions>();
    CLI::App* cmd = app.add_subcommand(
        "leak",
        "Leak leases on purpose and check that the pool reports each one exactly once, with a stack trace "
        "pointing at the leaking code, and never a lease that was only held for a while");

    add_database_option(*cmd, o->common);

    cmd->add_option("--leaks", o->leaks, "Leases to leak (below --pool-size unless --reclaim is given)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1'000}))
        ->capture_default_str()
        ->group("Leaks");
    cmd->add_option("--threshold", o->threshold, "Leak threshold: a lease held longer is reported (at most 10m)")
        ->type_name("DURATION")
        ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
        ->capture_default_str()
        ->group("Leaks");
    o->reclaim_option =
        cmd->add_option("--reclaim", o->reclaim,
                        "Reclaim leaked leases after this long (above --threshold), then check that the pool's "
                        "capacity came back (off by default)")
            ->type_name("DURATION")
            ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
            ->group("Leaks");

    add_load_options(*cmd, o->load,
                     {"Worker threads in the normal workload phases",
                      "Operations per workload phase, all threads together",
                      "Run each workload phase this long instead of --ops"});

    cmd->add_option("--pool-size", o->pool_size, "Maximum connections in the pool")
        ->check(CLI::Range(std::size_t{1}, std::size_t{10'000}))
        ->capture_default_str()
        ->group("Pool");
    cmd->add_option("--acquire-timeout", o->acquire_timeout, "How long an acquire waits for a connection")
        ->type_name("DURATION")
        ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
        ->capture_default_str()
        ->group("Pool");

    add_metrics_options(*cmd, o->metrics);
    add_output_options(*cmd, o->common);
    return {cmd, [o] { return run_leak(*o); }};
}

}  // namespace poolbench::cli
