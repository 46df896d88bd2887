// cmd_clean.cpp — `poolbench clean --db URL`: drop the tables poolbench's workloads left in
// a database (poolbench_accounts, poolbench_writes grows run after run,
// poolbench_lock_probe). Only those names, only in the database named: there is no
// default database here, a temporary one would have nothing to clean.
//
// A role that may not count or drop them (exit 3) is told what a DBA would run
// (workload.hpp's clean_refused): MariaDB's GRANT SELECT, DROP; on PostgreSQL the tables'
// owner, since only the owner may drop a table there.
#include "cli.hpp"
#include "workload.hpp"
#include "workload_sql.hpp"

#include <poolbench/error.hpp>
#include <poolbench/url.hpp>

#include "cli11.hpp"
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

namespace poolbench::cli {

namespace {

struct CleanOptions {
    std::string db;
    bool dry_run = false;
};

ExitCode run_clean(const CleanOptions& o) {
    std::string url = o.db;
    if (url.empty()) {
        if (const char* env = std::getenv("POOLBENCH_DB"); env != nullptr && *env != '\0') url = env;
    }
    if (url.empty()) throw UsageFailure("clean: which database? pass --db URL (or set POOLBENCH_DB)");
    const DbUrl db = parse_db_url(url);  // ConfigError: exit 2
    if (db.backend == Backend::sqlite && !db.memory) {
        // Cleaning never creates a database.
        if (std::FILE* f = std::fopen(db.path.c_str(), "rb")) {
            std::fclose(f);
        } else {
            throw DatabaseUnusable(fmt::format("cannot use database {}: no such file (clean never creates one)", db.redacted));
        }
    }
    auto driver = open_driver(db);
    std::unique_ptr<Connection> conn;
    std::vector<WorkloadTable> tables;
    try {
        conn = driver->connect(std::chrono::steady_clock::now() + std::chrono::seconds(30));
        tables = workload_tables(*conn, db.backend);
    } catch (const std::exception& e) {
        throw DatabaseUnusable(unusable_message(db, e.what()));
    }
    if (tables.empty()) {
        fmt::print("{}: no poolbench tables; nothing to drop\n", db.redacted);
        return ExitCode::ok;
    }
    for (std::size_t i = 0; i < tables.size(); ++i) {
        const auto& t = tables[i];
        if (o.dry_run) {
            fmt::print("would drop {} ({} rows)\n", t.name, t.rows);
            continue;
        }
        try {
            drop_workload_table(*conn, t.name);
        } catch (const QueryError& e) {
            if (!workload_sql(db.backend).permission_denied(e.code())) {
                throw DatabaseUnusable(unusable_message(db, fmt::format("dropping {}: {}", t.name, e.what())));
            }
            std::vector<std::string> left;  // this one and those after it
            for (std::size_t k = i; k < tables.size(); ++k) left.push_back(tables[k].name);
            throw DatabaseUnusable(unusable_message(db, clean_refused(*conn, db.backend, left, e.what())));
        } catch (const std::exception& e) {
            throw DatabaseUnusable(unusable_message(db, fmt::format("dropping {}: {}", t.name, e.what())));
        }
        fmt::print("dropped {} ({} rows)\n", t.name, t.rows);
    }
    return ExitCode::ok;
}

}  // namespace

Command add_clean_command(CLI::App& app) {
    auto o = std::make_shared<CleanOptions>();
    CLI::App* cmd = app.add_subcommand(
        "clean", "Drop the tables poolbench's workloads left in a database (poolbench_accounts, poolbench_writes, "
                 "poolbench_lock_probe): nothing else");
    cmd->add_option("--db", o->db, "The database to clean (no default: $POOLBENCH_DB, else exit 2)")->group("Database");
    cmd->add_flag("--dry-run", o->dry_run, "List what would be dropped, with row counts, and drop nothing");
    return {cmd, [o] { return run_clean(*o); }};
}

}  // namespace poolbench::cli
