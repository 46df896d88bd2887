// pool/leak_tracker.cpp — lease traces, leak findings and the report list.
#include "leak_tracker.hpp"

#include "time.hpp"

#include <algorithm>

namespace poolbench::internal {

namespace {
constexpr std::size_t max_reports = 1000;
thread_local std::uint32_t tl_leases = 0;  // for sampled stack capture
}  // namespace

LeakTracker::LeakTracker(const PoolConfig& config)
    : pool_(config.name),
      threshold_ns_(to_ns(config.leak_threshold)),
      reclaim_ns_(threshold_ns_ > 0 ? to_ns(config.leak_reclaim_after) : 0),
      check_ns_(std::clamp<std::int64_t>(threshold_ns_ / 4, 5'000'000, 1'000'000'000)),
      trace_every_(config.leak_trace_every),
      on_leak_(config.on_leak) {}

void LeakTracker::record_lease(LeaseTrace& t, std::uint32_t word, std::int64_t now) noexcept {
    // Capture outside the trace lock; symbolize only if this lease is ever reported.
    RawStack stack;
    if (trace_every_ != 0 && ++tl_leases % trace_every_ == 0) capture_stack(stack);
    const long tid = current_thread_id();
    MutexLock g(t.mu);
    t.holder.word = word;
    t.holder.leased_ns = now;
    t.holder.thread_id = tid;
    try {
        t.holder.thread_name = current_thread_name();  // <= 15 chars: no allocation
    } catch (...) {
        t.holder.thread_name.clear();
    }
    t.holder.stack = stack;
}

void LeakTracker::publish_returned(std::int64_t held_ns) noexcept {
    try {
        LeakReport r;
        r.kind = LeakReport::Kind::returned;
        r.pool = pool_;
        r.held = to_ms(held_ns);
        r.thread_id = current_thread_id();
        r.thread_name = current_thread_name();
        publish(std::move(r));
    } catch (...) {
        // Out of memory for a report: the return itself goes on.
    }
}

void LeakTracker::on_reclaimed_return(LeaseTrace& t, std::uint32_t word, std::int64_t now) noexcept {
    std::int64_t leased_ns = now;
    {
        MutexLock g(t.mu);
        if (t.holder.word == word) leased_ns = t.holder.leased_ns;
    }
    publish_returned(now - leased_ns);
}

std::optional<LeakTracker::Finding> LeakTracker::inspect(LeaseTrace& t, std::uint32_t word, std::int64_t now) noexcept {
    if (!enabled()) return std::nullopt;
    try {
        Finding f;
        std::int64_t leased_ns = 0;
        {
            MutexLock g(t.mu);
            if (t.holder.word != word) return std::nullopt;  // its holder has not written the trace yet
            leased_ns = t.holder.leased_ns;
            f.report.thread_id = t.holder.thread_id;
            f.report.thread_name = t.holder.thread_name;
            f.stack = t.holder.stack;
        }
        const std::int64_t held = now - leased_ns;
        f.suspect = held >= threshold_ns_ && t.reported_word.load(std::memory_order_relaxed) != word;
        f.reclaim = reclaim_ns_ > 0 && held >= reclaim_ns_;
        if (!f.suspect && !f.reclaim) return std::nullopt;
        if (f.suspect) t.reported_word.store(word, std::memory_order_release);
        f.report.pool = pool_;
        f.report.held = to_ms(held);
        return f;
    } catch (...) {
        return std::nullopt;  // out of memory: look again next pass
    }
}

void LeakTracker::publish(std::vector<Finding>& findings) noexcept {
    // Symbolizing is slow the first time (libbacktrace reads the debug info): done here,
    // after the scan, so it cannot push a lease past reclaim before it was reported.
    for (auto& f : findings) {
        if (f.suspect) {
            LeakReport r = f.report;
            r.kind = LeakReport::Kind::suspected;
            try {
                r.stack = symbolize(f.stack);
            } catch (...) {
            }
            publish(std::move(r));
        }
        if (f.reclaim) {
            // The suspected report carries the trace.
            f.report.kind = LeakReport::Kind::reclaimed;
            publish(std::move(f.report));
        }
    }
}

void LeakTracker::count_reclaim() noexcept {
    MutexLock lk(mu_);
    ++reclaimed_;
}

void LeakTracker::publish(LeakReport report) noexcept {
    try {
        {
            MutexLock lk(mu_);
            // Counted with the report, so a reader of stats() finds the report too.
            if (report.kind == LeakReport::Kind::returned) ++returned_late_;
            if (report.kind == LeakReport::Kind::suspected) ++detected_;
            reports_.push_back(report);
            if (reports_.size() > max_reports) reports_.pop_front();
        }
        if (on_leak_) on_leak_(report);
    } catch (...) {
        // A reporting failure (allocation, a throwing callback) must not take down the pool.
    }
}

std::vector<LeakReport> LeakTracker::reports() const {
    MutexLock lk(mu_);
    return {reports_.begin(), reports_.end()};
}

void LeakTracker::fill(PoolStats& st) const {
    MutexLock lk(mu_);
    st.leaks_detected = detected_;
    st.leaks_returned_late = returned_late_;
    st.leaks_reclaimed = reclaimed_;
}

}  // namespace poolbench::internal
