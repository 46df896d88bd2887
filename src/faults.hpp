// faults.hpp — the faults a scenario injects under load, each started and reverted by
// the scenario engine's fault clock (scenario_runner.cpp).
//
//   sqlite.lock            another process (this binary, `poolbench __hold-sqlite-lock`)
//                          holds the file's write lock (mode write) or every lock (mode
//                          all); it dies with its parent (PR_SET_PDEATHSIG and EOF on its
//                          stdin), so the lock never outlives poolbench
//   pg.lock_table          LOCK TABLE ... IN ACCESS EXCLUSIVE MODE from a side connection
//   pg.terminate_backends  pg_terminate_backend on the PIDs this run's own connections
//                          reported (BackendRegistry), never a match on application_name
//   mariadb.lock_table     LOCK TABLES ... WRITE from a side connection (UNLOCK TABLES ends it)
//   mariadb.kill_connections  KILL CONNECTION on the ids this run's own connections reported
//                          (CONNECTION_ID(), the same BackendRegistry)
//   server.restart         --restart-command, run with a timeout, its output kept; also
//                          spelt pg.restart (PostgreSQL only) and mariadb.restart (MariaDB only)
//   connection_storm       every pooled connection dropped and new ones refused
//   latency                added latency with jitter on each statement (FaultDriver)
//   leak                   leases leaked from poolbench_leak_injected_lease() by a thread of
//                          its own, beside legitimate holds; the reports classified at
//                          the end (leak_fault.hpp)
//
// Thread-safety: an ActiveFault is started, ticked and stopped by one thread (the fault
// clock). BackendRegistry is safe from any thread. TrackingDriver is a Driver (safe from
// any number of threads); its connections follow Connection's contract.
#pragma once

#include "report.hpp"
#include "scenario.hpp"

#include <poolbench/connection.hpp>
#include <poolbench/drivers.hpp>
#include <poolbench/pool.hpp>
#include <poolbench/router.hpp>
#include <poolbench/url.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace poolbench {
class ReplicaRouter;
}

