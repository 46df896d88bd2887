// poolbench/internal/atomic_histogram.hpp — Histogram's lock-free recording twin.
//
// Thread-safety: record() may be called from any number of threads at once (relaxed
// atomics: each bucket count is exact, but a concurrent snapshot may see a record's
// bucket without its sum). record_exclusive() is for one recording thread at a time
// (never mixed with record() on the same histogram). snapshot_into() and bucket() may
// run concurrently with either.
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

    /// record() for a histogram that one thread at a time records into (its owner, or
    /// threads that serialise their records with a lock): a load and a store per field,
    /// no locked instruction, while readers may still take snapshots concurrently.
    void record_exclusive(std::uint64_t value) noexcept {
        bump(counts_[Histogram::bucket_of(value)], 1);
        bump(sum_, value);
        if (value > max_.load(std::memory_order_relaxed)) max_.store(value, std::memory_order_relaxed);
        if (value < min_.load(std::memory_order_relaxed)) min_.store(value, std::memory_order_relaxed);
    }

    /// The count in one bucket so far (a concurrent reader's view: it only grows).
    [[nodiscard]] std::uint64_t bucket(std::size_t index) const noexcept {
        return counts_[index].load(std::memory_order_relaxed);
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
    static void bump(std::atomic<std::uint64_t>& a, std::uint64_t n) noexcept {
        a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }

    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
    std::atomic<std::uint64_t> sum_{0};
    std::atomic<std::uint64_t> max_{0};
    std::atomic<std::uint64_t> min_{UINT64_MAX};
};

}  // namespace poolbench::internal
