// poolbench/internal/atomic_histogram.hpp — Histogram's lock-free recording twin.
//
// Thread-safety: record() may be called from any number of threads at once (relaxed
// atomics: each bucket count is exact, but a concurrent snapshot may see a record's
// bucket without its sum). snapshot_into() may run concurrently with record().
#pragma once

#include "poolbench/histogram.hpp"

#include <atomic>
#include <cstdint>
#include <memory>

namespace poolbench::internal {

class AtomicHistogram {
public:
    AtomicHistogram() : counts_(new std::atomic<std::uint64_t>[Histogram::bucket_count]) {
        for (std::size_t i = 0; i < Histogram::bucket_count; ++i) counts_[i].store(0, std::memory_order_relaxed);
    }

    void record(std::uint64_t value) noexcept {
        counts_[Histogram::bucket_of(value)].fetch_add(1, std::memory_order_relaxed);
        sum_.fetch_add(value, std::memory_order_relaxed);
        // Min and max change rarely once warm: a plain load skips the RMW almost always.
        std::uint64_t seen = max_.load(std::memory_order_relaxed);
        while (value > seen && !max_.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
        }
        seen = min_.load(std::memory_order_relaxed);
        while (value < seen && !min_.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
        }
    }

    /// Adds this histogram's counts to `into` (merging shards).
    void snapshot_into(Histogram& into) const {
        Histogram part;
        for (std::size_t i = 0; i < Histogram::bucket_count; ++i) {
            const std::uint64_t n = counts_[i].load(std::memory_order_relaxed);
            if (n) part.add_raw(i, n);
        }
        if (part.count() == 0) return;
        part.set_sum_min_max(sum_.load(std::memory_order_relaxed),
                             min_.load(std::memory_order_relaxed), max_.load(std::memory_order_relaxed));
        into.merge(part);
    }

private:
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
    std::atomic<std::uint64_t> sum_{0};
    std::atomic<std::uint64_t> max_{0};
    std::atomic<std::uint64_t> min_{UINT64_MAX};
};

}  // namespace poolbench::internal
