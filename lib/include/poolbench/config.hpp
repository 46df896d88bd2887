// poolbench/config.hpp — pool settings and their validation.
//
// Thread-safety: plain value types. Pool copies its PoolConfig at construction;
// validate() and RetryPolicy::why_invalid() only read, so const calls from several
// threads are safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace poolbench {

/// One lease held longer than the leak threshold, as the housekeeper saw it.
struct LeakReport {
    enum class Kind {
        suspected,  ///< held past leak_threshold (reported once per lease)
        returned,   ///< a reported lease came back after all
        reclaimed,  ///< held past leak_reclaim_after: reclaimed (its lease is revoked), capacity restored
    };
    Kind kind = Kind::suspected;
    std::string pool;
    std::chrono::milliseconds held{0};  ///< how long it had been held at the report
    long thread_id = 0;                 ///< the acquiring thread's kernel id (gettid)
    std::string thread_name;            ///< its name when it first acquired from any pool
    /// The acquiring call stack, innermost first, "function at file:line", with the
    /// pool's own frames removed. Empty when this acquire was not sampled.
    std::vector<std::string> stack;
};

/// How a failed operation is tried again: up to max_attempts tries in all, with
/// exponential backoff and full jitter between them — before retry n (1-based) a
/// uniformly random pause in [0, min(max, base * 2^(n-1))]. One shape for both retry
/// loops of the library: opening a connection (PoolConfig::connect_retry) and re-running
/// a transaction (run_in_transaction, transaction.hpp). The defaults here are
/// run_in_transaction's; connect_retry has its own.
struct RetryPolicy {
    int max_attempts = 10;  ///< 1 = no retries
    std::chrono::milliseconds base{2};
    std::chrono::milliseconds max{250};

    /// "" when the policy is usable, else what is wrong with it, naming the field:
    /// max_attempts below 1, a negative base, or max below base.
    [[nodiscard]] std::string why_invalid() const;
};

/// Which idle connection a new acquire prefers when it has no recently used one.
enum class IdleOrder { lifo, fifo };

struct PoolConfig {
    std::string name = "pool";  ///< appears in every error message and report
    std::size_t max_size = 10;  ///< hard cap on open connections, counting those being opened
    std::size_t min_idle = 0;   ///< the housekeeper keeps this many connections open
    /// SQLAlchemy's pool_size: with core_size < max_size, the connections above core_size
    /// are overflow, closed when returned instead of kept idle. 0: same as max_size.
    std::size_t core_size = 0;
    /// resize() may raise max_size up to this (slots are allocated up front). 0: max_size.
    std::size_t max_size_limit = 0;
    /// Cap on threads queued in acquire(); past it acquire() throws PoolOverloaded at once
    /// instead of piling up threads. 0: no cap.
    std::size_t max_waiting = 0;
    /// At most this many connections are opened at once (no thundering herd on a
    /// database that just came back); other acquirers queue for them.
    std::size_t max_connecting = 4;
    /// How long acquire() waits for a connection by default.
    std::chrono::milliseconds acquire_timeout{30'000};
    /// A connection idle for longer than this is pinged before it is handed out;
    /// 0 pings on every acquire. Connections used more recently skip the ping
    /// (HikariCP's alive-bypass window).
    std::chrono::milliseconds validation_interval{500};
    /// Fairness. Queued threads are always served in arrival order among themselves. A
    /// thread already running may still take a connection that is idle at that instant
    /// (this keeps throughput when threads outnumber cores, as HikariCP and Go's
    /// sync.Mutex do) — but once the front waiter has waited longer than this, every
    /// returned connection is handed straight to it and newcomers queue behind it until
    /// the queue drains. 0 makes hand-off strict at all times.
    std::chrono::microseconds starvation_threshold{10'000};
    /// Lifecycle (the housekeeper). An idle connection unused this long is closed, down
    /// to min_idle (0: never).
    std::chrono::milliseconds idle_timeout{600'000};
    /// A connection older than this is closed: at once when idle, on return when leased,
    /// never under its user (0: never). Each connection's limit is shortened by a random
    /// fraction up to max_lifetime_jitter so they do not all expire together.
    std::chrono::milliseconds max_lifetime{1'800'000};
    double max_lifetime_jitter = 0.05;
    /// Ping idle connections unused this long, to keep them (and NAT/firewall state) alive
    /// and find dead ones before a caller does (0: off).
    std::chrono::milliseconds keepalive_interval{0};

    /// Opening a connection: up to connect_retry.max_attempts tries per acquire, within
    /// its deadline, with exponential backoff and full jitter between them (RetryPolicy).
    /// A shutdown ends the pause at once; an open circuit breaker ends the retries.
    RetryPolicy connect_retry{.max_attempts = 3, .base = std::chrono::milliseconds{10},
                              .max = std::chrono::milliseconds{1'000}};
    /// Circuit breaker: after breaker_failures consecutive connection failures, acquires
    /// that would open a connection fail at once with CircuitOpen for breaker_cooldown;
    /// then one probe is let through (half-open), and its success closes the breaker.
    /// 0 failures: no breaker.
    int breaker_failures = 5;
    std::chrono::milliseconds breaker_cooldown{250};

    /// Roll back an open transaction when a lease comes back.
    bool reset_on_release = true;
    IdleOrder idle_order = IdleOrder::lifo;
    /// Leak detection. A lease held longer than leak_threshold is reported once (0: off).
    std::chrono::milliseconds leak_threshold{0};
    /// Reclaim a lease held this long and give its capacity back (0: never). Must be
    /// above leak_threshold. The revoked lease throws LeaseRevoked on use.
    std::chrono::milliseconds leak_reclaim_after{0};
    /// Capture the acquiring stack on one acquire in N (1: every acquire; 0: never —
    /// leaks are still detected, without a trace). Capture costs about 1-2 us.
    std::uint32_t leak_trace_every = 1;
    /// Called on the housekeeper thread for each LeakReport; must not block for long.
    std::function<void(const LeakReport&)> on_leak;

    /// How often the housekeeper wakes to top up min_idle when nothing else wakes it.
    std::chrono::milliseconds housekeeping_interval{1'000};

    /// Throws ConfigError naming the field, its value and what is allowed.
    void validate() const;
};

}  // namespace poolbench
