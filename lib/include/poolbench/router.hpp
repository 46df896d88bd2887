// poolbench/router.hpp — a primary/replica router over pools: writes and transactions go to
// the primary, reads to a healthy replica; and read-your-writes sessions.
//
// Usage:
//     auto primary = registry.create("primary", "postgresql://app@db1/app");
//     auto replica = registry.create("replica-1", "postgresql://app@db2/app");
//     poolbench::ReplicaRouter router(primary, {replica}, {.strategy = poolbench::ReadStrategy::round_robin});
//     router.wait_for_health_checks(std::chrono::seconds(5));  // else reads start on the primary
//     auto n = router.read([](poolbench::Connection& c) { return c.query("SELECT count(*) FROM t").int_at(0); });
//     router.write([](poolbench::Connection& c) { c.execute("INSERT INTO t VALUES (1)"); });
//     poolbench::RouterSession me = router.session();       // read-your-writes
//     me.write([](poolbench::Connection& c) { c.execute("UPDATE profile SET ..."); });
//     me.read([](poolbench::Connection& c) { ... });         // on the primary for read_your_writes
//
// Routing. write(), acquire_write() and transaction() use the primary, always; the router
// never re-runs them (transaction() is run_in_transaction on the primary: its re-runs are
// only those of the caller's RetryPolicy, for conflicts the database rolled back, never
// for a broken connection). read() and acquire_read() use a replica in rotation, chosen by
// RouterConfig::strategy: round_robin (a shared counter, skipping replicas out of
// rotation), random (uniform among those in rotation), or least_active (fewest leases out
// through this router; ties broken round robin). With no replica in rotation a read goes
// to the primary (NoReplicaPolicy::use_primary, counted in primary_fallbacks) or throws
// NoHealthyReplica (NoReplicaPolicy::fail).
//
// Leaving and returning. A replica leaves the rotation when
//   - a read cannot get a connection there (ConnectError: refused, timed out, or its pool's
//     circuit breaker is open): the read goes to another node before anything ran;
//   - a read's connection breaks (QueryError of kind connection_lost): the replica is
//     suspect, and the read is re-run once on another node (see Retries);
//   - its health check fails to connect or to run, finds it is a primary
//     (pg_is_in_recovery() is false: promoted, or a misconfigured URL), or finds it too far
//     behind: replay lag in bytes, pg_wal_lsn_diff(pg_last_wal_receive_lsn(),
//     pg_last_wal_replay_lsn()) > max_lag_bytes (a NULL receive position — not streaming
//     from a primary — counts as too far behind; a negative difference, seen right after
//     a standby restarts, as 0). Bytes, not a timestamp: replay_timestamp lag keeps growing
//     on a primary that is merely idle. It counts only WAL the standby has received: WAL the
//     primary has not sent yet (with synchronous_commit=off, up to wal_writer_delay) is
//     invisible to it, so a replica in rotation may still miss a write just acknowledged —
//     that is what RouterSession is for;
//   - its health check has run longer than health_timeout (a server that accepts
//     connections but does not answer): it is out from that moment, without waiting for
//     the check to end.
// It returns only when a health check passes: connected, a standby, lag within bounds. A
// failure seen by a reader wakes the replica's checker at once, so a passing re-check
// brings a replica back quickly after a false alarm (one killed backend).
//
// Health checks. Each replica has a checker thread owned by the router (started by the
// constructor, stopped and joined by the destructor): it checks at once, then every
// health_interval, or sooner when a reader reports a failure. A check leases a connection
// from the replica's pool (acquire with health_timeout, so connecting is bounded and an
// open breaker answers at once) and runs RouterConfig::health_check on it: for PostgreSQL
// one query (pg_is_in_recovery() and the byte lag above); for other backends ping() (they
// have no replicas to ask: role "standby", lag 0). Readers never wait for a check: they
// read the replica's state from an atomic. A check that cannot get a lease within
// health_timeout because the pool is busy serving reads is inconclusive (counted, state
// kept): taking a replica out for being popular would only move its load elsewhere and
// back. Until its first check ends a replica is out of rotation (state unchecked):
// wait_for_health_checks() waits for every first check.
//
// Failover bounds (H = health_interval, T = health_timeout, C = the replica pool's
// breaker_cooldown, A = its connect_retry.max_attempts):
//   - a dead replica is out of rotation: at once when a read meets it; with no reads,
//     within H + T (the next check fails to connect within its timeout). A reader that
//     meets it loses at most its pool's connect attempts, A x the connect timeout (the
//     URL's connect_timeout, capped by the acquire deadline) plus the backoff between
//     attempts, before its read goes to another node; a refused connection (server down,
//     host up) costs milliseconds. A hung replica is out T after its check began.
//   - a recovered replica is back in rotation within H + C + one check: the checker's
//     next acquire is refused until the breaker's cooldown ends, then its probe connects
//     and the check passes (a restarted PostgreSQL standby also needs its WAL receiver to
//     stream again, which it does within wal_retrieve_retry_interval).
//
// Retries. A read whose connection broke (QueryError::kind() == connection_lost; its
// connection is closed) is re-run once: on another node in rotation when there is one,
// else on the primary (with NoReplicaPolicy::fail, the original error is thrown instead),
// else — the primary itself broke and no replica is in rotation — on the primary with a
// new connection. A session read pinned to the primary is re-run on the primary. So a read
// body may run twice: it must have no side effects outside its statements. Nothing else
// is re-run: not other errors (a read that hits 25006 read_only is a read that writes,
// a caller's bug; a statement_timeout is not retried on a second node to double the
// load), not writes, not transactions.
//
// Read-your-writes. A RouterSession sends its reads to the primary for
// RouterConfig::read_your_writes after each of its writes or transactions ends (succeeded
// or not: a failed COMMIT may still have committed), as Rails' DatabaseSelector does with
// its delay (2 s there, here by default). Reads of other sessions and of the router itself
// are not affected.
//
// What this takes from others, and what it does better:
//   - Npgsql's multi-host data source (TargetSessionAttributes.PreferStandby, Load Balance
//     Hosts) and libpq's target_session_attrs=prefer-standby: a server is a standby when
//     pg_is_in_recovery() says so; fall back to the primary when no standby is up. Npgsql
//     re-queries a host's role on the connection-open path (Host Recheck Seconds, 10 s),
//     so one caller pays for the check; here checks run on the router's own threads and
//     readers only read an atomic. Neither looks at replay lag; this router takes a
//     replica that is too far behind out of rotation.
//   - Npgsql never re-runs a failed command on another host ("you must always be prepared
//     to catch I/O-related exceptions"), and Django/SQLAlchemy routers only pick a
//     database name (db_for_read/db_for_write) with no health at all. Here a read whose
//     connection broke is re-run once on another node, because the router knows it is a
//     read; a write is never re-run, as there.
//   - HikariCP / Go's database/sql: the per-pool circuit breaker and connect retry stay
//     in the Pool (config.hpp); the router reads their verdict (a ConnectError) instead of
//     keeping a second failure detector, so both failover bounds come from settings the
//     pool already has plus the health interval.
//   - Rails' DatabaseSelector: read-your-writes by a delay after the last write; here per
//     session object rather than per HTTP session, usable from several threads, and a
//     failed write pins too.
//   - Every node counts the reads and writes it served and the times it left the
//     rotation (stats()), for per-node figures; none of the above reports that.
//
// Thread-safety: every member function of ReplicaRouter may be called from any number of
// threads at once; its destructor must not run concurrently with other calls, and every
// RoutedLease and RouterSession made from it must be gone before it is destroyed (the
// pools themselves are shared_ptr and may outlive it). A RouterSession may be used from
// several threads at once (its last write time is atomic). A RoutedLease, like a Lease,
// is used by one thread at a time and may be moved between threads. The body passed to
// read/write runs on the calling thread; a HealthCheck runs on the checker threads (see
// HealthCheck). RouterConfig, NodeStats and RouterStats are plain values; NoHealthyReplica,
// like every exception of the library, is immutable.
#pragma once

