// scenario_report.cpp — the scenario engine's one report: the header (database, pool and
// run settings), a record per phase and per fault, the run's totals from the phases'
// histograms merged exactly, drift between the first and last phase, the writes verified
// against the database, and notes.
#include "scenario_run.hpp"

#include "cli.hpp"
#include "leak_fault.hpp"
#include "recovery.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace poolbench::cli::scenario_detail {

namespace {

/// The outage a probe timed: 0 when nothing failed, none when still failing at the end.
std::optional<double> outage_ms(const OutageProbe& probe) {
    const std::int64_t failed_at = probe.first_failure_ns.load();
    const std::int64_t ok_at = probe.recovered_ns.load();
    if (failed_at == 0) return 0.0;
    if (ok_at == 0) return std::nullopt;
    return std::max(0.0, static_cast<double>(ok_at - failed_at) / 1e6);
}

}  // namespace

std::string ScenarioRun::redact(std::string_view text) const { return scrub(std::string(text), secrets_); }

/// A user's file is converted only when the URL asks; either way the report says what
/// its journal mode is and costs.
void ScenarioRun::journal_notes(Report& report, const std::optional<std::string>& before,
                          const std::optional<std::string>& after) {
    if (before && after && *before != *after) {
        report.notes.push_back(fmt::format("the database file was converted from a {} journal to {}, as the URL's "
                                           "journal_mode asked; SQLite keeps that in the file",
                                           *before, *after));
    }
    if (after == "rollback") {
        report.notes.push_back("the database uses a rollback journal (poolbench kept the file's mode): a writer "
                               "and readers block each other; ?journal_mode=wal in the URL lets readers go on "
                               "during writes (and converts the file)");
    }
}

Report ScenarioRun::header() const {
    Report r;
    r.command = options_.command;
    if (options_.command == "run") r.scenario = spec_.name;
    r.run_id = run_id_;
    r.backend = std::string(to_string(db_.backend));
    r.url_redacted = db_.redacted;
    r.config.pool_max = spec_.pool.max_size;
    r.config.pool_min_idle = spec_.pool.min_idle;
    r.config.acquire_timeout_ms = spec_.pool.acquire_timeout.count();
    r.config.leak_threshold_ms = spec_.pool.leak_threshold.count();
    r.config.leak_reclaim_after_ms = spec_.pool.leak_reclaim_after.count();
    r.config.error_backoff_ms = spec_.error_backoff.count();
    r.config.starvation_threshold_us = spec_.pool.starvation_threshold.count();
    const PoolConfig& c = spec_.pool;
    auto ms = [](std::chrono::milliseconds d) { return static_cast<double>(d.count()); };
    r.config.pool_settings = {{"max_size", static_cast<double>(c.max_size)},
                              {"min_idle", static_cast<double>(c.min_idle)},
                              {"core_size", static_cast<double>(c.core_size)},
                              {"max_waiting", static_cast<double>(c.max_waiting)},
                              {"max_connecting", static_cast<double>(c.max_connecting)},
                              {"acquire_timeout_ms", ms(c.acquire_timeout)},
                              {"validation_interval_ms", ms(c.validation_interval)},
                              {"starvation_threshold_ms", static_cast<double>(c.starvation_threshold.count()) / 1000.0},
                              {"idle_timeout_ms", ms(c.idle_timeout)},
                              {"max_lifetime_ms", ms(c.max_lifetime)},
                              {"max_lifetime_jitter", c.max_lifetime_jitter},
                              {"keepalive_interval_ms", ms(c.keepalive_interval)},
                              {"connect_attempts", static_cast<double>(c.connect_retry.max_attempts)},
                              {"connect_backoff_base_ms", ms(c.connect_retry.base)},
                              {"connect_backoff_max_ms", ms(c.connect_retry.max)},
                              {"breaker_failures", static_cast<double>(c.breaker_failures)},
                              {"breaker_cooldown_ms", ms(c.breaker_cooldown)},
                              {"reset_on_release", c.reset_on_release ? 1.0 : 0.0},
                              {"idle_order_fifo", c.idle_order == IdleOrder::fifo ? 1.0 : 0.0},
                              {"leak_threshold_ms", ms(c.leak_threshold)},
                              {"leak_reclaim_after_ms", ms(c.leak_reclaim_after)},
                              {"leak_trace_every", static_cast<double>(c.leak_trace_every)},
                              {"housekeeping_interval_ms", ms(c.housekeeping_interval)},
                              {"writer_gate", spec_.writer_gate ? 1.0 : 0.0}};
    std::size_t threads = 0;
    for (const auto& p : spec_.phases) threads = std::max(threads, p.threads);
    r.config.threads = threads;
    r.config.workload = "phases";
    if (spec_.phases.size() == 1 || options_.command != "run") {
        // One phase (stress, soak, or a one-phase scenario), or a scenario built from a
        // command's flags (leak: its phases run the workload the flags describe): the first
        // phase's settings are the run's.
        const PhaseSpec& p = spec_.phases[0];
        r.config.workload = std::string(to_string(p.workload.kind));
        r.config.ops = p.ops;
        if (p.duration) r.config.duration_s = seconds(*p.duration);
        r.config.write_ratio = write_ratio(p);
        r.config.rows = p.workload.rows;
        r.config.sample_interval_s = seconds(sample_interval(p));
        r.config.rate_ops_s = p.rate;
    }
    r.leaks_tracked = spec_.pool.leak_threshold.count() > 0;
    if (std::any_of(spec_.phases.begin(), spec_.phases.end(), [](const PhaseSpec& p) { return !p.faults.empty(); })) {
        r.recovery_rule = recovery_rule;
    }
    return r;
}

