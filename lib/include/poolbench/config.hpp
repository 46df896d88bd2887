// poolbench/config.hpp — pool settings and their validation.
//
// Thread-safety: a plain value type. Pool copies it at construction.
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
        reclaimed,  ///< held past leak_reclaim_after: revoked, capacity restored
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

/// Which idle connection a new acquire prefers when it has no recently used one.
enum class IdleOrder { lifo, fifo };

struct PoolConfig {
    std::string name = "pool";  ///< appears in every error message and report
    std::size_t max_size = 10;  ///< hard cap on open connections, counting those being opened
    std::size_t min_idle = 0;   ///< the housekeeper keeps this many connections open
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
    std::chrono::microseconds starvation_threshold{1'000};
    /// Roll back an open transaction when a lease comes back.
    bool reset_on_release = true;
    IdleOrder idle_order = IdleOrder::lifo;
    /// Leak detection. A lease held longer than leak_threshold is reported once (0: off).
    std::chrono::milliseconds leak_threshold{0};
    /// Revoke a lease held this long and give its capacity back (0: never). Must be
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
