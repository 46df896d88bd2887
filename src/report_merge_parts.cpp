// report_merge_parts.cpp — the merge of the timeline, of phases and faults, and the
// expectations judged on the merged figures.
#include "report_merge_detail.hpp"

#include "expectation.hpp"
#include "report_json.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace poolbench::cli {

std::vector<TimelinePoint> merge_timeline(const std::vector<TimelineSource>& sources, double bin_s) {
    if (!(bin_s > 0)) bin_s = 1;
    struct Bin {
        double ops = 0, begin = INFINITY, end = 0;
        double p50 = 0, p99 = 0, acquire_p50 = 0, acquire_p99 = 0;  // the highest agent's
        std::uint64_t failed = 0;
        std::vector<const TimelinePoint*> last;  // each agent's last sample in the bin
    };
    std::map<long, Bin> bins;
    for (std::size_t i = 0; i < sources.size(); ++i) {
        const TimelineSource& src = sources[i];
        double previous = -INFINITY;
        for (const auto& p : src.points) {
            // The phase this point belongs to: the last whose load began before it.
            double phase_start = 0, interval = bin_s;
            for (const auto& [load_start, sample] : src.phases) {
                if (load_start < p.t_s) {
                    phase_start = load_start;
                    interval = sample > 0 ? sample : bin_s;
                }
            }
            const double start = std::max({previous, p.t_s - interval, phase_start});
            previous = p.t_s;
            const double mid = src.offset_s + (start + p.t_s) / 2;
            Bin& b = bins[static_cast<long>(std::floor(mid / bin_s))];
            b.ops += p.ops_s * (p.t_s - start);
            b.failed += p.failed;
            b.p50 = std::max(b.p50, p.p50_us);
            b.p99 = std::max(b.p99, p.p99_us);
            b.acquire_p50 = std::max(b.acquire_p50, p.acquire_p50_us);
            b.acquire_p99 = std::max(b.acquire_p99, p.acquire_p99_us);
            b.begin = std::min(b.begin, src.offset_s + start);
            b.end = std::max(b.end, src.offset_s + p.t_s);
            b.last.resize(sources.size(), nullptr);
            b.last[i] = &p;
        }
    }
    std::vector<TimelinePoint> out;
    // A point's rate is over the time since the previous point (the first: since the
    // earliest load start), as in a single run's timeline.
    double previous_to = bins.empty() ? 0 : std::min(bins.begin()->second.begin, bins.begin()->second.end);
    for (const auto& [k, b] : bins) {
        const double from = previous_to;
        const double to = std::max(std::min(static_cast<double>(k + 1) * bin_s, b.end), from + 1e-6);
        previous_to = to;
        TimelinePoint p;
        p.t_s = to;
        p.ops_s = b.ops / (to - from);
        p.p50_us = b.p50;
        p.p99_us = b.p99;
        p.acquire_p50_us = b.acquire_p50;
        p.acquire_p99_us = b.acquire_p99;
        p.failed = b.failed;
        for (const TimelinePoint* q : b.last) {
            if (q == nullptr) continue;
            p.active += q->active;
            p.idle += q->idle;
            p.waiting += q->waiting;
        }
        out.push_back(p);
    }
    return out;
}