/// The sampling rule: 100 ms in a phase with faults (recovery needs it) or one bounded

PhaseRecord ScenarioRun::phase_record(std::size_t index) const {
    const PhaseSpec& p = spec_.phases[index];
    const PhaseOutcome& o = outcomes_[index];
    const LoadResult& r = o.load;
    PhaseRecord rec;
    rec.name = p.name;
    rec.threads = p.threads;
    rec.workload = std::string(to_string(p.workload.kind));
    rec.write_ratio = write_ratio(p);
    rec.rate_ops_s = p.rate;
    rec.writer_gate = p.writer_gate.value_or(spec_.writer_gate);
    rec.ops_requested = p.ops;
    if (p.duration) rec.duration_requested_s = seconds(*p.duration);
    rec.started_s = o.started_s;
    rec.load_started_s = o.load_started_s;
    rec.duration_s = o.ended_s - o.started_s;
    rec.load_duration_s = r.duration_s;
    rec.ops = r.ops;
    rec.throughput_ops_s = r.throughput_ops_s();
    rec.latency_us = summarize(r);
    rec.errors_by_class = r.errors_by_kind;
    rec.writes_acknowledged = r.writes_acknowledged;
    rec.writes_in_doubt = r.writes_in_doubt.size();
    rec.late = r.late;
    rec.skipped = r.skipped;
    rec.cancelled = r.cancelled;
    rec.sample_interval_s = seconds(sample_interval(p));
    if (p.faults.empty()) rec.outage_ms = outage_ms(*o.probe);
    rec.open_fds = o.open_fds;
    rec.rss_bytes = o.rss_bytes;
    rec.pool_connections = o.pool_connections;
    // A fault is meant to stall a phase: there the stall rule is opt-in.
    if (p.check_stalls.value_or(p.rate > 0 && p.faults.empty()) && !r.cancelled) {
        const auto stalls = stalled_intervals(r.timeline, rec.sample_interval_s,
                                              p.rate > 0 ? p.rate : rec.throughput_ops_s);
        rec.stalled_intervals = stalls.size();
        // When, not only how many (since the run began; the first 20).
        for (std::size_t k = 0; k < stalls.size() && k < 20; ++k) rec.stalled_at_s.push_back(o.load_started_s + stalls[k]);
    }
    return rec;
}

