// report.cpp — the report model's own computations: latency summaries, the pool section, leak
// groups, the verdict, and the UTC timestamp text the renderers print; no rendering here.
#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

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
    s.min = us(ns.min());
    for (std::size_t i = 0; i < Histogram::bucket_count; ++i) {
        if (const std::uint64_t n = ns.count_in(i); n > 0) s.buckets.emplace_back(static_cast<std::uint32_t>(i), n);
    }
    return s;
}

namespace {

/// The chart bin of a value in ns: 0..3 hold 0..3 exactly, then four bins per power of two.
std::size_t chart_bin_of(std::uint64_t v) noexcept {
    if (v < 4) return static_cast<std::size_t>(v);
    const int k = 63 - __builtin_clzll(v);
    const std::uint64_t quarter = std::uint64_t{1} << (k - 2);
    return 4 + static_cast<std::size_t>(k - 2) * 4 + static_cast<std::size_t>((v - (std::uint64_t{1} << k)) / quarter);
}

/// The lowest value in ns of a chart bin.
std::uint64_t chart_bin_low(std::size_t bin) noexcept {
    if (bin < 4) return bin;
    const std::size_t k = 2 + (bin - 4) / 4;
    const std::size_t j = (bin - 4) % 4;
    return (std::uint64_t{1} << k) + j * (std::uint64_t{1} << (k - 2));
}

}  // namespace

std::vector<HistogramBin> histogram_bins_us(const Histogram& ns) {
    std::vector<HistogramBin> out;
    if (ns.count() == 0) return out;
    std::vector<std::uint64_t> counts(chart_bin_of(Histogram::bucket_low(Histogram::bucket_count - 1)) + 1, 0);
    std::size_t first = counts.size(), last = 0;
    for (std::size_t b = 0; b < Histogram::bucket_count; ++b) {
        const std::uint64_t n = ns.count_in(b);
        if (n == 0) continue;
        const std::size_t bin = chart_bin_of(Histogram::bucket_low(b));
        counts[bin] += n;
        first = std::min(first, bin);
        last = std::max(last, bin);
    }
    for (std::size_t bin = first; bin <= last && bin < counts.size(); ++bin) {
        out.push_back(HistogramBin{static_cast<double>(chart_bin_low(bin)) / 1000.0,
                                   static_cast<double>(chart_bin_low(bin + 1)) / 1000.0, counts[bin]});
    }
    return out;
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
    p.reconnects = s.reconnects;
    p.overloaded = s.overloaded;
    p.circuit_rejections = s.circuit_rejections;
    p.transaction_retries = s.transaction_retries;
    p.keepalives = s.keepalives;
    p.leaks_detected = s.leaks_detected;
    p.leaks_returned_late = s.leaks_returned_late;
    p.leaks_reclaimed = s.leaks_reclaimed;
    p.breaker.state = std::string(to_string(s.breaker));
    p.breaker.transitions = s.breaker_transitions;
    for (const auto& t : s.breaker_history) p.breaker.history.push_back({t.at, std::string(to_string(t.to)), t.reason});
    p.connect_us = summarize_ns(s.connect);
    p.active_at_end = active_at_end;
    p.shutdown_clean = shutdown_clean;
    return p;
}

std::vector<std::vector<std::string>> pools_table(const Report& r) {
    std::vector<std::vector<std::string>> rows;
    if (r.pools.empty()) return rows;
    rows.push_back({"pool", "role", "reads", "writes", "read failures", "state", "left rotation", "rows verified",
                    "opened", "peak active/max", "timeouts", "url"});
    auto opt = [](const auto& v) { return v ? fmt::format("{}", *v) : std::string("-"); };
    for (const auto& n : r.pools) {
        rows.push_back({n.name, n.role, std::to_string(n.reads), std::to_string(n.writes), std::to_string(n.read_failures),
                        n.state ? *n.state : "-", opt(n.left_rotation), opt(n.rows_verified),
                        std::to_string(n.pool.created), fmt::format("{}/{}", n.pool.peak_active, n.pool.max_size),
                        std::to_string(n.pool.timeouts), n.url});
    }
    return rows;
}

std::string nodes_note(const Report& r) {
    if (r.pools.size() < 2) return {};
    std::size_t replicas = 0;
    for (const auto& n : r.pools) replicas += n.role == "replica" ? 1 : 0;
    if (replicas > 0) {
        return fmt::format("the primary of 1 primary and {} replica{}; each node under pools", replicas,
                           replicas == 1 ? "" : "s");
    }
    return fmt::format("{} of {} shards; each node under pools", r.pools.front().name, r.pools.size());
}

std::string router_line(const Report& r) {
    if (!r.router) return {};
    const auto& x = *r.router;
    return fmt::format("router ({}): {} reads retried, {} rerouted, {} served by the primary for want of a replica, {} "
                       "refused (no replica)",
                       x.strategy, x.reads_retried, x.reads_rerouted, x.primary_fallbacks, x.no_replica_errors);
}

std::string_view to_string(LeakReport::Kind kind) noexcept {
    switch (kind) {
        case LeakReport::Kind::suspected: return "suspected";
        case LeakReport::Kind::returned: return "returned";
        case LeakReport::Kind::reclaimed: return "reclaimed";
    }
    return "unknown";
}

std::vector<LeakGroup> group_leaks(const std::vector<LeakRecord>& leaks) {
    std::vector<LeakGroup> groups;
    for (const auto& l : leaks) {
        auto it = std::find_if(groups.begin(), groups.end(),
                               [&](const LeakGroup& g) { return g.kind == l.kind && g.stack == l.stack; });
        if (it == groups.end()) {
            groups.push_back({l.kind, l.stack, 0, 0, l.thread});
            it = groups.end() - 1;
        }
        ++it->count;
        it->longest_held_ms = std::max(it->longest_held_ms, l.held_ms);
    }
    std::stable_sort(groups.begin(), groups.end(), [](const LeakGroup& a, const LeakGroup& b) { return a.count > b.count; });
    return groups;
}

std::uint64_t leaks_not_listed(const Report& report) {
    std::uint64_t listed = 0;
    for (const auto& l : report.leaks) listed += l.kind == "suspected" ? 1 : 0;
    return report.pool.leaks_detected > listed ? report.pool.leaks_detected - listed : 0;
}

LeakRecord make_leak_record(const LeakReport& r) {
    LeakRecord l;
    l.held_ms = static_cast<double>(r.held.count());
    l.thread_id = r.thread_id;
    l.thread_name = r.thread_name;
    l.thread = r.thread_name.empty() ? fmt::format("{}", r.thread_id) : fmt::format("{} ({})", r.thread_name, r.thread_id);
    l.kind = std::string(to_string(r.kind));
    l.stack = r.stack;
    return l;
}

std::string format_utc(std::chrono::system_clock::time_point at) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
    const auto secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    const auto frac = ms - static_cast<std::int64_t>(secs) * 1000;
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[32];
    const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:03}Z", std::string_view(buf, n), frac);
}

}  // namespace poolbench::cli
