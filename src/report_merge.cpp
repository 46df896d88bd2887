// report_merge.cpp — the run-level merge: counts, histograms, the span, the pool (and several pools, by name),
// writes, leaks, settings that differ. Phases, faults, the timeline and expectations are
// in report_merge_parts.cpp.
#include "report_merge.hpp"
#include "report_merge_detail.hpp"

#include "report_read.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace poolbench::cli {

namespace merge_detail {

const Json& at(const Json& j, const char* key) {
    static const Json null_json;
    return j.is_object() && j.contains(key) ? j[key] : null_json;
}
double num(const Json& j, const char* key, double fallback) {
    const Json& v = at(j, key);
    return v.is_number() ? v.get<double>() : fallback;
}
std::uint64_t u64(const Json& j, const char* key) {
    const Json& v = at(j, key);
    return v.is_number_unsigned() ? v.get<std::uint64_t>() : v.is_number() ? static_cast<std::uint64_t>(std::max(0.0, v.get<double>())) : 0;
}
std::string str(const Json& j, const char* key) {
    const Json& v = at(j, key);
    return v.is_string() ? v.get<std::string>() : v.is_null() ? std::string() : v.dump();
}
std::optional<double> opt(const Json& j, const char* key) {
    const Json& v = at(j, key);
    return v.is_number() ? std::optional<double>(v.get<double>()) : std::nullopt;
}

OpCounts read_ops(const Json& o) {
    return OpCounts{u64(o, "total"), u64(o, "ok"), u64(o, "failed"), u64(o, "timed_out"), u64(o, "statement_timeouts")};
}
void add_ops(OpCounts& to, const OpCounts& o) {
    to.total += o.total;
    to.ok += o.ok;
    to.failed += o.failed;
    to.timed_out += o.timed_out;
    to.statement_timeouts += o.statement_timeouts;
}
void add_error_counts(ErrorCounts& to, const Json& o) {
    for (std::size_t k = 0; k < to.size(); ++k) to[k] += u64(o, std::string(to_string(static_cast<ErrorKind>(k))).c_str());
}

LatencySet merge_latency_sets(const std::vector<const Json*>& sets, const std::vector<std::string>& where,
                              std::pair<Histogram, Histogram>* histograms) {
    LatencySet out;
    for (const char* kind : {"acquire", "query", "op", "failed"}) {
        Histogram h;
        for (std::size_t i = 0; i < sets.size(); ++i) {
            const Json& entry = at(*sets[i], kind);
            if (entry.is_null()) continue;
            h.merge(histogram_from_json(entry, fmt::format("{} latency_us.{}", where[i], kind)));
        }
        const LatencySummary s = summarize_ns(h);
        const std::string_view k(kind);
        if (histograms != nullptr && k == "acquire") histograms->first = h;
        if (histograms != nullptr && k == "op") histograms->second = h;
        (k == "acquire" ? out.acquire : k == "query" ? out.query : k == "op" ? out.op : out.failed) = s;
    }
    return out;
}

std::chrono::system_clock::time_point from_unix_ms(double ms) {
    return std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::duration<double, std::milli>(ms)));
}

}  // namespace merge_detail