namespace poolbench::cli {

/// The commands that act on one node of a primary/replica run (`poolbench run` flags). Each
/// runs under /bin/sh with POOLBENCH_NODE (its name, "replica-1"), POOLBENCH_NODE_HOST and
/// POOLBENCH_NODE_PORT added to the environment.
struct NodeCommands {
    std::string stop;     ///< --replica-stop-command: stops the node (replica.stop's start)
    std::string start;    ///< --replica-start-command: starts it again (replica.stop's end)
    std::string promote;  ///< --promote-command: promotes it ("": SELECT pg_promote() on it)
};

/// The server session ids of this run's open connections: PostgreSQL backend PIDs, MariaDB
/// connection ids.
class BackendRegistry {
public:
    void add(long pid);
    void remove(long pid);
    [[nodiscard]] std::vector<long> snapshot() const;

private:
    mutable std::mutex mu_;
    std::multiset<long> pids_;
};

/// Wraps a PostgreSQL or MariaDB driver: each new connection asks its session id once
/// (session_id_query) and is listed in the registry until it closes.
class TrackingDriver final : public Driver {
public:
    TrackingDriver(std::shared_ptr<Driver> inner, std::shared_ptr<BackendRegistry> registry);
    /// `SELECT pg_backend_pid()`, `SELECT CONNECTION_ID()`; empty for a backend without
    /// server sessions (no tracking there).
    [[nodiscard]] static std::string_view session_id_query(Backend backend) noexcept;
    std::unique_ptr<Connection> connect(std::chrono::steady_clock::time_point deadline) override;
    [[nodiscard]] Backend backend() const noexcept override { return inner_->backend(); }
    [[nodiscard]] std::string describe() const override { return inner_->describe(); }
    [[nodiscard]] std::string prepared_statements() const override { return inner_->prepared_statements(); }
    [[nodiscard]] std::optional<bool> behind_pooler() const override { return inner_->behind_pooler(); }

private:
    std::shared_ptr<Driver> inner_;
    std::shared_ptr<BackendRegistry> registry_;
};

/// A fault could not be started or reverted; the message says why.
class FaultFailure : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class LeakLog;

/// What faults act on. On a multi-node run (topology.hpp) driver, pool and db are the
/// primary's (shards: shard 0's), so single-database faults act there; `nodes` and `router`
/// name every node.
struct FaultTargets {
    std::shared_ptr<Driver> driver;           ///< the real driver: side connections
    std::shared_ptr<FaultSettings> settings;  ///< the FaultDriver in front of the pool
    Pool* pool = nullptr;
    DbUrl db;
    std::string restart_command;              ///< --restart-command ("" = none)
    std::shared_ptr<BackendRegistry> backends; ///< PostgreSQL and MariaDB only
    std::string self_exe;                     ///< this binary, for sqlite.lock's holder process
    const std::atomic<bool>* interrupt = nullptr;  ///< Ctrl-C (a leak fault's awaited detection stops on it)
    std::shared_ptr<LeakLog> leak_log;        ///< the pool's leak reports (when a phase has a leak fault)
    struct NodeTarget { std::string name; std::string role; DbUrl db; std::shared_ptr<Driver> driver; Pool* pool = nullptr; };
    std::vector<NodeTarget> nodes{};        ///< every node of a multi-node run ("primary", "replica-1", ..., "shard-0", ...); empty for one database
    const ReplicaRouter* router = nullptr;  ///< primary/replica runs
    NodeCommands node_commands{};             ///< replica.stop / replica.promote
};

/// A fault in effect. stop() reverts it and is called exactly once, also on failure and
/// Ctrl-C; tick() is called every few milliseconds while it lasts.
class ActiveFault {
public:
    ActiveFault() = default;
    ActiveFault(const ActiveFault&) = delete;
    ActiveFault& operator=(const ActiveFault&) = delete;
    virtual ~ActiveFault() = default;
    virtual void tick(std::chrono::steady_clock::time_point /*now*/) {}
    /// True when the fault ended by itself (a restart: its command exited).
    [[nodiscard]] virtual bool finished() { return false; }
    /// Reverts; throws FaultFailure when that failed (the report says so).
    virtual void stop() = 0;
    /// What the fault did, for the report.
    [[nodiscard]] virtual std::string detail() const { return {}; }
    /// When it began to take effect, when that is before starting returned (a leak fault:
    /// when its leasing began); none: when starting returned.
    [[nodiscard]] virtual std::optional<std::chrono::steady_clock::time_point> started_at() const { return std::nullopt; }
    /// Called once after a fault at 0 started, before the phase's load: waits for what the
    /// fault needs first (a leak fault's awaited detection). False when that did not happen:
    /// the phase's load must not run. The fault is in effect (and its window open) meanwhile.
    [[nodiscard]] virtual bool await_ready() { return true; }
    /// A leak fault's check, once stopped.
    [[nodiscard]] virtual std::optional<LeakCheckSection> leak_check() const { return std::nullopt; }
};

/// connection_storm, latency and lost_replies: FaultDriver's settings (process_faults.cpp).
[[nodiscard]] std::unique_ptr<ActiveFault> start_process_fault(const FaultSpec& spec, FaultTargets& targets);

/// The leak fault (leak_fault.hpp).
[[nodiscard]] std::unique_ptr<ActiveFault> start_leak_fault(const FaultSpec& spec, FaultTargets& targets);

/// Starts `spec`; throws FaultFailure when it cannot. `default_table` is the table a
/// *.lock_table fault locks when it names none (the phase's workload table).
[[nodiscard]] std::unique_ptr<ActiveFault> start_fault(const FaultSpec& spec, FaultTargets& targets,
                                                       const std::string& table);

/// The body of `poolbench __hold-sqlite-lock URL MODE TIMEOUT_MS`: takes the lock (giving up
/// after the timeout), prints "locked" (or "error: why"), holds it until its stdin closes,
/// rolls back. Returns the exit code.
[[nodiscard]] int hold_sqlite_lock(const std::string& url, const std::string& mode, std::chrono::milliseconds timeout);

}  // namespace poolbench::cli