namespace merge_detail {

std::vector<TimelinePoint> read_timeline(const Json& timeline) {
    std::vector<TimelinePoint> out;
    for (const auto& p : timeline) {
        TimelinePoint t;
        t.t_s = num(p, "t_s");
        t.ops_s = num(p, "ops_s");
        t.active = u64(p, "active");
        t.idle = u64(p, "idle");
        t.waiting = u64(p, "waiting");
        t.p99_us = num(p, "p99_us");
        t.failed = u64(p, "failed");
        t.p50_us = num(p, "p50_us");
        t.acquire_p50_us = num(p, "acquire_p50_us");
        t.acquire_p99_us = num(p, "acquire_p99_us");
        out.push_back(t);
    }
    return out;
}

namespace {

/// The worst of the agents' values; none when any agent has none (never recovered, still failing).
std::optional<double> worst(const std::vector<std::optional<double>>& values) {
    double m = 0;
    for (const auto& v : values) {
        if (!v) return std::nullopt;
        m = std::max(m, *v);
    }
    return m;
}

std::vector<std::string> phase_names(const Json& report) {
    std::vector<std::string> names;
    for (const auto& p : at(report, "phases")) names.push_back(str(p, "name"));
    return names;
}

PhaseRecord merge_phase(const std::vector<MergeInput>& in, const std::vector<double>& offsets, std::size_t k) {
    const Json& p0 = at(in.front().report, "phases")[k];
    PhaseRecord rec;
    rec.name = str(p0, "name");
    rec.workload = str(p0, "workload");
    rec.write_ratio = num(p0, "write_ratio");
    rec.writer_gate = at(p0, "writer_gate").is_boolean() && at(p0, "writer_gate").get<bool>();
    rec.duration_requested_s = opt(p0, "duration_requested_s");
    rec.sample_interval_s = num(p0, "sample_interval_s");
    double start = INFINITY, load_start = INFINITY, load_end = -INFINITY, wall_end = -INFINITY;
    std::vector<const Json*> sets;
    std::vector<std::string> where;
    std::vector<std::optional<double>> outages;
    for (std::size_t i = 0; i < in.size(); ++i) {
        const Json& p = at(in[i].report, "phases")[k];
        rec.threads += u64(p, "threads");
        rec.rate_ops_s += num(p, "rate_ops_s");
        if (at(p, "ops_requested").is_number()) rec.ops_requested = rec.ops_requested.value_or(0) + u64(p, "ops_requested");
        const double s = offsets[i] + num(p, "started_s");
        start = std::min(start, s);
        const double ls = offsets[i] + num(p, "load_started_s", num(p, "started_s"));
        load_start = std::min(load_start, ls);
        load_end = std::max(load_end, ls + num(p, "load_duration_s"));
        wall_end = std::max(wall_end, s + num(p, "duration_s"));
        add_ops(rec.ops, read_ops(at(p, "ops")));
        add_error_counts(rec.errors_by_class, at(p, "errors_by_class"));
        rec.writes_acknowledged += u64(p, "writes_acknowledged");
        rec.writes_in_doubt += u64(p, "writes_in_doubt");
        rec.late += u64(p, "late");
        rec.skipped += u64(p, "skipped");
        rec.cancelled = rec.cancelled || (at(p, "cancelled").is_boolean() && at(p, "cancelled").get<bool>());
        if (at(p, "stalled_intervals").is_number()) rec.stalled_intervals = rec.stalled_intervals.value_or(0) + u64(p, "stalled_intervals");
        for (const auto& t : at(p, "stalled_at_s")) rec.stalled_at_s.push_back(offsets[i] + t.get<double>());
        outages.push_back(opt(p, "outage_ms"));
        const Json& res = at(p, "resources_at_end");
        rec.open_fds += u64(res, "open_fds");
        rec.rss_bytes += u64(res, "rss_bytes");
        rec.pool_connections += u64(res, "pool_connections");
        sets.push_back(&at(p, "latency_us"));
        where.push_back(fmt::format("{} phases.{}", in[i].path, k));
    }
    std::sort(rec.stalled_at_s.begin(), rec.stalled_at_s.end());
    if (rec.stalled_at_s.size() > 20) rec.stalled_at_s.resize(20);
    rec.started_s = start;
    rec.duration_s = wall_end - start;
    rec.load_started_s = load_start;
    rec.load_duration_s = load_end - load_start;
    rec.throughput_ops_s = rec.load_duration_s > 0 ? static_cast<double>(rec.ops.ok) / rec.load_duration_s : 0;
    rec.latency_us = merge_latency_sets(sets, where);
    rec.outage_ms = worst(outages);
    return rec;
}

FaultRecord merge_fault(const std::vector<MergeInput>& in, const std::vector<double>& offsets, std::size_t k) {
    const Json& f0 = at(in.front().report, "faults")[k];
    FaultRecord rec;
    rec.index = u64(f0, "index");
    rec.kind = str(f0, "kind");
    rec.phase = str(f0, "phase");
    rec.at_s = num(f0, "at_s");
    rec.for_s = opt(f0, "for_s");
    rec.recovery_basis = str(f0, "recovery_basis");
    rec.reverted = true;
    std::vector<std::optional<double>> started, ended, recovery, outage, failover, rejoin;
    bool all_leaks = true;
    std::uint64_t leaks = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
        const Json& f = at(in[i].report, "faults")[k];
        auto shifted = [&](const char* key) {
            auto v = opt(f, key);
            return v ? std::optional<double>(*v + offsets[i]) : std::nullopt;
        };
        started.push_back(shifted("started_s"));
        ended.push_back(shifted("ended_s"));
        recovery.push_back(opt(f, "recovery_ms"));
        outage.push_back(opt(f, "outage_ms"));
        failover.push_back(opt(f, "failover_ms"));
        rejoin.push_back(opt(f, "rejoin_ms"));
        rec.reverted = rec.reverted && at(f, "reverted").is_boolean() && at(f, "reverted").get<bool>();
        if (rec.error.empty() && !str(f, "error").empty()) rec.error = in[i].path + ": " + str(f, "error");
        if (rec.detail.empty()) rec.detail = str(f, "detail");
        if (rec.node.empty()) rec.node = str(f, "node");
        rec.level_ops_s += num(f, "level_ops_s");
        rec.stalled_ms = std::max(rec.stalled_ms, num(f, "stalled_ms"));
        rec.failed += u64(f, "failed");
        add_error_counts(rec.errors_by_class, at(f, "errors_by_class"));
        all_leaks = all_leaks && at(f, "leaks_reported").is_number();
        leaks += u64(f, "leaks_reported");
    }
    if (std::all_of(started.begin(), started.end(), [](const auto& v) { return v.has_value(); })) {
        rec.started_s = **std::min_element(started.begin(), started.end());
    }
    rec.ended_s = worst(ended);
    rec.recovery_ms = worst(recovery);  // the slowest agent's recovery
    rec.outage_ms = worst(outage);
    if (rec.replica_fault()) {
        rec.failover_ms = worst(failover);
        rec.rejoin_ms = worst(rejoin);
    }
    if (all_leaks) rec.leaks_reported = leaks;
    return rec;
}

}  // namespace

