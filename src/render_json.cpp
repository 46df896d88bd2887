// render_json.cpp — the "poolbench/report@1" document (DESIGN.md). Field names are a
// contract: add fields, never rename them.
#include "report_json.hpp"

#include <fmt/format.h>

#include <cmath>
#include <string>
#include <vector>

#ifndef POOLBENCH_VERSION
#define POOLBENCH_VERSION "unknown"
#endif

namespace poolbench::cli {

namespace {

using Json = nlohmann::ordered_json;

// Three decimals: nanosecond resolution for microsecond figures, and stable output.
double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

Json number(double v) {
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9e15) return static_cast<std::int64_t>(v);
    return round3(v);
}

/// Milliseconds since the Unix epoch, with microseconds as 3 decimals.
Json unix_ms(std::chrono::system_clock::time_point at) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()).count();
    return number(static_cast<double>(us) / 1000.0);
}

}  // namespace

Json latency_json(const LatencySummary& s) {
    // buckets: [[upper bound in us (inclusive; ns exact at 3 decimals), count], ...] of
    // the non-empty buckets: what `poolbench merge` sums, as HdrHistogram's add() does.
    Json buckets = Json::array();
    for (const auto& [index, n] : s.buckets) {
        buckets.push_back(Json::array({number(static_cast<double>(Histogram::bucket_high(index)) / 1000.0), n}));
    }
    return Json{{"count", s.count},     {"mean", round3(s.mean)}, {"p50", round3(s.p50)},
                {"p90", round3(s.p90)}, {"p99", round3(s.p99)},   {"p999", round3(s.p999)},
                {"max", round3(s.max)}, {"min", round3(s.min)},   {"buckets", std::move(buckets)}};
}

