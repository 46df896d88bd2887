// runner_sampler.cpp — the phase's sampler: every sample_interval it sums the workers'
// shards (without stopping them), turns the growth of their histograms into the
// interval's percentiles, reads the pools' gauges (summed), and hands the point to the progress
// line and the live metrics.
#include "runner_phase.hpp"

#include <poolbench/internal/fast_clock.hpp>

#include <algorithm>

namespace poolbench::cli::runner_detail {

void Sampler::run() {
    last_ = ph_.start;
    auto next = ph_.start + ph_.spec.sample_interval;
    std::unique_lock lock(mu_);
    while (!finish_) {
        if (cv_.wait_until(lock, next, [&] { return finish_; })) break;
        lock.unlock();
        sample();
        lock.lock();
        next += ph_.spec.sample_interval;
    }
    lock.unlock();
    // The last, partial interval; skipped when it is a sliver (under a tenth of an
    // interval) after a full one, whose rate would be noise.
    if (out_.timeline.empty() || (Clock::now() - last_) * 10 >= ph_.spec.sample_interval) sample();
}

void Sampler::finish() {
    {
        std::lock_guard lock(mu_);
        finish_ = true;
    }
    cv_.notify_all();
}

// `interval` = what `total` grew by since `seen`; then `seen` = `total`.
void Sampler::growth(std::vector<std::uint64_t>& total, std::vector<std::uint64_t>& seen, Histogram& interval) {
    interval.clear();
    std::size_t lowest = total.size(), highest = 0;
    for (std::size_t b = 0; b < total.size(); ++b) {
        const std::uint64_t grew = total[b] - seen[b];
        if (grew == 0) continue;
        interval.add_raw(b, grew);
        lowest = std::min(lowest, b);
        highest = b;
    }
    // Within the buckets' precision: the interval's extremes are those of its buckets.
    if (interval.count() > 0) interval.set_sum_min_max(0, Histogram::bucket_low(lowest), Histogram::bucket_high(highest));
    std::swap(seen, total);
}

void Sampler::sample() {
    internal::fast_clock::refine();  // workers time operations with it (rate-limited, cheap)
    std::uint64_t ok = 0, failed = 0, timed_out = 0, statement_timeouts = 0;
    ErrorCounts by_kind{};
    // The interval's latencies are the growth of the shards' whole-phase histograms since
    // the last sample (no lock: the workers go on recording meanwhile).
    std::fill(total_.begin(), total_.end(), 0);
    std::fill(acquire_total_.begin(), acquire_total_.end(), 0);
    for (const auto& shard : ph_.shards) {
        ok += shard->ok.get();
        const std::uint64_t to = shard->timed_out.get();
        const std::uint64_t st = shard->statement_timeouts.get();
        failed += shard->failed.get() + to + st;
        timed_out += to;
        statement_timeouts += st;
        for (std::size_t k = 0; k < by_kind.size(); ++k) by_kind[k] += shard->by_kind[k].get();
        for (std::size_t b = 0; b < total_.size(); ++b) total_[b] += shard->op.bucket(b);
        for (std::size_t b = 0; b < acquire_total_.size(); ++b) acquire_total_[b] += shard->acquire.bucket(b);
    }
    growth(total_, seen_, interval_);
    growth(acquire_total_, acquire_seen_, acquire_interval_);
    const auto now = Clock::now();
    const double interval_s = seconds_between(last_, now);
    ProgressSample s;
    s.point.t_s = seconds_between(ph_.start, now);
    s.point.ops_s = interval_s > 0 ? static_cast<double>(ok - last_ok_) / interval_s : 0.0;
    s.point.p99_us = static_cast<double>(interval_.percentile(0.99)) / 1000.0;
    s.point.p50_us = static_cast<double>(interval_.percentile(0.50)) / 1000.0;
    s.point.acquire_p50_us = static_cast<double>(acquire_interval_.percentile(0.50)) / 1000.0;
    s.point.acquire_p99_us = static_cast<double>(acquire_interval_.percentile(0.99)) / 1000.0;
    if (!pools_.empty()) {
        // Several pools (replicas, shards): their sum, each limit checked on its own.
        std::size_t total = 0;
        for (const Pool* pool : pools_) {
            const PoolStats st = pool->stats();
            s.point.active += st.active;
            s.point.idle += st.idle;
            s.point.waiting += st.waiting;
            s.max_size += st.max_size;
            total += st.total;
            if (st.total > st.max_size) out_.limit_violated = true;
        }
        out_.max_total_seen = std::max(out_.max_total_seen, total);
    }
    s.ok = ok;
    s.failed = failed;
    s.timed_out = timed_out;
    s.statement_timeouts = statement_timeouts;
    s.point.failed = failed - last_failed_;
    ErrorCounts interval{};
    for (std::size_t k = 0; k < by_kind.size(); ++k) interval[k] = by_kind[k] - last_by_kind_[k];
    last_ = now;
    last_ok_ = ok;
    last_failed_ = failed;
    last_by_kind_ = by_kind;
    out_.timeline.push_back(s.point);
    out_.interval_errors.push_back(interval);
    if (hooks_.on_sample) {
        try {
            hooks_.on_sample(s);
        } catch (...) {  // NOLINT(bugprone-empty-catch): a broken progress line must not stop the run
        }
    }
}

}  // namespace poolbench::cli::runner_detail
