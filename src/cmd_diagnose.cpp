// cmd_diagnose.cpp — `poolbench diagnose [--db URL]`: what a pool on this database will
// meet, in a few seconds and without writing anything.
//
//   1. connect: --samples new connections, timed (what a pool saves per operation);
//   2. round trip: --samples × SELECT 1 on one connection;
//   3. the server's settings that matter to a pool (PostgreSQL: version, max_connections
//      and how many are in use, standby or primary, server-side timeouts; SQLite: version,
//      journal mode, busy timeout, synchronous);
//   4. findings, each "ok", "warn" (advice) or "problem" (exit 1): a standby refuses
//      writes, no connection headroom left, a rollback journal blocks readers behind a
//      writer, busy_timeout 0 fails writers at once.
// A database that cannot be used at all exits 3, like every other command.
#include "cli.hpp"
#include "report_files.hpp"
#include "runner.hpp"

#include <poolbench/connection.hpp>
#include <poolbench/drivers.hpp>
#include <poolbench/error.hpp>
#include <poolbench/histogram.hpp>
#include <poolbench/url.hpp>

#include "cli11.hpp"
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace poolbench::cli {

namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct DiagnoseOptions {
    CommonOptions common;
    std::size_t samples = 20;
    std::string timeout = "10s";
};

struct Finding {
    std::string level;  ///< "ok", "warn", "problem"
    std::string what;
};

struct Facts {
    std::vector<std::pair<std::string, std::string>> settings;  ///< in print order
    std::vector<Finding> findings;
    void set(std::string name, std::string value) { settings.emplace_back(std::move(name), std::move(value)); }
};

std::string text_of(const Value& v) {
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
    if (const auto* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
    return "NULL";
}

std::string one(Connection& c, const char* sql) {
    const Rows rows = c.query(sql);
    if (rows.empty() || rows.rows[0].empty()) return "";
    return text_of(rows.rows[0][0]);
}

long long to_int(const std::string& s) {
    try {
        return std::stoll(s);
    } catch (...) {
        return -1;
    }
}

bool has_param(const DbUrl& db, std::string_view name) {
    return std::any_of(db.params.begin(), db.params.end(), [&](const auto& kv) { return kv.first == name; });
}

void postgres_facts(Connection& c, const DbUrl& db, Facts& f) {
    f.set("server", one(c, "SELECT version()"));
    const long long max = to_int(one(c, "SELECT current_setting('max_connections')"));
    const long long reserved = to_int(one(c, "SELECT current_setting('superuser_reserved_connections')"));
    const long long used = to_int(one(c, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"));
    f.set("max_connections", std::to_string(max));
    f.set("superuser_reserved_connections", std::to_string(reserved));
    f.set("client connections now (this one included)", std::to_string(used));
    const bool standby = one(c, "SELECT pg_is_in_recovery()::text") == "true";
    f.set("role", standby ? "standby (in recovery)" : "primary");
    const std::string statement_timeout = one(c, "SELECT current_setting('statement_timeout')");
    const std::string idle_tx_timeout = one(c, "SELECT current_setting('idle_in_transaction_session_timeout')");
    f.set("statement_timeout", statement_timeout);
    f.set("idle_in_transaction_session_timeout", idle_tx_timeout);
    f.set("ssl", one(c, "SELECT COALESCE((SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()), 'unknown')"));

    if (standby) {
        f.findings.push_back({"problem", "the server is a standby: writes fail with SQLSTATE 25006 (point --db at the "
                                         "primary for write workloads)"});
    }
    if (max > 0 && used >= 0 && reserved >= 0) {
        const long long headroom = max - reserved - used;
        if (headroom <= 0) {
            f.findings.push_back({"problem", fmt::format("no connections left for ordinary users ({} of {} in use, {} "
                                                         "reserved): a pool here cannot grow at all",
                                                         used, max, reserved)});
        } else if (headroom * 5 < max) {
            f.findings.push_back({"warn", fmt::format("only {} more connections possible ({} of {} in use, {} "
                                                      "reserved): keep every pool's max_size within that, together",
                                                      headroom, used, max, reserved)});
        } else {
            f.findings.push_back({"ok", fmt::format("{} more connections possible: room for pools up to that size, "
                                                    "together",
                                                    headroom)});
        }
    }
    if (statement_timeout == "0" && !has_param(db, "statement_timeout")) {
        f.findings.push_back({"warn", "no server-side statement_timeout: a runaway query holds its connection until "
                                      "it ends (add statement_timeout=5s to the URL: poolbench cancels it client-side)"});
    }
}

/// The journal mode stored in a SQLite file's header, read without opening it.
std::string stored_journal_mode(const std::string& path) {
    return sqlite_file_journal_mode(path).value_or("unknown");
}

void sqlite_facts(Connection& c, const DbUrl& db, const std::string& stored_journal, Facts& f) {
    f.set("server", "SQLite " + one(c, "SELECT sqlite_version()"));
    f.set("file", db.memory ? ":memory:" : db.path);
    if (!db.memory) f.set("journal_mode stored in the file before poolbench connected", stored_journal);
    const std::string journal = one(c, "PRAGMA journal_mode");
    const std::string busy = one(c, "PRAGMA busy_timeout");
    f.set("journal_mode", journal);
    f.set("busy_timeout_ms", busy);
    f.set("synchronous", one(c, "PRAGMA synchronous"));
    f.set("page_size", one(c, "PRAGMA page_size"));
    f.set("page_count", one(c, "PRAGMA page_count"));
    const bool query_only = one(c, "PRAGMA query_only") == "1";
    f.set("query_only", query_only ? "on" : "off");
    if (query_only) {
        f.findings.push_back({"problem", "query_only is on: every write fails with SQLITE_READONLY (drop query_only "
                                         "from the URL for write workloads)"});
    }
    if (!db.memory && journal != "wal") {
        f.findings.push_back({"warn", fmt::format("journal_mode is {}: readers wait behind a writer (add "
                                                  "?journal_mode=WAL to the URL)",
                                                  journal)});
    } else if (!db.memory) {
        f.findings.push_back({"ok", fmt::format("journal_mode {}: readers do not block on the writer", journal)});
    }
    const bool wal_now = journal == "wal";
    if (!db.memory && stored_journal != "unknown" && (stored_journal == "wal") != wal_now) {
        f.findings.push_back({"warn", fmt::format("opening the file switched it from a {} journal to journal_mode {}, "
                                                  "which SQLite keeps in the file (the URL's journal_mode asked for "
                                                  "it)",
                                                  stored_journal, journal)});
    }
    if (to_int(busy) == 0) {
        f.findings.push_back({"warn", "busy_timeout is 0: a writer that finds the file locked fails at once with "
                                      "SQLITE_BUSY (add ?busy_timeout=5000 to the URL)"});
    }
}

ExitCode run_diagnose(const DiagnoseOptions& o) {
    check_report_targets(o.common);
    arm_error_reports(o.common, "diagnose");
    const DatabaseChoice choice = DatabaseChoice::resolve(o.common.db);
    const DbUrl db = parse_db_url(choice.url());  // ConfigError: exit 2
    guard_reports_against(o.common, db);
    const auto timeout = parse_duration(o.timeout, "--timeout");
    std::string stored_journal = "unknown";
    if (db.backend == Backend::sqlite && !db.memory) {
        // diagnose inspects a database; it never creates one (a typo in the path would
        // otherwise pass as a fresh, empty database).
        if (!choice.temporary() && ::access(db.path.c_str(), F_OK) != 0) {
            throw DatabaseUnusable(fmt::format("cannot use database {}: no such file (diagnose inspects an existing "
                                               "database and never creates one)",
                                               db.redacted));
        }
        if (!choice.temporary()) stored_journal = stored_journal_mode(db.path);
    }
    std::shared_ptr<Driver> driver = open_driver(db);
    const auto secrets = url_secrets(db.original);
    auto unusable = [&](const std::exception& e) {
        return DatabaseUnusable(unusable_message(db, e.what()));
    };

    Histogram connect_ns, round_trip_ns;
    std::unique_ptr<Connection> conn;
    Facts facts;
    try {
        for (std::size_t i = 0; i < o.samples; ++i) {
            const auto t0 = Clock::now();
            auto c = driver->connect(t0 + timeout);
            connect_ns.record(static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()));
            if (!conn) conn = std::move(c);
        }
        (void)conn->query("SELECT 1");  // prepares it: time the round trips after
        for (std::size_t i = 0; i < o.samples; ++i) {
            const auto t0 = Clock::now();
            (void)conn->query("SELECT 1");
            round_trip_ns.record(static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()));
        }
        if (db.backend == Backend::postgresql) postgres_facts(*conn, db, facts);
        if (db.backend == Backend::sqlite) sqlite_facts(*conn, db, stored_journal, facts);
        if (db.backend == Backend::null) facts.set("server", "none (null://: no database)");
    } catch (const std::exception& e) {
        throw unusable(e);
    }

    const double connect_ms = static_cast<double>(connect_ns.percentile(0.5)) / 1e6;
    const double round_trip_us = static_cast<double>(round_trip_ns.percentile(0.5)) / 1e3;
    if (round_trip_us > 0 && db.backend != Backend::null) {
        const double ratio = connect_ms * 1000.0 / round_trip_us;
        facts.findings.push_back(
            {"ok", fmt::format("a new connection costs {:.0f}x a SELECT 1 round trip: what a pool saves per operation",
                               ratio)});
    }

    std::size_t problems = 0, warnings = 0;
    for (const auto& f : facts.findings) {
        problems += f.level == "problem" ? 1 : 0;
        warnings += f.level == "warn" ? 1 : 0;
    }

    std::string text = fmt::format("database: {} (backend {})\n", db.redacted, to_string(db.backend));
    text += fmt::format("connect ({} samples): p50 {:.3f} ms, min {:.3f} ms, max {:.3f} ms\n", o.samples, connect_ms,
                        static_cast<double>(connect_ns.min()) / 1e6, static_cast<double>(connect_ns.max()) / 1e6);
    text += fmt::format("SELECT 1 round trip ({} samples): p50 {:.1f} us, p99 {:.1f} us\n", o.samples, round_trip_us,
                        static_cast<double>(round_trip_ns.percentile(0.99)) / 1e3);
    for (const auto& [name, value] : facts.settings) text += fmt::format("{}: {}\n", name, value);
    for (const auto& f : facts.findings) text += fmt::format("[{}] {}\n", f.level, f.what);
    text += problems > 0 ? fmt::format("verdict: FAIL ({} problem{})\n", problems, problems == 1 ? "" : "s")
                         : fmt::format("verdict: PASS ({} warning{})\n", warnings, warnings == 1 ? "" : "s");
    text = scrub(text, secrets);

    Json j{{"schema", "poolbench/diagnose@1"},
           {"database", Json{{"backend", to_string(db.backend)}, {"url", db.redacted}}},
           {"connect_ms", Json{{"samples", o.samples},
                               {"p50", connect_ms},
                               {"min", static_cast<double>(connect_ns.min()) / 1e6},
                               {"max", static_cast<double>(connect_ns.max()) / 1e6}}},
           {"round_trip_us", Json{{"samples", o.samples},
                                  {"p50", round_trip_us},
                                  {"p99", static_cast<double>(round_trip_ns.percentile(0.99)) / 1e3}}}};
    Json settings = Json::object();
    for (const auto& [name, value] : facts.settings) settings[name] = scrub(value, secrets);
    j["settings"] = std::move(settings);
    Json findings = Json::array();
    for (const auto& f : facts.findings) findings.push_back(Json{{"level", f.level}, {"what", f.what}});
    j["findings"] = std::move(findings);
    j["verdict"] = problems > 0 ? "fail" : "pass";

    emit_text_and_json(text, j.dump(2, ' ', false, Json::error_handler_t::replace), o.common.json);
    return problems > 0 ? ExitCode::failed : ExitCode::ok;
}

}  // namespace

Command add_diagnose_command(CLI::App& app) {
    auto o = std::make_shared<DiagnoseOptions>();
    CLI::App* cmd = app.add_subcommand(
        "diagnose",
        "Check a database for what a pool will meet: connect and round-trip times, connection headroom, standby or "
        "primary, timeouts, SQLite journal mode; writes nothing");
    add_database_option(*cmd, o->common);
    cmd->add_option("--samples", o->samples, "Connections to time, and SELECT 1 round trips")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1000}))
        ->capture_default_str();
    cmd->add_option("--timeout", o->timeout, "Deadline for each connection attempt")
        ->type_name("DURATION")
        ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
        ->capture_default_str();
    o->common.json_option = cmd->add_option("--json", o->common.json, "Write the findings as JSON to FILE, or to stdout with '-'")
        ->type_name("FILE|-")
        ->group("Output");
    cmd->add_flag("--no-progress", o->common.no_progress, "Accepted for scripts that pass it to every command (no progress line here)")
        ->group("Output");
    return {cmd, [o] { return run_diagnose(*o); }};
}

}  // namespace poolbench::cli