namespace {

Json latency(const LatencySummary& s) { return latency_json(s); }

Json latency_set(const LatencySet& l) {
    return Json{{"acquire", latency(l.acquire)}, {"query", latency(l.query)}, {"op", latency(l.op)},
                {"failed", latency(l.failed)}};
}

Json ops(const OpCounts& o) {
    return Json{{"total", o.total},
                {"ok", o.ok},
                {"failed", o.failed},
                {"timed_out", o.timed_out},
                {"statement_timeouts", o.statement_timeouts}};
}

Json breaker(const BreakerSection& b) {
    Json history = Json::array();
    for (const auto& e : b.history) history.push_back(Json{{"at", format_utc(e.at)}, {"to", e.to}, {"reason", e.reason}});
    return Json{{"state", b.state}, {"transitions", b.transitions}, {"history", std::move(history)}};
}

Json pool(const PoolSection& p) {
    Json by_reason = Json::object();
    for (std::size_t i = 0; i < destroy_reason_count; ++i) {
        by_reason[std::string(to_string(static_cast<DestroyReason>(i)))] = p.destroyed_by_reason[i];
    }
    return Json{{"created", p.created},
                {"destroyed", p.destroyed},
                {"destroyed_by_reason", by_reason},
                {"hits", p.hits},
                {"misses", p.misses},
                {"hit_ratio", std::round(p.hit_ratio * 1e6) / 1e6},
                {"waits", p.waits},
                {"timeouts", p.timeouts},
                {"peak_active", p.peak_active},
                {"peak_total", p.peak_total},
                {"max_size", p.max_size},
                {"min_idle", p.min_idle},
                {"warmup_ms", std::round(p.warmup_ms * 1000) / 1000},
                {"validation_failures", p.validation_failures},
                {"connect_failures", p.connect_failures},
                {"reconnects", p.reconnects},
                {"overloaded", p.overloaded},
                {"circuit_rejections", p.circuit_rejections},
                {"transaction_retries", p.transaction_retries},
                {"keepalives", p.keepalives},
                {"leaks_detected", p.leaks_detected},
                {"leaks_returned_late", p.leaks_returned_late},
                {"leaks_reclaimed", p.leaks_reclaimed},
                {"breaker", breaker(p.breaker)},
                {"connect_us", latency(p.connect_us)},
                {"active_at_end", p.active_at_end},
                {"shutdown_clean", p.shutdown_clean}};
}

Json leak_check(const LeakCheckSection& c) {
    Json j{{"injected", c.injected},
           {"reported", c.reported},
           {"false_positives", c.false_positives},
           {"reclaimed", c.reclaimed},
           {"traced_to_injector", c.traced_to_injector},
           {"legitimate_holds", c.legitimate_holds},
           {"returned_late", c.returned_late},
           {"detection_wait_ms", c.detection_wait_ms ? Json(round3(*c.detection_wait_ms)) : Json(nullptr)},
           {"injector", c.injector}};
    if (c.reclaim_after_ms) {
        j["reclaim_after_ms"] = *c.reclaim_after_ms;
        j["reclaimed_before_report"] = c.reclaimed_before_report;
        j["revoked_use_threw"] = c.revoked_use_threw;
    }
    if (c.second_phase) j["second_phase"] = Json{{"ops", ops(*c.second_phase)}};
    return j;
}

Json error_counts(const ErrorCounts& counts) {
    Json out = Json::object();
    // Every class, zeros too: a path such as errors_by_class.busy always exists.
    for (std::size_t k = 0; k < counts.size(); ++k) out[std::string(to_string(static_cast<ErrorKind>(k)))] = counts[k];
    return out;
}

Json optional_number(const std::optional<double>& v) { return v ? number(round3(*v)) : Json(nullptr); }

Json phase_json(const PhaseRecord& p) {
    Json j{{"name", p.name},
           {"threads", p.threads},
           {"workload", p.workload},
           {"write_ratio", number(p.write_ratio)},
           {"rate_ops_s", number(p.rate_ops_s)},
           {"writer_gate", p.writer_gate}};
    if (p.ops_requested) j["ops_requested"] = *p.ops_requested;
    if (p.duration_requested_s) j["duration_requested_s"] = number(*p.duration_requested_s);
    j["started_s"] = round3(p.started_s);
    j["load_started_s"] = round3(p.load_started_s);
    j["duration_s"] = round3(p.duration_s);
    j["load_duration_s"] = round3(p.load_duration_s);
    j["ops"] = ops(p.ops);
    j["throughput_ops_s"] = round3(p.throughput_ops_s);
    j["latency_us"] = latency_set(p.latency_us);
    j["errors_by_class"] = error_counts(p.errors_by_class);
    j["writes_acknowledged"] = p.writes_acknowledged;
    j["writes_in_doubt"] = p.writes_in_doubt;
    j["late"] = p.late;
    j["skipped"] = p.skipped;
    j["cancelled"] = p.cancelled;
    j["sample_interval_s"] = number(p.sample_interval_s);
    j["stalled_intervals"] = p.stalled_intervals ? Json(*p.stalled_intervals) : Json(nullptr);
    Json stalled_at = Json::array();
    for (const double t : p.stalled_at_s) stalled_at.push_back(round3(t));
    j["stalled_at_s"] = std::move(stalled_at);
    j["outage_ms"] = optional_number(p.outage_ms);
    j["resources_at_end"] = Json{{"open_fds", p.open_fds}, {"rss_bytes", p.rss_bytes}, {"pool_connections", p.pool_connections}};
    return j;
}

Json fault_json(const FaultRecord& f) {
    Json j{{"index", f.index},
           {"kind", f.kind},
           {"phase", f.phase},
           {"at_s", number(f.at_s)},
           {"for_s", optional_number(f.for_s)},
           {"started_s", optional_number(f.started_s)},
           {"ended_s", optional_number(f.ended_s)},
           {"reverted", f.reverted},
           {"error", f.error},
           {"detail", f.detail},
           {"node", f.node.empty() ? Json(nullptr) : Json(f.node)},
           {"recovery_ms", optional_number(f.recovery_ms)},
           {"recovery_basis", f.recovery_basis},
           {"level_ops_s", round3(f.level_ops_s)},
           {"outage_ms", optional_number(f.outage_ms)},
           {"stalled_ms", round3(f.stalled_ms)},
           {"failed", f.failed},
           {"errors_by_class", error_counts(f.errors_by_class)},
           {"leaks_reported", f.leaks_reported ? Json(*f.leaks_reported) : Json(nullptr)}};
    if (f.leak_check) j["leak_check"] = leak_check(*f.leak_check);
    if (f.replica_fault()) {
        j["failover_ms"] = optional_number(f.failover_ms);
        j["rejoin_ms"] = optional_number(f.rejoin_ms);
    }
    return j;
}

}  // namespace

