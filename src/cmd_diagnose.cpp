// cmd_diagnose.cpp — `poolbench diagnose --db URL`: what is wrong with a database right
// now and what a pool on it will meet, without writing anything.
//
// The options and the order of work; the jobs are in their own files (diagnose.hpp):
//   1. gather: the driver's Diagnosis (lib: SQLite's file, header and locks; PostgreSQL's
//      and MariaDB's sessions, locks, limits, timeouts, replication), read-only connect and round-trip
//      timings, the workloads' privileges, and with --measure a SELECT 1 ladder;
//   2. the pool-size recommendation (cores x 2 + spindles, shared by --app-instances,
//      bounded by the free connections) and the CLI's findings;
//   3. text on stdout, --json, --junit (findings as test cases, problem = failure) and
//      --html, each written by rename.
// Exit 0 when no finding is a problem, 1 when one is, 2 for bad usage (no --db and no
// POOLBENCH_DB: diagnose never invents a database to look at), 3 when the database
// cannot be used at all.
#include "cli.hpp"
#include "diagnose.hpp"
#include "redaction.hpp"
#include "report_files.hpp"
#include "runner.hpp"

#include <poolbench/drivers.hpp>
#include <poolbench/error.hpp>
#include <poolbench/url.hpp>

#include "cli11.hpp"
#include <fmt/format.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