namespace {

using namespace merge_detail;

PoolSection merge_pools(const std::vector<MergeInput>& in) {
    PoolSection p;
    Histogram connect;
    bool all_clean = true;
    for (const auto& input : in) {
        const Json& j = at(input.report, "pool");
        p.created += u64(j, "created");
        p.destroyed += u64(j, "destroyed");
        for (std::size_t k = 0; k < destroy_reason_count; ++k) {
            p.destroyed_by_reason[k] +=
                u64(at(j, "destroyed_by_reason"), std::string(to_string(static_cast<DestroyReason>(k))).c_str());
        }
        p.hits += u64(j, "hits");
        p.misses += u64(j, "misses");
        p.waits += u64(j, "waits");
        p.timeouts += u64(j, "timeouts");
        // Every agent has its own pool: sizes and peaks add up to what the database saw.
        p.peak_active += u64(j, "peak_active");
        p.peak_total += u64(j, "peak_total");
        p.max_size += u64(j, "max_size");
        p.min_idle += u64(j, "min_idle");
        p.warmup_ms = std::max(p.warmup_ms, num(j, "warmup_ms"));
        p.validation_failures += u64(j, "validation_failures");
        p.connect_failures += u64(j, "connect_failures");
        p.reconnects += u64(j, "reconnects");
        p.overloaded += u64(j, "overloaded");
        p.circuit_rejections += u64(j, "circuit_rejections");
        p.transaction_retries += u64(j, "transaction_retries");
        p.keepalives += u64(j, "keepalives");
        p.leaks_detected += u64(j, "leaks_detected");
        p.leaks_returned_late += u64(j, "leaks_returned_late");
        p.leaks_reclaimed += u64(j, "leaks_reclaimed");
        const std::string state = str(at(j, "breaker"), "state");
        if (state != "closed" && !state.empty()) p.breaker.state = state;  // the worst agent's
        p.breaker.transitions += u64(at(j, "breaker"), "transitions");
        if (!at(j, "connect_us").is_null()) connect.merge(histogram_from_json(at(j, "connect_us"), input.path + " pool.connect_us"));
        p.active_at_end += u64(j, "active_at_end");
        all_clean = all_clean && (!at(j, "shutdown_clean").is_boolean() || at(j, "shutdown_clean").get<bool>());
    }
    p.hit_ratio = p.hits + p.misses > 0 ? static_cast<double>(p.hits) / static_cast<double>(p.hits + p.misses) : 0;
    p.connect_us = summarize_ns(connect);
    p.shutdown_clean = all_clean;
    return p;
}

/// Several pools (replicas, shards): each node's figures summed by name over the agents
/// that had it, its pool section as merge_pools sums the run's; the router's counts summed.
void merge_nodes(Report& r, const std::vector<MergeInput>& in) {
    std::vector<std::string> order;
    std::map<std::string, std::vector<MergeInput>> sections;
    for (const auto& input : in) {
        for (auto& n : pools_from_json(input.report)) {
            auto found = std::find_if(r.pools.begin(), r.pools.end(), [&](const NodeRecord& m) { return m.name == n.name; });
            if (found == r.pools.end()) {
                r.pools.push_back(n);
            } else {
                found->reads += n.reads;
                found->writes += n.writes;
                found->read_failures += n.read_failures;
                if (n.left_rotation) found->left_rotation = found->left_rotation.value_or(0) + *n.left_rotation;
                if (n.rows_verified) found->rows_verified = found->rows_verified.value_or(0) + *n.rows_verified;
                if (n.state && *n.state != "healthy") found->state = n.state;  // the worst agent's
            }
            sections[n.name].push_back({input.path + " pools." + n.name, Json{{"pool", at(at(input.report, "pools"), n.name.c_str()).value("pool", Json::object())}}});
        }
        if (auto router = router_from_json(input.report)) {
            if (!r.router) {
                r.router = router;
            } else {
                r.router->reads_retried += router->reads_retried;
                r.router->reads_rerouted += router->reads_rerouted;
                r.router->primary_fallbacks += router->primary_fallbacks;
                r.router->no_replica_errors += router->no_replica_errors;
            }
        }
    }
    for (auto& n : r.pools) n.pool = merge_pools(sections[n.name]);
}

RunConfig merge_config(const std::vector<MergeInput>& in, double bin_s) {
    const Json& c = at(in.front().report, "config");
    RunConfig r;
    r.pool_max = u64(c, "pool_max");
    r.pool_min_idle = u64(c, "pool_min_idle");
    r.acquire_timeout_ms = static_cast<std::int64_t>(num(c, "acquire_timeout_ms"));
    r.workload = str(c, "workload");
    r.duration_s = opt(c, "duration_s");
    r.write_ratio = num(c, "write_ratio");
    r.rows = u64(c, "rows");
    r.sample_interval_s = bin_s;
    r.leak_threshold_ms = static_cast<std::int64_t>(num(c, "leak_threshold_ms"));
    r.leak_reclaim_after_ms = static_cast<std::int64_t>(num(c, "leak_reclaim_after_ms"));
    r.error_backoff_ms = static_cast<std::int64_t>(num(c, "error_backoff_ms"));
    r.starvation_threshold_us = std::llround(num(c, "starvation_threshold_ms") * 1000.0);
    if (at(c, "pool").is_object()) {
        for (const auto& [name, value] : at(c, "pool").items()) {
            if (value.is_number()) r.pool_settings.emplace_back(name, value.get<double>());
        }
    }
    // The load all agents put on the database together: threads, operations and rates add up.
    bool all_ops = true;
    std::uint64_t ops = 0;
    for (const auto& input : in) {
        const Json& ic = at(input.report, "config");
        r.threads += u64(ic, "threads");
        r.rate_ops_s += num(ic, "rate_ops_s");
        all_ops = all_ops && at(ic, "ops").is_number();
        ops += u64(ic, "ops");
    }
    if (all_ops) r.ops = ops;
    return r;
}

/// "threads 10 (a.json) vs 20 (b.json)" for each setting in which the runs differ.
std::vector<std::string> differences(const std::vector<MergeInput>& in) {
    std::vector<std::string> out;
    for (const auto& [label, pointer] : std::vector<std::pair<const char*, const char*>>{
             {"backend", "/database/backend"},
             {"database URL", "/database/url"},
             {"prepared statements", "/database/prepared_statements"},
             {"workload", "/config/workload"},
             {"threads per agent", "/config/threads"},
             {"pool size", "/config/pool_max"},
             {"min idle", "/config/pool_min_idle"},
             {"acquire timeout (ms)", "/config/acquire_timeout_ms"},
             {"write ratio", "/config/write_ratio"},
             {"rows", "/config/rows"},
             {"operations per agent", "/config/ops"},
             {"duration per agent (s)", "/config/duration_s"},
             {"target rate (ops/s)", "/config/rate_ops_s"},
             {"pool settings", "/config/pool"},
             {"poolbench version", "/tool/version"}}) {
        const Json::json_pointer p(pointer);
        auto text = [&](const Json& j) { return j.contains(p) ? (j.at(p).is_string() ? j.at(p).get<std::string>() : j.at(p).dump()) : "-"; };
        std::vector<std::string> values;
        for (const auto& input : in) values.push_back(fmt::format("{} ({})", text(input.report), input.path));
        const std::string first = text(in.front().report);
        if (std::any_of(in.begin(), in.end(), [&](const MergeInput& i) { return text(i.report) != first; })) {
            out.push_back(fmt::format("the runs' settings differ: {} {}", label, fmt::join(values, " vs ")));
        }
    }
    return out;
}

void refuse_mixed(const std::vector<MergeInput>& in) {
    const MergeInput& first = in.front();
    // One run given twice (the same file, or a copy of it) would count its operations twice.
    for (std::size_t i = 0; i < in.size(); ++i) {
        for (std::size_t k = 0; k < i; ++k) {
            if (num(in[i].report, "started_at_unix_ms") == num(in[k].report, "started_at_unix_ms") &&
                at(in[i].report, "ops") == at(in[k].report, "ops")) {
                throw UsageFailure(fmt::format("merge: {} is the same run as {} (same start and operations); give "
                                               "each agent's report once",
                                               in[i].path, in[k].path));
            }
        }
    }
    for (const auto& input : in) {
        if (str(input.report, "command") != str(first.report, "command")) {
            throw UsageFailure(fmt::format("merge: {} is from 'poolbench {}' and {} from 'poolbench {}'; merge reports "
                                           "of one command and scenario",
                                           first.path, str(first.report, "command"), input.path,
                                           str(input.report, "command")));
        }
        if (at(input.report, "scenario") != at(first.report, "scenario")) {
            throw UsageFailure(fmt::format("merge: {} ran scenario {} and {} scenario {}; merge reports of one command "
                                           "and scenario",
                                           first.path, at(first.report, "scenario").dump(), input.path,
                                           at(input.report, "scenario").dump()));
        }
        if (at(input.report, "histogram") != at(first.report, "histogram")) {
            throw UsageFailure(fmt::format("merge: {} and {} record latency in different histogram layouts ({} vs {}); "
                                           "re-run the agents with one poolbench version",
                                           first.path, input.path, at(first.report, "histogram").dump(),
                                           at(input.report, "histogram").dump()));
        }
    }
}

/// A note when one agent's load began after another's had ended (the span counts the gap).
std::optional<std::string> overlap_gap(const std::vector<MergeInput>& in) {
    for (const auto& a : in) {
        for (const auto& b : in) {
            const double gap_ms = num(b.report, "load_started_at_unix_ms") - num(a.report, "load_ended_at_unix_ms");
            if (gap_ms > 0) {
                return fmt::format("the agents' loads did not all overlap: {} began {:.3f} s after {} ended; the "
                                   "throughput's span counts the gap",
                                   b.path, gap_ms / 1000.0, a.path);
            }
        }
    }
    return std::nullopt;
}

void merge_errors(Report& r, const std::vector<MergeInput>& in) {
    for (const auto& input : in) {
        add_error_counts(r.errors_by_class, at(input.report, "errors_by_class"));
        r.errors_other += u64(input.report, "errors_other");
        for (const auto& e : at(input.report, "errors")) {
            ErrorSample s{str(e, "message"), u64(e, "count"), str(e, "kind"), str(e, "code")};
            auto it = std::find_if(r.errors.begin(), r.errors.end(), [&](const ErrorSample& x) {
                return x.kind == s.kind && x.code == s.code && x.message == s.message;
            });
            if (it == r.errors.end()) {
                r.errors.push_back(std::move(s));
            } else {
                it->count += s.count;
            }
        }
        const Json& w = at(input.report, "writes");
        if (w.is_object()) {
            if (!r.writes) r.writes = WritesSection{.checked = true, .error = {}};
            r.writes->acknowledged += u64(w, "acknowledged");
            r.writes->verified += u64(w, "verified");
            r.writes->lost += u64(w, "lost");
            r.writes->in_doubt += u64(w, "in_doubt");
            r.writes->in_doubt_committed += u64(w, "in_doubt_committed");
            r.writes->checked = r.writes->checked && at(w, "checked").is_boolean() && at(w, "checked").get<bool>();
            // The first agent whose count failed says why (older reports have no error).
            if (r.writes->error.empty() && at(w, "error").is_string()) {
                r.writes->error = input.path + ": " + at(w, "error").get<std::string>();
            }
        }
        r.leaks_tracked = r.leaks_tracked || (at(input.report, "leaks_tracked").is_boolean() && at(input.report, "leaks_tracked").get<bool>());
        for (const auto& l : at(input.report, "leaks")) {
            if (r.leaks.size() >= 1000) break;
            LeakRecord rec;
            rec.held_ms = num(l, "held_ms");
            rec.thread = input.path + ": " + str(l, "thread");
            rec.thread_id = static_cast<long>(num(l, "thread_id"));
            rec.thread_name = str(l, "thread_name");
            rec.kind = str(l, "kind");
            for (const auto& f : at(l, "stack")) rec.stack.push_back(f.is_string() ? f.get<std::string>() : f.dump());
            r.leaks.push_back(std::move(rec));
        }
    }
    std::stable_sort(r.errors.begin(), r.errors.end(), [](const ErrorSample& a, const ErrorSample& b) { return a.count > b.count; });
}

}  // namespace