Json report_to_json(const Report& r) {
        Json j;
        j["schema"] = report_schema;
        j["tool"] = Json{{"name", "poolbench"}, {"version", POOLBENCH_VERSION}};
        j["command"] = r.command;
        if (r.started_at.time_since_epoch().count() != 0) {
            j["started_at"] = format_utc(r.started_at);
            j["started_at_unix_ms"] = unix_ms(r.started_at);
        }
        j["scenario"] = r.scenario ? Json(*r.scenario) : Json(nullptr);
        if (!r.run_id.empty()) j["run_id"] = r.run_id;
        j["database"] = Json{{"backend", r.backend}, {"url", r.url_redacted}};
        if (!r.prepared_statements.empty()) j["database"]["prepared_statements"] = r.prepared_statements;
        if (!r.ran) {
            // A command that failed before it ran (exit 2 or 3): what went wrong, nothing else.
            j["error"] = Json{{"exit_code", r.error ? r.error->exit_code : 1},
                              {"message", r.error ? r.error->message : std::string()}};
            j["interrupted"] = r.interrupted;  // Ctrl-C before the load began (exit 130)
            j["verdict"] = r.verdict();
            return j;
        }

        Json config{{"threads", r.config.threads},
                    {"pool_max", r.config.pool_max},
                    {"pool_min_idle", r.config.pool_min_idle},
                    {"acquire_timeout_ms", r.config.acquire_timeout_ms},
                    {"workload", r.config.workload}};
        if (r.config.ops) config["ops"] = *r.config.ops;
        if (r.config.duration_s) config["duration_s"] = number(*r.config.duration_s);
        config["write_ratio"] = number(r.config.write_ratio);
        config["rows"] = r.config.rows;
        config["sample_interval_s"] = number(r.config.sample_interval_s);
        if (r.config.rate_ops_s > 0) config["rate_ops_s"] = number(r.config.rate_ops_s);
        if (r.config.leak_threshold_ms > 0) config["leak_threshold_ms"] = r.config.leak_threshold_ms;
        if (r.config.leak_reclaim_after_ms > 0) config["leak_reclaim_after_ms"] = r.config.leak_reclaim_after_ms;
        config["error_backoff_ms"] = r.config.error_backoff_ms;
        config["starvation_threshold_ms"] = number(static_cast<double>(r.config.starvation_threshold_us) / 1000.0);
        if (!r.config.pool_settings.empty()) {
            Json settings = Json::object();
            for (const auto& [name, value] : r.config.pool_settings) settings[name] = number(value);
            config["pool"] = std::move(settings);
        }
        j["config"] = std::move(config);

        j["duration_s"] = round3(r.duration_s);
        j["load_duration_s"] = round3(r.load_duration_s);
        if (r.load_started_at.time_since_epoch().count() != 0) {
            j["load_started_at_unix_ms"] = unix_ms(r.load_started_at);
            j["load_ended_at_unix_ms"] = unix_ms(r.load_ended_at);
        }
        j["histogram"] = Json{{"kind", "log-linear"}, {"unit", "ns"}, {"sub_bits", Histogram::sub_bits},
                              {"max_bits", Histogram::max_bits}};
        j["ops"] = ops(r.ops);
        j["throughput_ops_s"] = round3(r.throughput_ops_s);
        j["latency_us"] = latency_set(r.latency_us);
        j["pool"] = pool(r.pool);
        if (!r.pools.empty()) {
            // Keyed by node name, so expectations can address pools.replica-1.reads.
            Json nodes = Json::object();
            for (const auto& n : r.pools) {
                Json node{{"role", n.role}, {"url", n.url}, {"reads", n.reads}, {"writes", n.writes},
                          {"read_failures", n.read_failures}};
                if (n.state) node["state"] = *n.state;
                if (n.left_rotation) node["left_rotation"] = *n.left_rotation;
                if (n.rows_verified) node["rows_verified"] = *n.rows_verified;
                node["pool"] = pool(n.pool);
                nodes[n.name] = std::move(node);
            }
            j["pools"] = std::move(nodes);
        }
        if (r.router) {
            j["router"] = Json{{"strategy", r.router->strategy},
                               {"reads_retried", r.router->reads_retried},
                               {"reads_rerouted", r.router->reads_rerouted},
                               {"primary_fallbacks", r.router->primary_fallbacks},
                               {"no_replica_errors", r.router->no_replica_errors}};
        }

        Json leaks = Json::array();
        for (const auto& l : r.leaks) {
            leaks.push_back(Json{{"held_ms", round3(l.held_ms)},
                                 {"thread", l.thread},
                                 {"thread_id", l.thread_id},
                                 {"thread_name", l.thread_name},
                                 {"kind", l.kind},
                                 {"stack", l.stack}});
        }
        j["leaks"] = std::move(leaks);
        Json groups = Json::array();
        for (const auto& g : group_leaks(r.leaks)) {
            groups.push_back(Json{{"kind", g.kind},
                                  {"count", g.count},
                                  {"longest_held_ms", round3(g.longest_held_ms)},
                                  {"first_thread", g.first_thread},
                                  {"stack", g.stack}});
        }
        j["leak_groups"] = std::move(groups);
        j["leaks_not_listed"] = leaks_not_listed(r);
        j["leaks_tracked"] = r.leaks_tracked;
        if (r.leak_check) j["leak_check"] = leak_check(*r.leak_check);

        if (r.writes) {
            // The count failed (the database was unreachable afterwards, the query refused):
            // the figures it gives are unknown, not 0, so an expectation on them fails.
            // null:// counts nothing by design (checked false, no error): 0 as documented.
            const bool unknown = !r.writes->checked && !r.writes->error.empty();
            const auto counted = [&](std::uint64_t v) { return unknown ? Json(nullptr) : Json(v); };
            j["writes"] = Json{{"acknowledged", r.writes->acknowledged},
                               {"verified", counted(r.writes->verified)},
                               {"lost", counted(r.writes->lost)},
                               {"in_doubt", r.writes->in_doubt},
                               {"in_doubt_committed", counted(r.writes->in_doubt_committed)},
                               {"checked", r.writes->checked},
                               {"error", r.writes->error.empty() ? Json(nullptr) : Json(r.writes->error)}};
        }

        Json timeline = Json::array();
        for (const auto& p : r.timeline) {
            timeline.push_back(Json{{"t_s", round3(p.t_s)},
                                    {"ops_s", round3(p.ops_s)},
                                    {"active", p.active},
                                    {"idle", p.idle},
                                    {"waiting", p.waiting},
                                    {"p99_us", round3(p.p99_us)},
                                    {"failed", p.failed},
                                    {"p50_us", round3(p.p50_us)},
                                    {"acquire_p50_us", round3(p.acquire_p50_us)},
                                    {"acquire_p99_us", round3(p.acquire_p99_us)}});
        }
        j["timeline"] = std::move(timeline);
        auto bins = [&](const std::vector<HistogramBin>& v) {
            Json out = Json::array();
            for (const auto& b : v) out.push_back(Json{{"lo_us", b.lo_us}, {"hi_us", b.hi_us}, {"count", b.count}});
            return out;
        };
        j["latency_histogram_us"] = Json{{"acquire", bins(r.latency_histogram_us.acquire)},
                                         {"op", bins(r.latency_histogram_us.op)}};

        Json expectations = Json::array();
        for (const auto& e : r.expectations) {
            Json item{{"name", e.name}, {"expected", e.expected},
                      {"actual", e.note.empty() ? number(e.actual) : Json(nullptr)}, {"passed", e.passed}};
            if (!e.scope.empty()) item["scope"] = e.scope;
            if (!e.note.empty()) item["note"] = e.note;
            expectations.push_back(std::move(item));
        }
        j["expectations"] = std::move(expectations);

        if (r.baseline) {
            const auto& b = *r.baseline;
            Json base{{"throughput_ops_s", round3(b.throughput_ops_s)},
                      {"latency_us", latency_set(b.latency_us)},
                      {"speedup", round3(b.speedup)},
                      {"duration_s", round3(b.duration_s)},
                      {"ops", ops(b.ops)}};
            if (b.ops_requested) base["ops_requested"] = b.ops_requested;
            if (b.duration_limit_s > 0) base["duration_limit_s"] = number(b.duration_limit_s);
            j["baseline"] = std::move(base);
        }

        Json errors = Json::array();
        for (const auto& e : r.errors) {
            errors.push_back(Json{{"kind", e.kind}, {"code", e.code}, {"count", e.count}, {"message", e.message}});
        }
        j["errors"] = std::move(errors);
        j["errors_other"] = r.errors_other;
        j["errors_by_class"] = error_counts(r.errors_by_class);
        if (!r.phases.empty()) {
            Json phases = Json::array();
            for (const auto& p : r.phases) phases.push_back(phase_json(p));
            j["phases"] = std::move(phases);
            Json faults = Json::array();
            for (const auto& f : r.faults) faults.push_back(fault_json(f));
            j["faults"] = std::move(faults);
            if (!r.recovery_rule.empty()) j["recovery_rule"] = r.recovery_rule;
            if (r.drift) {
                const auto& d = *r.drift;
                j["drift"] = Json{{"from_phase", d.from_phase},
                                  {"to_phase", d.to_phase},
                                  {"open_fds", d.open_fds},
                                  {"pool_connections", d.pool_connections},
                                  {"rss_bytes", d.rss_bytes},
                                  {"rss_allowance_bytes", d.rss_allowance_bytes},
                                  {"rss_over_allowance_bytes", d.rss_over_allowance_bytes}};
            }
            j["aborted"] = r.aborted;
            if (r.aborted) j["abort_reason"] = r.abort_reason;
        }
        if (!r.merged_from.empty()) {
            Json sources = Json::array();
            for (const auto& m : r.merged_from) {
                sources.push_back(Json{{"path", m.path},
                                       {"started_at", m.started_at},
                                       {"offset_s", round3(m.offset_s)},
                                       {"ops", ops(m.ops)},
                                       {"throughput_ops_s", round3(m.throughput_ops_s)},
                                       {"load_duration_s", round3(m.load_duration_s)},
                                       {"verdict", m.verdict}});
            }
            j["merged_from"] = std::move(sources);
        }
        if (!r.notes.empty()) j["notes"] = r.notes;
        j["interrupted"] = r.interrupted;
        if (!r.interrupted_at.empty()) j["interrupted_at"] = r.interrupted_at;
        if (r.error) j["error"] = Json{{"exit_code", r.error->exit_code}, {"message", r.error->message}};
        j["verdict"] = r.verdict();
        return j;
}

