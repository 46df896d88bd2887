// scenario.hpp — a scenario: a database, pool settings, ordered phases, faults inside
// phases, and expectations; loaded from TOML (scenario_file.cpp, format documented in
// scenarios/README.md) and run by one engine (scenario_runner.cpp).
//
// Thread-safety: plain value types; built on the main thread, then read-only.
#pragma once

#include "topology.hpp"
#include "workload.hpp"

#include <poolbench/config.hpp>
#include <poolbench/url.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <utility>
#include <optional>
#include <string>
#include <vector>

namespace poolbench::cli {

/// Where a value came from, for error messages: "file.toml:12:5" or "--set phase.x.threads".
struct SourcePlace {
    std::string text;
};

/// One expectation as written ("latency_us.op.p99 < 50ms") and where.
struct ExpectText {
    std::string text;
    SourcePlace where;
};

/// The fault kinds (scenarios/README.md describes each).
enum class FaultKind {
    sqlite_lock,           ///< "sqlite.lock": another process holds the file's lock
    pg_lock_table,         ///< "pg.lock_table": LOCK TABLE ... ACCESS EXCLUSIVE from a side connection
    pg_terminate_backends, ///< "pg.terminate_backends": pg_terminate_backend on this run's own backends
    pg_restart,            ///< "pg.restart": the server restarted by --restart-command (PostgreSQL only)
    mariadb_lock_table,    ///< "mariadb.lock_table": LOCK TABLES ... WRITE from a side connection
    mariadb_kill_connections, ///< "mariadb.kill_connections": KILL CONNECTION on this run's own connections
    mariadb_restart,       ///< "mariadb.restart": the server restarted by --restart-command (MariaDB only)
    server_restart,        ///< "server.restart": the server restarted by --restart-command (PostgreSQL, MariaDB)
    connection_storm,      ///< "connection_storm": connections dropped and new ones refused
    latency,               ///< "latency": added latency (with jitter) on each statement
    lost_replies,          ///< "lost_replies": statements run, then a share lose their reply with their connection
    leak,                  ///< "leak": leases leaked from a function of the runner
    replica_stop,          ///< "replica.stop": a replica stopped by --replica-stop-command, started again by --replica-start-command
    replica_promote,       ///< "replica.promote": a standby promoted (pg_promote(), or --promote-command)
};
[[nodiscard]] std::string_view to_string(FaultKind kind) noexcept;
[[nodiscard]] std::optional<FaultKind> parse_fault_kind(std::string_view text) noexcept;
/// Every kind's name, comma-separated, for an error that lists them.
[[nodiscard]] std::string fault_kind_list();
/// The backends a fault can run on.
[[nodiscard]] std::vector<Backend> fault_backends(FaultKind kind);
/// server.restart and its backend-pinned spellings pg.restart and mariadb.restart: the fault
/// has no 'for' and ends when --restart-command exits.
[[nodiscard]] constexpr bool is_restart(FaultKind kind) noexcept {
    return kind == FaultKind::pg_restart || kind == FaultKind::mariadb_restart || kind == FaultKind::server_restart;
}
/// A fault with no 'for', over when what it runs is done: a restart, a promotion.
[[nodiscard]] constexpr bool ends_by_itself(FaultKind kind) noexcept {
    return is_restart(kind) || kind == FaultKind::replica_promote;
}
/// connection_storm, latency and lost_replies: the run's own fault driver changes what its
/// connections do while the fault lasts (one setting each: two of a kind cannot overlap).
[[nodiscard]] constexpr bool is_process_fault(FaultKind kind) noexcept {
    return kind == FaultKind::connection_storm || kind == FaultKind::latency || kind == FaultKind::lost_replies;
}
/// replica.stop and replica.promote: act on one replica of a primary/replica run ('node').
[[nodiscard]] constexpr bool is_replica_fault(FaultKind kind) noexcept {
    return kind == FaultKind::replica_stop || kind == FaultKind::replica_promote;
}
/// pg.lock_table and mariadb.lock_table: a side connection locks a table ('table').
[[nodiscard]] constexpr bool is_lock_table(FaultKind kind) noexcept {
    return kind == FaultKind::pg_lock_table || kind == FaultKind::mariadb_lock_table;
}
/// pg.terminate_backends and mariadb.kill_connections: this run's own server sessions ended
/// from a side connection, once or 'every'.
[[nodiscard]] constexpr bool is_session_kill(FaultKind kind) noexcept {
    return kind == FaultKind::pg_terminate_backends || kind == FaultKind::mariadb_kill_connections;
}

struct FaultSpec {
    FaultKind kind = FaultKind::latency;
    std::chrono::milliseconds at{0};  ///< offset into the phase
    /// How long ("for"); a restart has none: it ends when the command exits.
    std::chrono::milliseconds duration{0};
    std::string mode = "write";                     ///< sqlite.lock: "write" or "all"
    std::string table;                              ///< *.lock_table ("" = the phase's workload table)
    std::chrono::milliseconds every{0};             ///< pg.terminate_backends, mariadb.kill_connections: repeat period (0 = once)
    std::chrono::milliseconds latency{0};           ///< latency: added to each statement
    std::chrono::milliseconds jitter{0};            ///< latency: plus a uniform 0..jitter
    double probability = 0.1;                       ///< lost_replies: the share of statements whose reply is lost
    std::uint32_t leaks = 3;                        ///< leak: leases leaked
    std::uint32_t holds = 0;                        ///< leak: leases held legitimately, then returned
    std::chrono::milliseconds hold_for{0};          ///< leak: how long (0: half of [pool] leak_threshold)
    /// leak: starting returns once the pool reported (and, when it reclaims, revoked) every
    /// leaked lease; the fault then lasts until its phase ends (no 'for'). Only at = 0.
    bool await_detection = false;
    std::string node;                               ///< replica.*: the replica's node name ("" = replica-1)
    std::chrono::milliseconds timeout{60'000};      ///< starting or reverting may take this long
    std::vector<ExpectText> expect;                 ///< scoped to this fault's record
    SourcePlace where;                              ///< its [[phase.fault]] table
    std::vector<std::pair<std::string, SourcePlace>> key_where;  ///< where each key given was set

    /// Where one of `keys` was set, for an error about them: a --set among them first (it
    /// changed what the file said), else the first written, else the fault's table.
    [[nodiscard]] const SourcePlace& place_of(std::initializer_list<std::string_view> keys) const {
        const SourcePlace* written = nullptr;
        for (const auto& [key, place] : key_where) {
            if (std::find(keys.begin(), keys.end(), key) == keys.end()) continue;
            if (place.text.rfind("--set ", 0) == 0) return place;
            if (written == nullptr) written = &place;
        }
        return written != nullptr ? *written : where;
    }
};

/// The node a replica fault acts on: 'node', or "replica-1" when it names none.
[[nodiscard]] inline std::string replica_fault_node(const FaultSpec& spec) {
    return spec.node.empty() ? "replica-1" : spec.node;
}

struct PhaseSpec {
    std::string name;
    std::size_t threads = 10;
    std::optional<std::uint64_t> ops;
    std::optional<std::chrono::milliseconds> duration;
    double rate = 0;  ///< arrival rate, ops/s over all threads (0: as fast as possible)
    WorkloadSpec workload;
    std::optional<bool> writer_gate;  ///< writes queue at a WriterGate (default: [pool] writer_gate)
    /// Fail on a stall: a full sample interval that should hold 2+ operations (at the rate,
    /// or unpaced at the phase's average) completing none. Default: when paced and the
    /// phase has no faults.
    std::optional<bool> check_stalls;
    std::optional<std::chrono::milliseconds> sample_interval;  ///< default: the sampling rule
    std::vector<FaultSpec> faults;
    std::vector<ExpectText> expect;  ///< scoped to this phase's record
    SourcePlace where;
};

struct ScenarioSpec {
    std::string name;
    std::string description;
    std::vector<Backend> backends{Backend::sqlite, Backend::postgresql, Backend::mariadb, Backend::null};
    std::string db_url;  ///< [database] url; may be empty
    /// [database] replicas, shards, shard_urls, read_strategy (flags override them); after
    /// resolve_topology, concrete: the run's nodes (empty: one database).
    TopologySpec topology;
    PoolConfig pool;
    bool writer_gate = false;  ///< [pool] writer_gate: every phase's writes queue at one WriterGate
    std::vector<PhaseSpec> phases;
    std::vector<ExpectText> expect;          ///< run scope
    std::vector<ExpectText> abort_on_fail;   ///< also checked live; a failure stops the run
    std::chrono::milliseconds abort_grace{0};
    std::chrono::milliseconds error_backoff{10};  ///< a worker's pause after a failed operation
    std::string source;  ///< the file it came from
};

}  // namespace poolbench::cli