#include "poolbench/config.hpp"
#include "poolbench/connection.hpp"
#include "poolbench/error.hpp"
#include "poolbench/pool.hpp"
#include "poolbench/transaction.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace poolbench {

/// How a read picks among the replicas in rotation.
enum class ReadStrategy { round_robin, random, least_active };
/// What a read does when no replica is in rotation.
enum class NoReplicaPolicy { use_primary, fail };

[[nodiscard]] std::string_view to_string(ReadStrategy s) noexcept;
[[nodiscard]] std::string_view to_string(NoReplicaPolicy p) noexcept;

/// What a health check learned about a replica.
struct ReplicaHealth {
    bool in_recovery = true;               ///< false: the server is a primary, not a standby
    std::optional<std::int64_t> lag_bytes;  ///< received but not yet replayed; nullopt: unknown
};
/// Runs on a connection leased from `replica` (the pool being checked); throws to fail the
/// check. Called on that replica's checker thread; the checks of different replicas run at
/// the same time, so a check shared by several replicas must be thread-safe.
using HealthCheck = std::function<ReplicaHealth(Connection& conn, const Pool& replica)>;
/// The check used when RouterConfig::health_check is empty. postgresql: one query,
/// SELECT pg_is_in_recovery(), pg_wal_lsn_diff(pg_last_wal_receive_lsn(),
/// pg_last_wal_replay_lsn()) (lag nullopt when NULL, 0 when negative); other backends:
/// ping() (throws QueryError when it fails), in_recovery true, lag 0.
[[nodiscard]] HealthCheck default_health_check(Backend backend);