namespace {

/// Replaces every "buckets" list in `j` with a marker string and keeps its one-line form:
/// indented, a histogram of 800 buckets would take 3,200 lines of the file.
void take_buckets(Json& j, std::vector<std::string>& compact) {
    if (j.is_object()) {
        for (auto& [key, value] : j.items()) {
            if (key == "buckets" && value.is_array()) {
                compact.push_back(value.dump(-1, ' ', false, Json::error_handler_t::replace));
                value = fmt::format("@@poolbench-buckets-{}@@", compact.size() - 1);
            } else {
                take_buckets(value, compact);
            }
        }
    } else if (j.is_array()) {
        for (auto& item : j) take_buckets(item, compact);
    }
}

class JsonRenderer final : public Renderer {
public:
    [[nodiscard]] std::string render(const Report& r) const override {
        Json j = report_to_json(r);
        std::vector<std::string> compact;
        take_buckets(j, compact);
        std::string out = j.dump(2, ' ', false, Json::error_handler_t::replace);
        // Each marker is a whole string value; it goes back in order, one pass.
        std::string joined;
        joined.reserve(out.size());
        std::size_t from = 0;
        for (std::size_t i = 0; i < compact.size(); ++i) {
            const std::string marker = fmt::format("\"@@poolbench-buckets-{}@@\"", i);
            const std::size_t at = out.find(marker, from);
            if (at == std::string::npos) break;  // cannot happen: each was put in above
            joined.append(out, from, at - from);
            joined += compact[i];
            from = at + marker.size();
        }
        joined.append(out, from, std::string::npos);
        return joined + "\n";
    }
};

}  // namespace

std::unique_ptr<Renderer> make_json_renderer() { return std::make_unique<JsonRenderer>(); }

}  // namespace poolbench::cli
