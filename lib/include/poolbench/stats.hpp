// poolbench/stats.hpp — a snapshot of a pool's counters, gauges and latency histograms.
//
// Thread-safety: a plain value type returned by Pool::stats().
#pragma once

#include "poolbench/histogram.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace poolbench {

/// Why the pool closed a connection.
enum class DestroyReason : std::size_t {
    broken,       ///< the connection reported itself broken, or the holder invalidated it
    validation,   ///< a ping before hand-out failed
    reset,        ///< rolling back on release failed
    idle,         ///< idle longer than idle_timeout (housekeeper)
    lifetime,     ///< older than max_lifetime (housekeeper)
    shutdown,     ///< the pool shut down
    surplus,      ///< above core_size (overflow) or above max_size after a resize, on return
    evicted,      ///< evict_all()
    revoked,      ///< reclaimed from a leaked lease; destroyed when the revoked lease came back
    count_
};
inline constexpr std::size_t destroy_reason_count = static_cast<std::size_t>(DestroyReason::count_);
[[nodiscard]] std::string_view to_string(DestroyReason r) noexcept;

enum class BreakerState { closed, open, half_open };
[[nodiscard]] std::string_view to_string(BreakerState s) noexcept;

struct BreakerTransition {
    std::chrono::system_clock::time_point at;
    BreakerState to = BreakerState::closed;
    std::string reason;  ///< e.g. the connection error that opened it
};

struct PoolStats {
    // Counters since the pool was made.
    std::uint64_t acquires = 0;     ///< leases handed out (hits + misses)
    std::uint64_t hits = 0;         ///< served by an existing connection
    std::uint64_t misses = 0;       ///< had to open a new connection
    std::uint64_t waits = 0;        ///< had to queue for a connection
    std::uint64_t timeouts = 0;     ///< gave up at the acquire deadline
    std::uint64_t created = 0;
    std::uint64_t connect_failures = 0;
    std::uint64_t validation_failures = 0;
    std::uint64_t destroyed = 0;
    std::array<std::uint64_t, destroy_reason_count> destroyed_by_reason{};
    std::uint64_t transaction_retries = 0;  ///< transaction bodies re-run (run_in_transaction)
    std::uint64_t keepalives = 0;  ///< keepalive pings of idle connections
    std::uint64_t reconnects = 0;  ///< connections opened to replace broken or invalid ones
    std::uint64_t overloaded = 0;  ///< acquires refused by max_waiting
    std::uint64_t circuit_rejections = 0;  ///< acquires refused while the breaker was open
    std::uint64_t leaks_detected = 0;       ///< leases reported past leak_threshold
    std::uint64_t leaks_returned_late = 0;  ///< reported leases that came back afterwards
    std::uint64_t leaks_reclaimed = 0;      ///< leases reclaimed past leak_reclaim_after
    std::size_t revoked_outstanding = 0;    ///< revoked leases not yet returned
    // Gauges at the moment of the snapshot.
    std::size_t total = 0;       ///< open connections plus those being opened
    std::size_t active = 0;      ///< leased
    std::size_t idle = 0;
    std::size_t pending = 0;     ///< being opened
    std::size_t waiting = 0;     ///< threads queued in acquire()
    std::size_t peak_active = 0; ///< highest `active` observed (see Pool::stats)
    std::size_t peak_total = 0;  ///< highest `total` ever; never above max_size
    std::size_t max_size = 0;
    std::size_t core_size = 0;
    std::size_t min_idle = 0;
    std::size_t overflow_active = 0;  ///< leased connections above core_size
    bool closed = false;
    bool suspended = false;
    BreakerState breaker = BreakerState::closed;
    std::uint64_t breaker_transitions = 0;
    /// The most recent breaker transitions (at most 32), oldest first.
    std::vector<BreakerTransition> breaker_history;
    // Latencies in nanoseconds.
    Histogram acquire_wait;  ///< from acquire() call to lease in hand
    Histogram usage;         ///< from lease in hand to its return
    Histogram connect;       ///< opening one connection

    [[nodiscard]] double hit_ratio() const noexcept {
        return acquires ? static_cast<double>(hits) / static_cast<double>(acquires) : 0.0;
    }
};

}  // namespace poolbench
