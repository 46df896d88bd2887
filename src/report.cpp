// report.cpp — summaries and the verdict; no formatting here.
#include "report.hpp"

#include <algorithm>

namespace poolbench::cli {

LatencySummary summarize_ns(const Histogram& ns) {
    auto us = [](std::uint64_t v) { return static_cast<double>(v) / 1000.0; };
    LatencySummary s;
    s.count = ns.count();
    if (s.count == 0) return s;
    s.mean = ns.mean() / 1000.0;
    s.p50 = us(ns.percentile(0.50));
    s.p90 = us(ns.percentile(0.90));
    s.p99 = us(ns.percentile(0.99));
    s.p999 = us(ns.percentile(0.999));
    s.max = us(ns.max());
    return s;
}

bool Report::passed() const noexcept {
    return std::all_of(expectations.begin(), expectations.end(), [](const Expectation& e) { return e.passed; });
}

PoolSection make_pool_section(const PoolStats& s, std::size_t min_idle, std::size_t active_at_end,
                              bool shutdown_clean) {
    PoolSection p;
    p.created = s.created;
    p.destroyed = s.destroyed;
    p.destroyed_by_reason = s.destroyed_by_reason;
    p.hits = s.hits;
    p.misses = s.misses;
    p.hit_ratio = s.hit_ratio();
    p.waits = s.waits;
    p.timeouts = s.timeouts;
    p.peak_active = s.peak_active;
    p.peak_total = s.peak_total;
    p.max_size = s.max_size;
    p.min_idle = min_idle;
    p.validation_failures = s.validation_failures;
    p.connect_failures = s.connect_failures;
    p.active_at_end = active_at_end;
    p.shutdown_clean = shutdown_clean;
    return p;
}

}  // namespace poolbench::cli