void ScenarioRun::assemble(Report& report) {
    Histogram acquire, query, op, failed;
    for (std::size_t i = 0; i < outcomes_.size(); ++i) {
        const PhaseSpec& p = spec_.phases[i];
        const PhaseOutcome& o = outcomes_[i];
        const LoadResult& r = o.load;
        report.phases.push_back(phase_record(i));

        acquire.merge(r.acquire_ns);
        query.merge(r.query_ns);
        op.merge(r.op_ns);
        failed.merge(r.failed_ns);
        report.ops.ok += r.ops.ok;
        report.ops.statement_timeouts += r.ops.statement_timeouts;
        report.ops.failed += r.ops.failed;
        report.ops.timed_out += r.ops.timed_out;
        report.duration_s += o.ended_s - o.started_s;
        report.load_duration_s += r.duration_s;
        for (std::size_t k = 0; k < report.errors_by_class.size(); ++k) report.errors_by_class[k] += r.errors_by_kind[k];
        writes_acknowledged_ += r.writes_acknowledged;
        for (auto point : r.timeline) {
            point.t_s += o.load_started_s;
            report.timeline.push_back(point);
        }
        merge_errors(report, r);
        report.pool.peak_total = std::max(report.pool.peak_total, r.max_total_seen);
        limit_violated_ = limit_violated_ || r.limit_violated;

        for (std::size_t k = 0; k < o.faults.size(); ++k) report.faults.push_back(fault_record(p, k, o));
    }
    // Phases that never ran (Ctrl-C, abort) still appear, with nothing measured.
    for (std::size_t i = outcomes_.size(); i < spec_.phases.size(); ++i) {
        PhaseRecord rec;
        rec.name = spec_.phases[i].name;
        rec.threads = spec_.phases[i].threads;
        rec.workload = std::string(to_string(spec_.phases[i].workload.kind));
        rec.cancelled = true;
        report.phases.push_back(rec);
        std::size_t index = 0;
        for (const auto& f : spec_.phases[i].faults) {
            FaultRecord fr;
            fr.index = ++index;
            fr.kind = std::string(to_string(f.kind));
            fr.phase = rec.name;
            fr.at_s = seconds(f.at);
            fr.error = "did not start: the run stopped before its phase";
            fr.reverted = true;
            report.faults.push_back(fr);
        }
    }
    report.drift = drift();
    if (!outcomes_.empty() && report.started_at.time_since_epoch().count() != 0) {
        // Wall-clock bounds of the load, for merging agents' reports (timeline t_s counts
        // from started_at; a phase's load from load_started_s after it).
        auto at = [&](double s) {
            return report.started_at +
                   std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(s));
        };
        report.load_started_at = at(outcomes_.front().load_started_s);
        report.load_ended_at = at(outcomes_.back().load_started_s + outcomes_.back().load.duration_s);
    }
    report.ops.total = report.ops.ok + report.ops.failed + report.ops.timed_out + report.ops.statement_timeouts;
    // One rule for every throughput: operations over the time the load ran (a phase's wait
    // for its faults, such as a leak fault's for the pool's reports, is no load time).
    report.throughput_ops_s =
        report.load_duration_s > 0 ? static_cast<double>(report.ops.ok) / report.load_duration_s : 0;
    report.latency_us = {summarize_ns(acquire), summarize_ns(query), summarize_ns(op), summarize_ns(failed)};
    report.latency_histogram_us = {histogram_bins_us(acquire), histogram_bins_us(op)};
    if (any_writes(spec_)) verify_writes(report);
    // `poolbench leak`: its one leak fault's check is the report's own, as it always was.
    if (options_.command == "leak") {
        for (const auto& f : report.faults) {
            if (f.leak_check) report.leak_check = f.leak_check;
        }
        if (!report.leak_check) {
            // The run stopped before the leak phase: nothing was injected, nothing found
            // (the fault's record says it did not start).
            LeakCheckSection c;
            if (spec_.pool.leak_reclaim_after.count() > 0) c.reclaim_after_ms = spec_.pool.leak_reclaim_after.count();
            c.injector = leak_injector;
            report.leak_check = c;
        }
    }
}