struct RouterConfig {
    ReadStrategy strategy = ReadStrategy::round_robin;
    NoReplicaPolicy no_replica = NoReplicaPolicy::use_primary;
    /// How often each replica is checked when nothing wakes its checker sooner.
    std::chrono::milliseconds health_interval{1'000};
    /// A check's bound: its acquire (hence its connect) waits at most this long, and a check
    /// running longer takes the replica out of rotation until one passes.
    std::chrono::milliseconds health_timeout{2'000};
    /// A replica whose replay lag is above this many bytes leaves the rotation. Negative:
    /// lag is not looked at (nor is an unknown lag).
    std::int64_t max_lag_bytes = 16 * 1024 * 1024;
    /// How long a RouterSession's reads stay on the primary after its write (0: never).
    std::chrono::milliseconds read_your_writes{2'000};
    /// Re-run a read once on another node when its connection broke.
    bool retry_broken_reads = true;
    /// Empty: default_health_check(the replica driver's backend).
    HealthCheck health_check{};

    /// Throws ConfigError naming the field: health_interval and health_timeout must be
    /// positive, read_your_writes not negative.
    void validate() const;
};

enum class NodeRole { primary, replica };
/// A replica's state as its router sees it. The primary is always `healthy` (the router
/// does not check it: its pool's breaker says how it is).
enum class NodeState {
    unchecked,   ///< no check has ended yet: out of rotation
    healthy,     ///< in rotation
    down,        ///< a connect or a check failed
    suspect,     ///< a read's connection broke; re-check pending
    not_standby, ///< the check found a primary (pg_is_in_recovery() false)
    lagging,     ///< replay lag above max_lag_bytes, or unknown
};
[[nodiscard]] std::string_view to_string(NodeRole r) noexcept;
[[nodiscard]] std::string_view to_string(NodeState s) noexcept;

/// One change of a replica's state (NodeStats::history). Both clocks: `at` to show,
/// `at_steady` to measure durations against other steady_clock times (a fault's start).
struct RotationEvent {
    std::chrono::system_clock::time_point at{};
    std::chrono::steady_clock::time_point at_steady{};
    NodeState from = NodeState::unchecked;
    NodeState to = NodeState::unchecked;
    std::string reason;  ///< why, when `to` is not healthy ("" when it is)
};

/// How many state changes a node keeps (NodeStats::history): the most recent ones.
inline constexpr std::size_t rotation_history_size = 32;

/// One node's figures (RouterStats::nodes).
struct NodeStats {
    std::string name;  ///< its pool's config().name
    NodeRole role = NodeRole::replica;
    NodeState state = NodeState::unchecked;
    bool in_rotation = false;  ///< a replica that reads may go to now (false for the primary)
    bool check_overdue = false;  ///< a check has run longer than health_timeout
    std::string reason;        ///< why it is out of rotation (the error or finding); "" when in
    std::chrono::system_clock::time_point since{};  ///< when `state` last changed
    std::optional<std::int64_t> lag_bytes;         ///< from the last check that got one
    std::uint64_t reads = 0;          ///< read bodies that returned on this node
    std::uint64_t read_failures = 0;  ///< read bodies that threw here (including re-run ones)
    std::uint64_t writes = 0;         ///< write and transaction bodies run here (the primary)
    std::uint64_t checks = 0;         ///< health checks ended
    std::uint64_t check_failures = 0; ///< checks that failed (connect, query, role, lag)
    std::uint64_t checks_inconclusive = 0;  ///< checks that found the pool too busy for a lease
    std::uint64_t left_rotation = 0;  ///< times it went from healthy to any other state
    std::int64_t active = 0;          ///< leases out through the router now
    /// Its most recent state changes (at most rotation_history_size), oldest first; the
    /// first is unchecked -> its first check's verdict. Empty for the primary. A check
    /// running past health_timeout takes a replica out of rotation without a state change
    /// (check_overdue), so that is not an event here.
    std::vector<RotationEvent> history;
};

struct RouterStats {
    std::vector<NodeStats> nodes;  ///< nodes[0] is the primary, then the replicas in order
    std::uint64_t reads_retried = 0;      ///< reads re-run after their connection broke
    std::uint64_t reads_rerouted = 0;     ///< reads moved off a replica that gave no connection
    std::uint64_t primary_fallbacks = 0;  ///< reads the primary served because no replica was in rotation
    std::uint64_t pinned_reads = 0;       ///< session reads sent to the primary by read-your-writes
    std::uint64_t no_replica_errors = 0;  ///< reads refused with NoHealthyReplica
};

/// No replica is in rotation and RouterConfig::no_replica is `fail`. A ConnectError, so
/// error_kind() says connection_refused.
class NoHealthyReplica : public ConnectError {
public:
    using ConnectError::ConnectError;
};

class ReplicaRouter;
class RouterSession;

namespace internal {
class RouterCore;
struct RouterNode;

/// A non-owning reference to a `void(Connection&)` callable.
class ConnBodyRef {
public:
    template <class F>
    explicit ConnBodyRef(F& f) noexcept
        : obj_(static_cast<void*>(std::addressof(f))), call_([](void* o, Connection& c) { (*static_cast<F*>(o))(c); }) {}
    void operator()(Connection& c) const { call_(obj_, c); }

private:
    void* obj_;
    void (*call_)(void*, Connection&);
};

void router_read(RouterCore& core, RouterSession* session, ConnBodyRef body);
void router_write(RouterCore& core, RouterSession* session, ConnBodyRef body);
void router_transaction(RouterCore& core, RouterSession* session, const TxOptions& options, TxBodyRef body,
                        const RetryPolicy& policy);

/// Calls `run` with a ConnBodyRef over `body`, keeping body's result (if any) across re-runs.
template <class Body, class Run>
std::invoke_result_t<Body&, Connection&> with_result(Body& body, Run&& run) {
    using Result = std::invoke_result_t<Body&, Connection&>;
    if constexpr (std::is_void_v<Result>) {
        auto call = [&body](Connection& c) { body(c); };
        run(ConnBodyRef(call));
    } else {
        std::optional<Result> result;
        auto call = [&body, &result](Connection& c) {
            result.reset();
            result.emplace(body(c));
        };
        run(ConnBodyRef(call));
        return std::move(*result);
    }
}
}  // namespace internal

/// A Lease on one node of a router, counted in that node's `active` while held.
/// Thread-safety as Lease; must be released before its router is destroyed.
class RoutedLease {
public:
    RoutedLease() noexcept = default;
    RoutedLease(const RoutedLease&) = delete;
    RoutedLease& operator=(const RoutedLease&) = delete;
    RoutedLease(RoutedLease&& other) noexcept
        : lease_(std::move(other.lease_)), node_(std::exchange(other.node_, nullptr)), index_(other.index_) {}
    RoutedLease& operator=(RoutedLease&& other) noexcept {
        if (this != &other) {
            release();
            lease_ = std::move(other.lease_);
            node_ = std::exchange(other.node_, nullptr);
            index_ = other.index_;
        }
        return *this;
    }
    ~RoutedLease() { release(); }

    Connection& operator*() & { return *lease_; }
    Connection* operator->() & { return &*lease_; }
    Connection& connection() & { return *lease_; }
    Connection& operator*() && = delete;
    Connection* operator->() && = delete;
    Connection& connection() && = delete;
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(lease_); }

    /// Which node: 0 the primary, 1.. the replicas in the order given to the router.
    [[nodiscard]] std::size_t node() const noexcept { return index_; }
    /// The lease itself (for Transaction and the like).
    [[nodiscard]] Lease& lease() & noexcept { return lease_; }
    void invalidate() noexcept { lease_.invalidate(); }
    /// Returns the connection now. Idempotent; never throws.
    void release() noexcept;

private:
    friend class internal::RouterCore;
    RoutedLease(Lease lease, internal::RouterNode* node, std::size_t index) noexcept
        : lease_(std::move(lease)), node_(node), index_(index) {}

    Lease lease_;
    internal::RouterNode* node_ = nullptr;
    std::size_t index_ = 0;
};

class ReplicaRouter {
public:
    /// Starts one checker thread per replica. Throws ConfigError for a null pool, a pool
    /// given twice (or as both primary and replica), or a config validate() rejects.
    /// `replicas` may be empty: every read then follows no_replica.
    ReplicaRouter(std::shared_ptr<Pool> primary, std::vector<std::shared_ptr<Pool>> replicas,
                  RouterConfig config = {});
    ReplicaRouter(const ReplicaRouter&) = delete;
    ReplicaRouter& operator=(const ReplicaRouter&) = delete;
    /// Stops the checkers: a check running is interrupted (Connection::interrupt) and
    /// joined. Shuts no pool down.
    ~ReplicaRouter();

    /// Runs body(Connection&) on a replica (see the top of this file) and returns its
    /// result; may re-run it once on another node. Throws what acquire or the body threw,
    /// or NoHealthyReplica.
    template <class Body>
    std::invoke_result_t<Body&, Connection&> read(Body&& body) {
        return internal::with_result(body, [this](internal::ConnBodyRef b) { internal::router_read(*core_, nullptr, b); });
    }
    /// Runs body(Connection&) on the primary, once.
    template <class Body>
    std::invoke_result_t<Body&, Connection&> write(Body&& body) {
        return internal::with_result(body, [this](internal::ConnBodyRef b) { internal::router_write(*core_, nullptr, b); });
    }
    /// run_in_transaction(primary, options, body, policy), counted as a write.
    template <class Body>
    std::invoke_result_t<Body&, Transaction&> transaction(TxOptions options, Body&& body, RetryPolicy policy = {}) {
        return run_tx(*core_, nullptr, options, body, policy);
    }

    /// A lease on the replica a read would use now (no re-run: the caller runs the
    /// statements). Throws as acquire, or NoHealthyReplica.
    [[nodiscard]] RoutedLease acquire_read();
    /// A lease on the primary.
    [[nodiscard]] RoutedLease acquire_write();

    /// A read-your-writes session over this router.
    [[nodiscard]] RouterSession session();

    /// Waits until every replica's first check has ended (whatever it found). True then;
    /// false at the timeout.
    bool wait_for_health_checks(std::chrono::milliseconds timeout);
    /// Wakes every checker to check now (after a known change, e.g. a restarted replica).
    void check_now() noexcept;

    [[nodiscard]] RouterStats stats() const;
    [[nodiscard]] Pool& primary() const noexcept;
    /// Replica i (0-based, as given); throws UsageError when out of range.
    [[nodiscard]] Pool& replica(std::size_t i) const;
    [[nodiscard]] std::size_t replica_count() const noexcept;
    [[nodiscard]] const RouterConfig& config() const noexcept;

private:
    friend class RouterSession;
    template <class Body>
    static std::invoke_result_t<Body&, Transaction&> run_tx(internal::RouterCore& core, RouterSession* session,
                                                           const TxOptions& options, Body& body,
                                                           const RetryPolicy& policy) {
        using Result = std::invoke_result_t<Body&, Transaction&>;
        if constexpr (std::is_void_v<Result>) {
            auto call = [&body](Transaction& tx) { body(tx); };
            internal::router_transaction(core, session, options, internal::TxBodyRef(call), policy);
        } else {
            std::optional<Result> result;
            auto call = [&body, &result](Transaction& tx) {
                result.reset();
                result.emplace(body(tx));
            };
            internal::router_transaction(core, session, options, internal::TxBodyRef(call), policy);
            return std::move(*result);
        }
    }

    std::unique_ptr<internal::RouterCore> core_;
};

/// Read-your-writes over a ReplicaRouter: the same calls, but after a write or transaction
/// through the session its reads go to the primary for RouterConfig::read_your_writes.
class RouterSession {
public:
    explicit RouterSession(ReplicaRouter& router) noexcept : core_(router.core_.get()) {}
    /// Moves the session (with its pin). Not copyable: a copy's writes would not pin this one.
    RouterSession(RouterSession&& other) noexcept
        : core_(other.core_), last_write_ns_(other.last_write_ns_.load(std::memory_order_relaxed)) {}
    RouterSession(const RouterSession&) = delete;
    RouterSession& operator=(const RouterSession&) = delete;
    RouterSession& operator=(RouterSession&&) = delete;

    template <class Body>
    std::invoke_result_t<Body&, Connection&> read(Body&& body) {
        return internal::with_result(body, [this](internal::ConnBodyRef b) { internal::router_read(*core_, this, b); });
    }
    template <class Body>
    std::invoke_result_t<Body&, Connection&> write(Body&& body) {
        return internal::with_result(body, [this](internal::ConnBodyRef b) { internal::router_write(*core_, this, b); });
    }
    template <class Body>
    std::invoke_result_t<Body&, Transaction&> transaction(TxOptions options, Body&& body, RetryPolicy policy = {}) {
        return ReplicaRouter::run_tx(*core_, this, options, body, policy);
    }
    /// A lease on the primary while pinned, else as ReplicaRouter::acquire_read.
    [[nodiscard]] RoutedLease acquire_read();
    /// A lease on the primary; pins the session from now (the write is the caller's).
    [[nodiscard]] RoutedLease acquire_write();

    /// Pins the session's reads to the primary from now (a write made some other way).
    void note_write() noexcept;
    /// True while the session's reads go to the primary.
    [[nodiscard]] bool pinned() const noexcept;

private:
    friend class internal::RouterCore;
    internal::RouterCore* core_;
    std::atomic<std::int64_t> last_write_ns_{0};  ///< steady clock, 0: never wrote
};

inline RouterSession ReplicaRouter::session() { return RouterSession(*this); }

}  // namespace poolbench