Report merge_reports(const std::vector<MergeInput>& in, const std::vector<std::string>& extra_expect) {
    if (in.empty()) throw UsageFailure("merge: give the agents' reports: poolbench merge A.json B.json ... -o ALL.json");
    refuse_mixed(in);
    Report r;
    const Json& first = in.front().report;
    r.command = str(first, "command");
    if (at(first, "scenario").is_string()) r.scenario = str(first, "scenario");
    r.backend = str(at(first, "database"), "backend");
    r.url_redacted = str(at(first, "database"), "url");
    r.prepared_statements = str(at(first, "database"), "prepared_statements");

    // The clock: every agent's start, load start and load end, in ms since the epoch.
    double origin = INFINITY, load_start = INFINITY, load_end = -INFINITY, end = -INFINITY, bin_s = 0;
    for (const auto& input : in) {
        const double started = num(input.report, "started_at_unix_ms");
        origin = std::min(origin, started);
        load_start = std::min(load_start, num(input.report, "load_started_at_unix_ms"));
        load_end = std::max(load_end, num(input.report, "load_ended_at_unix_ms"));
        end = std::max(end, started + num(input.report, "duration_s") * 1000.0);
        bin_s = std::max(bin_s, num(at(input.report, "config"), "sample_interval_s", 1.0));
    }
    r.started_at = from_unix_ms(origin);
    r.load_started_at = from_unix_ms(load_start);
    r.load_ended_at = from_unix_ms(load_end);
    r.duration_s = (end - origin) / 1000.0;
    r.load_duration_s = std::max(0.0, (load_end - load_start) / 1000.0);
    r.config = merge_config(in, bin_s);

    std::vector<const Json*> latency;
    std::vector<std::string> names;
    std::vector<TimelineSource> timelines;
    std::vector<double> offsets;
    for (const auto& input : in) {
        const double offset_s = (num(input.report, "started_at_unix_ms") - origin) / 1000.0;
        const OpCounts ops = read_ops(at(input.report, "ops"));
        add_ops(r.ops, ops);
        latency.push_back(&at(input.report, "latency_us"));
        names.push_back(input.path);
        TimelineSource src{read_timeline(at(input.report, "timeline")), offset_s, {}};
        for (const auto& p : at(input.report, "phases")) {
            src.phases.emplace_back(num(p, "load_started_s", num(p, "started_s")), num(p, "sample_interval_s"));
        }
        if (src.phases.empty()) {
            src.phases.emplace_back((num(input.report, "load_started_at_unix_ms") - num(input.report, "started_at_unix_ms")) / 1000.0,
                                    num(at(input.report, "config"), "sample_interval_s", 1.0));
        }
        timelines.push_back(std::move(src));
        offsets.push_back(offset_s);
        r.merged_from.push_back(MergedSource{input.path, str(input.report, "started_at"), offset_s, ops,
                                             num(input.report, "throughput_ops_s"), num(input.report, "load_duration_s"),
                                             str(input.report, "verdict")});
        for (const auto& n : at(input.report, "notes")) r.notes.push_back(fmt::format("{}: {}", input.path, n.is_string() ? n.get<std::string>() : n.dump()));
        if (at(input.report, "aborted").is_boolean() && at(input.report, "aborted").get<bool>()) {
            r.aborted = true;
            r.abort_reason = input.path + ": " + str(input.report, "abort_reason");
        }
        if (r.recovery_rule.empty()) r.recovery_rule = str(input.report, "recovery_rule");
    }
    std::pair<Histogram, Histogram> acquire_op;
    r.latency_us = merge_latency_sets(latency, names, &acquire_op);
    r.latency_histogram_us = {histogram_bins_us(acquire_op.first), histogram_bins_us(acquire_op.second)};
    // One rule for every merged throughput: all successful operations over the span from
    // the earliest load start to the latest load end (agents that did not overlap count
    // the gap between them, as one long run would).
    r.throughput_ops_s = r.load_duration_s > 0 ? static_cast<double>(r.ops.ok) / r.load_duration_s : 0;
    r.pool = merge_pools(in);
    merge_nodes(r, in);
    merge_errors(r, in);
    r.timeline = merge_timeline(timelines, bin_s);
    merge_phases(r, in, offsets);

    r.notes.insert(r.notes.begin(), fmt::format(
        "merged {} agents' reports: counts and latency histograms summed, percentiles from the merged histogram; "
        "throughput = {} successful operations / {:.3f} s from the earliest load start to the latest load end "
        "(wall clocks: keep the agents' in sync, e.g. NTP)",
        in.size(), r.ops.ok, r.load_duration_s));
    for (auto& d : differences(in)) r.notes.push_back(std::move(d));
    if (auto gap = overlap_gap(in)) r.notes.push_back(std::move(*gap));
    for (const auto& input : in) {
        if (input.report.contains("baseline")) {
            r.notes.push_back(fmt::format("{}: its --baseline (no pool) run is not merged", input.path));
        }
    }
    merge_expectations(r, in, extra_expect);
    return r;
}

}  // namespace poolbench::cli