/// Drift between the first phase (after warm-up) and the last that ran.
std::optional<DriftSection> ScenarioRun::drift() const {
    if (outcomes_.size() < 2) return std::nullopt;
    const PhaseOutcome& first = outcomes_.front();
    const PhaseOutcome& last = outcomes_.back();
    DriftSection d;
    d.from_phase = spec_.phases.front().name;
    d.to_phase = spec_.phases[outcomes_.size() - 1].name;
    d.open_fds = static_cast<std::int64_t>(last.open_fds) - static_cast<std::int64_t>(first.open_fds);
    d.pool_connections =
        static_cast<std::int64_t>(last.pool_connections) - static_cast<std::int64_t>(first.pool_connections);
    d.rss_bytes = static_cast<std::int64_t>(last.rss_bytes) - static_cast<std::int64_t>(first.rss_bytes);
    d.rss_allowance_bytes = first.rss_bytes / 10 + 8 * 1024 * 1024;
    d.rss_over_allowance_bytes = d.rss_bytes > static_cast<std::int64_t>(d.rss_allowance_bytes)
                                     ? static_cast<std::uint64_t>(d.rss_bytes) - d.rss_allowance_bytes
                                     : 0;
    return d;
}

/// writes.lost: the commits acknowledged that are not in the database now. When counting
/// fails (the server is gone, the count is refused), writes.checked is false and
/// writes.error says why: never a lost count of 0 that nothing measured.
void ScenarioRun::verify_writes(Report& report) {
    WritesSection w;
    w.acknowledged = writes_acknowledged_;
    std::vector<WritingPhase> writing;
    for (std::size_t i = 0; i < outcomes_.size(); ++i) {
        if (!workloads_[i].writes()) continue;
        writing.push_back({&workloads_[i], outcomes_[i].load.writes_in_doubt});
        w.in_doubt += outcomes_[i].load.writes_in_doubt.size();
    }
    // Rows found beyond the in-doubt ones that committed are acknowledged ones.
    const auto settle_lost = [](WritesSection& ws) {
        const std::uint64_t acknowledged_found = ws.verified - std::min(ws.verified, ws.in_doubt_committed);
        ws.lost = ws.checked && ws.acknowledged > acknowledged_found ? ws.acknowledged - acknowledged_found : 0;
    };
    if (topology_) {
        // Per node: the primary's rows (replicas hold copies), or each shard's.
        try {
            topology_->verify_writes(writing, spec_.pool.acquire_timeout, w, report);
            settle_lost(w);
        } catch (const std::exception& e) {
            report.errors.push_back({redact(fmt::format("write verification failed: {}", e.what())), 1, "other", ""});
        }
        report.writes = w;
        return;
    }
    try {
        auto conn = driver_->connect(Clock::now() + spec_.pool.acquire_timeout);
        w.checked = true;
        for (const WritingPhase& phase : writing) {
            const auto found = phase.workload->count_written(*conn, phase.in_doubt);
            if (!found) {
                w.checked = false;
                if (db_.backend != Backend::null) w.error = "the count of this run's rows returned no row";
                break;
            }
            w.verified += found->rows;
            w.in_doubt_committed += found->in_doubt_committed;
        }
        settle_lost(w);
    } catch (const std::exception& e) {
        w.checked = false;
        w.verified = 0;
        w.lost = 0;
        w.in_doubt_committed = 0;
        w.error = redact(e.what());
        report.errors.push_back({"write verification failed: " + w.error, 1, "other", ""});
    }
    report.writes = w;
}