namespace poolbench::cli {

namespace {

/// A whole number in [low, high], said plainly when it is not ("abc" is not a count, not
/// "out of range").
CLI::Validator count_in(std::int64_t low, std::int64_t high, const char* what) {
    return CLI::Validator(
        [=](std::string& value) -> std::string {
            std::size_t used = 0;
            long long n = 0;
            try {
                n = std::stoll(value, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used == 0 || used != value.size()) {
                return fmt::format("'{}' is not a number: give the {} as a whole number from {} to {}", value, what,
                                   low, high);
            }
            if (n < low || n > high) return fmt::format("{} is out of range: the {} must be {} to {}", value, what, low, high);
            return {};
        },
        fmt::format("{}..{}", low, high));
}

struct DiagnoseCliOptions {
    CommonOptions common;
    std::size_t samples = 20;
    std::string timeout = "10s";
    std::string idle_in_transaction = "60s";
    std::string long_query = "60s";
    std::string lock_wait = "5s";
    std::int64_t server_cores = 0;
    std::int64_t app_instances = 1;
    bool measure = false;
    std::string measure_step = "500ms";
};

ExitCode run_diagnose(const DiagnoseCliOptions& o) {
    const char* env = std::getenv("POOLBENCH_DB");
    if (o.common.db.empty() && (env == nullptr || *env == '\0')) {
        throw UsageFailure("what should I diagnose? give --db URL (or set POOLBENCH_DB): diagnose looks at an existing "
                           "database and never makes one up");
    }
    check_report_targets(o.common);
    arm_error_reports(o.common, "diagnose", render_diagnose_error);
    // SIGINT/SIGTERM (during --measure, or a slow connect): the error report, exit 130.
    install_interrupt_handler();
    const DatabaseChoice choice = DatabaseChoice::resolve(o.common.db);
    DiagnoseResult r;
    r.db = parse_db_url(choice.url());  // ConfigError: exit 2
    guard_reports_against(o.common, r.db);

    GatherOptions g;
    g.samples = o.samples;
    g.timeout = parse_duration(o.timeout, "--timeout");
    g.diagnose.deadline = std::chrono::steady_clock::now() + g.timeout;
    g.diagnose.idle_in_transaction_after = parse_duration(o.idle_in_transaction, "--idle-in-transaction");
    g.diagnose.long_query_after = parse_duration(o.long_query, "--long-query");
    g.diagnose.lock_wait_after = parse_duration(o.lock_wait, "--lock-wait");
    g.step = parse_duration(o.measure_step, "--measure-step");
    if (g.step > std::chrono::seconds(1)) {
        throw UsageFailure(fmt::format("--measure-step {} is too long: each ladder step lasts at most 1s", o.measure_step));
    }

    std::shared_ptr<Driver> driver = open_driver(r.db);
    try {
        gather(*driver, g, r);
    } catch (const ConfigError&) {
        throw;
    } catch (const std::exception& e) {
        throw DatabaseUnusable(unusable_message(r.db, e.what()));
    }

    SizingInput& in = r.sizing_input;
    if (o.server_cores > 0) {
        in.server_cores = o.server_cores;
        in.cores_source = "--server-cores";
    } else if (r.diagnosis.local && r.db.backend != Backend::null) {
        in.server_cores = std::max(1U, std::thread::hardware_concurrency());
        in.cores_source = "this machine's logical CPUs: the database is local";
    }
    if (r.db.memory) in.spindles = 0;  // in memory: no disk to wait on
    in.free_connections = r.diagnosis.free_connections;
    in.app_instances = o.app_instances;
    in.connect_ms = r.connect_p50_ms;
    in.round_trip_us = r.round_trip_p50_us;
    in.single_writer = r.diagnosis.single_writer;
    if (const FactValue* p = r.diagnosis.fact("connection_pooler"); p != nullptr) {
        if (const auto* name = std::get_if<std::string>(p); name != nullptr && *name != "none") in.pooler = *name;
    }
    if (const FactValue* n = r.diagnosis.fact("pgbouncer_pool_size"); n != nullptr) {
        if (const auto* v = std::get_if<std::int64_t>(n)) in.pooler_pool_size = *v;
    }
    if (r.db.backend != Backend::null) r.sizing = recommend_pool_size(in);

    if (o.measure && r.db.backend != Backend::null) {
        std::int64_t limit = 64;
        if (r.diagnosis.free_connections) limit = std::min(limit, *r.diagnosis.free_connections);
        if (limit < 1) {
            throw DatabaseUnusable(unusable_message(r.db, "--measure needs at least one free connection and the "
                                                          "server has none"));
        }
        try {
            r.ladder = measure_ladder(*driver, limit, g.step, g.timeout);
        } catch (const std::exception& e) {
            throw DatabaseUnusable(unusable_message(r.db, e.what()));
        }
    }
    add_cli_findings(r);

    const auto secrets = url_secrets(r.db.original);
    const std::string text = scrub(render_diagnose_text(r), secrets);
    if (!o.common.junit.empty()) {
        if (auto error = write_atomically(o.common.junit, scrub(render_diagnose_junit(r, text), secrets)); !error.empty()) {
            throw UsageFailure(fmt::format("--junit: cannot write {}: {}", o.common.junit, error));
        }
    }
    if (!o.common.html.empty()) {
        if (auto error = write_atomically(o.common.html, scrub(render_diagnose_html(r), secrets)); !error.empty()) {
            throw UsageFailure(fmt::format("--html: cannot write {}: {}", o.common.html, error));
        }
    }
    emit_text_and_json(text, scrub(render_diagnose_json(r), secrets), o.common.json);
    return r.problems > 0 ? ExitCode::failed : ExitCode::ok;
}

}  // namespace

Command add_diagnose_command(CLI::App& app) {
    auto o = std::make_shared<DiagnoseCliOptions>();
    CLI::App* cmd = app.add_subcommand(
        "diagnose",
        "Find what is wrong with a database right now and what a pool on it will meet: locks and their holders, "
        "sessions idle in transaction, connection limits, timeouts, and a pool size with its reasoning; writes "
        "nothing");
    add_database_option(*cmd, o->common);
    cmd->get_option("--db")->default_str("$POOLBENCH_DB; diagnose never makes up a database to look at");
    cmd->add_option("--samples", o->samples, "Connections to time, and SELECT 1 round trips")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1000}))
        ->capture_default_str();
    cmd->add_option("--timeout", o->timeout, "Deadline for each connection attempt and for gathering")
        ->type_name("DURATION")
        ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
        ->capture_default_str();
    cmd->add_option("--idle-in-transaction", o->idle_in_transaction,
                    "PostgreSQL, MariaDB: a session idle in a transaction longer than this is a problem (a leaked transaction)")
        ->type_name("DURATION")
        ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
        ->capture_default_str()
        ->group("Thresholds");
    cmd->add_option("--long-query", o->long_query, "PostgreSQL, MariaDB: statements (MariaDB: also transactions) running longer than this are reported")
        ->type_name("DURATION")
        ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
        ->capture_default_str()
        ->group("Thresholds");
    cmd->add_option("--lock-wait", o->lock_wait,
                    "PostgreSQL, MariaDB: a session blocked on a lock this long is a problem (shorter: a warning)")
        ->type_name("DURATION")
        ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
        ->capture_default_str()
        ->group("Thresholds");
    cmd->add_option("--server-cores", o->server_cores,
                    "The database server's cores, for the pool-size recommendation (default: this machine's when the "
                    "database is local)")
        ->check(count_in(1, 4096, "server's core count"))
        ->group("Pool size");
    cmd->add_option("--app-instances", o->app_instances, "Pools (application instances) that share the server")
        ->check(count_in(1, 100000, "number of application instances"))
        ->capture_default_str()
        ->group("Pool size");
    cmd->add_flag("--measure", o->measure,
                  "Also run a read-only SELECT 1 ladder at 1, 2, 4, ... connections (up to the free connections, at "
                  "most 64) and report where throughput stops rising")
        ->group("Pool size");
    cmd->add_option("--measure-step", o->measure_step, "Length of each ladder step (at most 1s)")
        ->type_name("DURATION")
        ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
        ->capture_default_str()
        ->group("Pool size");
    o->common.json_option = cmd->add_option("--json", o->common.json, "Write the findings as JSON to FILE, or to stdout with '-'")
        ->type_name("FILE|-")
        ->group("Output");
    o->common.junit_option = cmd->add_option("--junit", o->common.junit,
                                             "Write the findings as JUnit XML to FILE (one test case each; a problem "
                                             "is a failure)")
        ->type_name("FILE")
        ->group("Output");
    o->common.html_option = cmd->add_option("--html", o->common.html, "Write the findings as one self-contained HTML page to FILE")
        ->type_name("FILE")
        ->group("Output");
    cmd->add_flag("--no-progress", o->common.no_progress, "Accepted for scripts that pass it to every command (no progress line here)")
        ->group("Output");
    return {cmd, [o] { return run_diagnose(*o); }};
}

}  // namespace poolbench::cli
