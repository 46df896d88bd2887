// pool/metrics.hpp — the pool's counters: per-thread-group shards for the hot path, and
// the counters the pool keeps under its mutex.
//
// Thread-safety: ShardedMetrics may be used from any number of threads at once (relaxed
// atomics, one cache line per shard). CoreCounters is plain data: its owner serialises
// access (the pool holds its mutex).
#pragma once

#include "poolbench/histogram.hpp"
#include "poolbench/internal/atomic_histogram.hpp"
#include "poolbench/stats.hpp"

#include <array>
#include <atomic>
#include <cstdint>

namespace poolbench::internal {

/// Counters of one group of threads, so threads on different cores do not share a line.
struct alignas(64) Shard {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> validation_failures{0};
    std::atomic<std::uint64_t> transaction_retries{0};
    // Threads inside a release (their lease's pool, not necessarily their own shard): an
    // orphaned pool is freed only when none is still running in it (core.cpp, lifetime).
    std::atomic<std::int64_t> releasing{0};
    AtomicHistogram acquire_wait;
    AtomicHistogram usage;
};

/// A small number per thread, fixed for its life (spreads threads over shards).
inline std::uint32_t this_thread_index() noexcept {
    static std::atomic<std::uint32_t> next{0};
    thread_local const std::uint32_t index = next.fetch_add(1, std::memory_order_relaxed);
    return index;
}

class ShardedMetrics {
public:
    /// The calling thread's shard (inline: the pool's hot path calls it on every lease).
    Shard& mine() noexcept { return shards_[this_thread_index() % count_]; }
    /// Sums the shards into `st` (hits, validation failures, retries, histograms).
    void fill(PoolStats& st) const;
    /// Releases running in this pool right now.
    [[nodiscard]] std::int64_t releasing() const noexcept;

private:
    static constexpr std::size_t count_ = 16;
    std::array<Shard, count_> shards_;
};

/// Counted under the pool's mutex.
struct CoreCounters {
    std::uint64_t created = 0;
    std::uint64_t misses = 0;
    std::uint64_t waits = 0;
    std::uint64_t timeouts = 0;
    std::uint64_t connect_failures = 0;
    std::uint64_t reconnects = 0;
    std::uint64_t keepalives = 0;
    std::uint64_t overloaded = 0;
    std::uint64_t circuit_rejections = 0;
    std::uint64_t reconnect_debt = 0;  // broken or invalid connections not yet replaced
    std::size_t peak_active = 0;
    std::size_t peak_total = 0;
    std::array<std::uint64_t, destroy_reason_count> destroyed{};
    Histogram connect;

    void destroyed_one(DestroyReason reason) noexcept { ++destroyed[static_cast<std::size_t>(reason)]; }
    /// Copies the counters into `st` (destroyed, created, misses, ...; not the gauges).
    void fill(PoolStats& st) const;
};

}  // namespace poolbench::internal
