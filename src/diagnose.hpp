// diagnose.hpp — `poolbench diagnose`, by job: gather (diagnose_gather.cpp: the driver's
// Diagnosis, timings, the --measure ladder; diagnose_privileges.cpp: the workloads'
// privileges), findings
// (diagnose_findings.cpp: what the CLI adds and the verdict), the pool-size
// recommendation (diagnose_sizing.cpp: pure arithmetic), and rendering
// (render_diagnose.cpp: text, JSON, JUnit; render_diagnose_html.cpp: HTML).
// The CLI sees the database only through the driver (no sqlite3.h, no libpq-fe.h).
//
// Thread-safety: main thread only, except the ladder's own worker threads inside
// measure_ladder (each with its own connection).
#pragma once

#include <poolbench/connection.hpp>
#include <poolbench/diagnostics.hpp>
#include <poolbench/url.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace poolbench::cli {

/// The pool-size rule's inputs.
struct SizingInput {
    std::optional<std::int64_t> server_cores;  ///< nullopt: unknown (remote server, no --server-cores)
    std::string cores_source;                  ///< "--server-cores", "this machine (the database is local)"
    std::int64_t spindles = 1;                 ///< effective spindles assumed (an SSD counts as 1)
    std::optional<std::int64_t> free_connections;  ///< nullopt: no server limit (SQLite)
    std::int64_t app_instances = 1;            ///< pools sharing the server (--app-instances)
    double connect_ms = 0;                     ///< median new-connection time
    double round_trip_us = 0;                  ///< median SELECT 1
    bool single_writer = false;                ///< SQLite
    /// A pooler in front of the server ("pgbouncer", "unknown"; "" none): the figure is
    /// then for the pooler's server-side pool, not the client's max_size.
    std::string pooler;
    std::optional<std::int64_t> pooler_pool_size;  ///< PgBouncer's pool_size now, when its console said
};

/// The recommendation and how it was reached.
struct Sizing {
    std::optional<std::int64_t> formula;           ///< cores x 2 + spindles, for the whole server
    std::optional<std::int64_t> per_instance;      ///< formula / instances, rounded up
    std::optional<std::int64_t> cap;               ///< free connections / instances, rounded down
    std::optional<std::int64_t> max_size;          ///< the recommendation; nullopt when there is none
    std::optional<std::int64_t> min_idle;
    std::vector<std::string> reasoning;            ///< one sentence each, in order
    /// More instances than free connections: not even one each (max_size stays nullopt).
    bool instances_exceed_free = false;
};

/// HikariCP's starting point, ((core_count * 2) + effective_spindle_count), shared by the
/// instances and bounded by the free connections. Pure.
[[nodiscard]] Sizing recommend_pool_size(const SizingInput& in);

/// One step of the --measure ladder.
struct LadderStep {
    std::int64_t connections = 0;
    double ops_s = 0;
};
struct Ladder {
    std::vector<LadderStep> steps;
    std::optional<std::int64_t> knee;  ///< where throughput stopped rising (< 10% more)
    std::string stopped_because;
};
/// Where throughput stops rising: the last step before the first one that added less
/// than 10%. Pure.
[[nodiscard]] std::optional<std::int64_t> ladder_knee(const std::vector<LadderStep>& steps);

/// Everything diagnose reports.
struct DiagnoseResult {
    DbUrl db;
    Diagnosis diagnosis;
    std::size_t samples = 0;
    double connect_p50_ms = 0, connect_min_ms = 0, connect_max_ms = 0;
    double round_trip_p50_us = 0, round_trip_p99_us = 0;
    SizingInput sizing_input;
    Sizing sizing;
    std::optional<Ladder> ladder;
    std::size_t problems = 0, warnings = 0;
};

struct GatherOptions {
    std::size_t samples = 20;
    std::chrono::milliseconds timeout{10'000};
    DiagnoseOptions diagnose;
    bool measure = false;
    std::chrono::milliseconds step{500};  ///< each ladder step's length
};

/// The driver's diagnosis, then read-only connect and round-trip timings, then (PostgreSQL,
/// MariaDB) the privileges the workloads need, then the ladder when asked. Throws what the driver
/// throws when the database cannot be used.
void gather(Driver& driver, const GatherOptions& options, DiagnoseResult& out);

/// Whether poolbench's workloads can run as the connection's user (PostgreSQL, MariaDB;
/// nothing for other backends): facts can_create_tables, poolbench_accounts,
/// poolbench_writes and the workload_* findings (diagnose_privileges.cpp).
void workload_privileges(Backend backend, Connection& c, Diagnosis& d);

/// The --measure ladder: SELECT 1 on 1, 2, 4, ... read-only connections, each step
/// `step` long, up to `max_connections`.
[[nodiscard]] Ladder measure_ladder(Driver& driver, std::int64_t max_connections, std::chrono::milliseconds step,
                                    std::chrono::milliseconds timeout);

/// The findings the CLI adds (connect cost, pool size, ladder), then the counts.
void add_cli_findings(DiagnoseResult& r);

/// Renderers; every output passes through scrub() with the URL's secrets by the caller.
[[nodiscard]] std::string render_diagnose_text(const DiagnoseResult& r);
[[nodiscard]] std::string render_diagnose_json(const DiagnoseResult& r);
[[nodiscard]] std::string render_diagnose_junit(const DiagnoseResult& r, const std::string& text);
[[nodiscard]] std::string render_diagnose_html(const DiagnoseResult& r);

/// diagnose's error report (exit 2, 3 or 130) for --json, --junit or --html: schema
/// poolbench/diagnose@2, verdict "error", interrupted, the exit code and the reason.
[[nodiscard]] std::string render_diagnose_error(std::string_view flag, int exit_code, const std::string& message,
                                                const std::string& backend, const std::string& url);

/// "12", "true", "3.5", "text", "-" for absent.
[[nodiscard]] std::string fact_text(const FactValue& v);

}  // namespace poolbench::cli