/// The library's advice names PoolConfig fields; here it names what the user sets.
std::string ScenarioRun::cli_advice(std::string message) const {
    const bool flags = options_.command != "run";
    static const std::array<std::pair<const char*, const char*>, 2> names{{
        {"raise max_size or acquire_timeout", "raise {} or {}"},
        {"raise max_size", "raise {}"},
    }};
    for (const auto& [from, to] : names) {
        if (const auto at = message.find(from); at != std::string::npos) {
            const std::string advice =
                std::string_view(to).find("{} or {}") != std::string_view::npos
                    ? fmt::format(fmt::runtime(to), flags ? "--pool-size" : "[pool] max_size",
                                  flags ? "--acquire-timeout" : "[pool] acquire_timeout")
                    : fmt::format(fmt::runtime(to), flags ? "--pool-size" : "[pool] max_size");
            message.replace(at, std::string_view(from).size(), advice);
            break;
        }
    }
    return message;
}

void ScenarioRun::merge_errors(Report& report, const LoadResult& r) const {
    for (const auto& e : r.errors) {
        auto it = std::find_if(report.errors.begin(), report.errors.end(),
                               [&](const ErrorSample& s) { return s.kind == e.kind && s.code == e.code; });
        if (it != report.errors.end()) {
            it->count += e.count;
        } else {
            report.errors.push_back({redact(cli_advice(e.message)), e.count, e.kind, e.code});
        }
    }
    report.errors_other += r.errors_other;
    std::stable_sort(report.errors.begin(), report.errors.end(),
                     [](const ErrorSample& a, const ErrorSample& b) { return a.count > b.count; });
}

FaultRecord ScenarioRun::fault_record(const PhaseSpec& p, std::size_t k, const PhaseOutcome& o) const {
    const FaultSpec& f = p.faults[k];
    const FaultRun& run = o.faults[k];
    FaultRecord rec;
    rec.index = k + 1;
    rec.kind = std::string(to_string(f.kind));
    rec.phase = p.name;
    rec.at_s = seconds(f.at);
    if (!ends_by_itself(f.kind) && !f.await_detection) rec.for_s = seconds(f.duration);
    rec.reverted = run.reverted;
    rec.error = redact(run.error);
    rec.detail = redact(run.detail);
    if (topology_) rec.node = is_replica_fault(f.kind) ? replica_fault_node(f) : topology_->nodes().front().name;
    if (f.kind == FaultKind::leak) {
        rec.leak_check = run.leak_check;
        rec.leaks_reported = run.leak_check ? run.leak_check->reported : 0;
        // Awaited and reclaimed: the phase's load ran on the reclaimed capacity.
        if (rec.leak_check && f.await_detection && rec.leak_check->reclaim_after_ms && !run.stopped_phase) {
            rec.leak_check->second_phase = o.load.ops;
        }
    }
    if (!run.started || run.error.rfind("did not start", 0) == 0) return rec;
    rec.failover_ms = run.failover_ms;
    rec.rejoin_ms = run.rejoin_ms;
    // The record's times are when the fault was in effect (since the run began); recovery is
    // measured on the load's timeline, which counts from the load's start: a fault at 0
    // starts just before the load does.
    const Clock::time_point load_start = run_start_ + std::chrono::duration_cast<Clock::duration>(
                                                          std::chrono::duration<double>(o.load_started_s));
    const double start_s = std::max(0.0, seconds_between(load_start, *run.started));
    const double end_s = run.ended ? seconds_between(load_start, *run.ended) : o.load.duration_s;
    rec.started_s = seconds_between(run_start_, *run.started);
    rec.ended_s = run.ended ? seconds_between(run_start_, *run.ended) : o.ended_s;
    if (o.load.ops.total == 0) return rec;  // no load ran in the phase (a leak check's): nothing to recover
    const Recovery r = measure_recovery(o.load.timeline, o.load.interval_errors, start_s, end_s);
    rec.recovery_ms = r.recovery_ms;
    rec.recovery_basis = r.basis;
    rec.level_ops_s = r.level_ops_s;
    rec.failed = r.failed;
    rec.stalled_ms = r.stalled_ms;
    rec.errors_by_class = r.errors_by_class;
    rec.outage_ms = outage_ms(*run.probe);
    return rec;
}

}  // namespace poolbench::cli::scenario_detail