void merge_phases(Report& r, const std::vector<MergeInput>& in, const std::vector<double>& offsets) {
    const auto first = phase_names(in.front().report);
    if (first.empty()) return;
    for (const auto& input : in) {
        if (phase_names(input.report) != first) {
            r.notes.push_back(fmt::format("{} ran other phases than {}: phases and faults are not merged", input.path,
                                          in.front().path));
            return;
        }
    }
    for (std::size_t k = 0; k < first.size(); ++k) r.phases.push_back(merge_phase(in, offsets, k));
    const Json& faults0 = at(in.front().report, "faults");
    for (const auto& input : in) {
        const Json& f = at(input.report, "faults");
        bool same = f.size() == faults0.size();
        for (std::size_t k = 0; same && k < f.size(); ++k) same = str(f[k], "kind") == str(faults0[k], "kind");
        if (!same) {
            r.notes.push_back(fmt::format("{} ran other faults than {}: faults are not merged", input.path, in.front().path));
            return;
        }
    }
    for (std::size_t k = 0; k < faults0.size(); ++k) r.faults.push_back(merge_fault(in, offsets, k));
    if (!r.faults.empty()) {
        r.notes.emplace_back("merged faults: started_s the earliest agent's, ended_s, recovery_ms, outage_ms and "
                             "stalled_ms the latest or slowest agent's, failed operations summed");
    }
}

void merge_expectations(Report& r, const std::vector<MergeInput>& in, const std::vector<std::string>& extra) {
    const Json json = report_to_json(r);
    auto scope_node = [&](const std::string& scope) -> const Json* {
        if (scope.empty()) return &json;
        for (std::size_t k = 0; k < r.phases.size(); ++k) {
            if (scope == "phase " + r.phases[k].name) return &json.at("phases").at(k);
        }
        for (std::size_t k = 0; k < r.faults.size(); ++k) {
            const FaultRecord& f = r.faults[k];
            if (scope == fmt::format("fault {} ({}) in phase {}", f.index, f.kind, f.phase)) return &json.at("faults").at(k);
        }
        return nullptr;
    };
    struct Seen {
        std::string name, scope, expected;
        std::size_t held = 0, judged = 0;
        std::vector<std::string> failed_in;
    };
    std::vector<Seen> seen;
    for (const auto& input : in) {
        for (const auto& e : at(input.report, "expectations")) {
            const std::string name = str(e, "name"), scope = str(e, "scope");
            auto it = std::find_if(seen.begin(), seen.end(), [&](const Seen& s) { return s.name == name && s.scope == scope; });
            if (it == seen.end()) it = seen.insert(seen.end(), Seen{name, scope, str(e, "expected"), 0, 0, {}});
            ++it->judged;
            if (at(e, "passed").is_boolean() && at(e, "passed").get<bool>()) {
                ++it->held;
            } else {
                it->failed_in.push_back(input.path);
            }
        }
    }
    for (const auto& s : seen) {
        std::string error;
        const auto parsed = parse_expectation(s.name, error);
        const Json* node = scope_node(s.scope);
        if (parsed && node != nullptr && check_expectation_path(*parsed, *node).empty()) {
            r.expectations.push_back(evaluate_expectation(*parsed, *node, s.scope));
            continue;
        }
        // Not a figure of the report (a built-in check, a per-pool limit): judged per agent.
        Expectation e{s.name, s.expected, static_cast<double>(s.held), s.held == s.judged && s.judged == in.size()};
        e.scope = s.scope;
        e.note = fmt::format("judged on each agent's own run: held in {} of {}{}", s.held, in.size(),
                             s.failed_in.empty() ? "" : fmt::format(" (failed in {})", fmt::join(s.failed_in, ", ")));
        r.expectations.push_back(std::move(e));
    }
    for (const auto& text : extra) {
        std::string error;
        const auto parsed = parse_expectation(text, error);
        if (!parsed) throw UsageFailure(fmt::format("merge: --expect: {}", error));
        if (auto why = check_expectation_path(*parsed, json); !why.empty()) {
            throw UsageFailure(fmt::format("merge: --expect '{}': {}", text, why));
        }
        r.expectations.push_back(evaluate_expectation(*parsed, json, {}));
    }
}

}  // namespace merge_detail

}  // namespace poolbench::cli
