// pool/leak_tracker.hpp — who holds each lease and since when; suspected leaks reported
// once, late returns reported, and the reports kept for Pool::leaks().
//
// The pool calls the tracker at every lease and return, and the housekeeper calls
// inspect() on each leased slot. With leak_threshold 0 the tracker is off and every call
// returns at once (the disabled case lives here, not at the call sites). Reclaiming a
// lease (taking its connection back past leak_reclaim_after) changes the pool's slots, so
// the pool does that; inspect() says when.
//
// Thread-safety: every member may be called from any number of threads at once. A slot's
// trace is written by the thread the lease was handed to and read by the housekeeper,
// under the slot's own small mutex. The report list has its own mutex, taken after the
// pool's when both are held, never before.
#pragma once

#include "../leak_trace.hpp"
#include "poolbench/config.hpp"
#include "poolbench/internal/mutex.hpp"
#include "poolbench/stats.hpp"

#include <atomic>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace poolbench::internal {

/// The leak-tracking part of a slot.
struct LeaseTrace {
    struct Holder {
        std::uint32_t word = 0;  // the lease this describes
        std::int64_t leased_ns = 0;
        long thread_id = 0;
        std::string thread_name;
        RawStack stack;
    };
    std::atomic<std::uint32_t> reported_word{0};  // the lease reported as suspected
    Mutex mu;
    Holder holder POOLBENCH_GUARDED_BY(mu);
};

class LeakTracker {
public:
    explicit LeakTracker(const PoolConfig& config);

    [[nodiscard]] bool enabled() const noexcept { return threshold_ns_ > 0; }
    /// Leases held past leak_reclaim_after are taken back (and may be found revoked).
    [[nodiscard]] bool reclaims() const noexcept { return reclaim_ns_ > 0; }
    /// How often the housekeeper should look: a quarter of the threshold, 5 ms to 1 s.
    [[nodiscard]] std::int64_t check_interval_ns() const noexcept { return check_ns_; }

    /// Lease `word` of this slot was handed to the calling thread at `now`. (Inline, so a
    /// disabled tracker costs the pool's hot path one predictable branch, not a call.)
    void on_lease(LeaseTrace& t, std::uint32_t word, std::int64_t now) noexcept {
        if (enabled()) record_lease(t, word, now);
    }
    /// Lease `word` (leased at `leased_ns`) is being returned in time: a "returned" report
    /// if it had been reported suspected.
    void on_return(LeaseTrace& t, std::uint32_t word, std::int64_t leased_ns, std::int64_t now) noexcept {
        if (enabled() && t.reported_word.load(std::memory_order_acquire) == word) publish_returned(now - leased_ns);
    }
    /// Lease `word` was reclaimed and its holder has now returned it.
    void on_reclaimed_return(LeaseTrace& t, std::uint32_t word, std::int64_t now) noexcept;

    /// What the housekeeper should do about one leased slot.
    struct Finding {
        LeakReport report;  // pool, held, thread filled in
        RawStack stack;
        bool suspect = false;  // report it as suspected (first time past the threshold)
        bool reclaim = false;  // held past leak_reclaim_after: take it back
    };
    /// Looks at lease `word` of a slot as of `now`; nothing when its holder has not written
    /// the trace yet, or nothing is due. Marks a suspect as reported.
    std::optional<Finding> inspect(LeaseTrace& t, std::uint32_t word, std::int64_t now) noexcept;
    /// Publishes findings: suspects with their stacks symbolized, then `reclaimed` ones.
    void publish(std::vector<Finding>& findings) noexcept;
    /// Counts a reclaim at the moment the pool takes the lease back (with the pool's lock
    /// held, so stats() sees the count and the revoked lease together).
    void count_reclaim() noexcept;

    /// The reports so far, oldest first (the last 1000).
    [[nodiscard]] std::vector<LeakReport> reports() const;
    void fill(PoolStats& st) const;

private:
    void record_lease(LeaseTrace& t, std::uint32_t word, std::int64_t now) noexcept;
    void publish(LeakReport report) noexcept;
    /// A "returned" report for a lease held `held_ns`, by the calling (returning) thread.
    void publish_returned(std::int64_t held_ns) noexcept;

    const std::string pool_;
    const std::int64_t threshold_ns_;
    const std::int64_t reclaim_ns_;
    const std::int64_t check_ns_;
    const std::uint32_t trace_every_;
    const std::function<void(const LeakReport&)> on_leak_;

    mutable Mutex mu_;
    std::deque<LeakReport> reports_ POOLBENCH_GUARDED_BY(mu_);
    std::uint64_t detected_ POOLBENCH_GUARDED_BY(mu_) = 0;
    std::uint64_t returned_late_ POOLBENCH_GUARDED_BY(mu_) = 0;
    std::uint64_t reclaimed_ POOLBENCH_GUARDED_BY(mu_) = 0;
};

}  // namespace poolbench::internal
