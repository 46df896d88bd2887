// scenario_runner.cpp — checking a scenario against the database chosen, and running it:
// drivers (the real one, PostgreSQL backend tracking, the fault decorator), one pool, the
// phases in order with their fault clocks, then one report and its expectations.
#include "scenario_runner.hpp"

#include "cli.hpp"
#include "expectation.hpp"
#include "fault_clock.hpp"
#include "faults.hpp"
#include "recovery.hpp"
#include "report_json.hpp"

#include <poolbench/drivers.hpp>
#include <poolbench/error.hpp>
#include <poolbench/internal/fast_clock.hpp>
#include <poolbench/writer_gate.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

namespace poolbench::cli {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

namespace {

double seconds(std::chrono::milliseconds d) { return std::chrono::duration<double>(d).count(); }
double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::string backend_list(const std::vector<Backend>& backends) {
    std::string out;
    for (auto b : backends) out += (out.empty() ? "" : ", ") + std::string(to_string(b));
    return out;
}

/// The table pg.lock_table locks when the fault names none: the phase's workload table.
std::string default_table(const PhaseSpec& p) {
    switch (p.workload.kind) {
        case WorkloadKind::write:
        case WorkloadKind::mixed:
        case WorkloadKind::read_write: return "poolbench_writes";
        case WorkloadKind::read: return "poolbench_accounts";
        case WorkloadKind::select1: break;
    }
    return {};
}

double write_ratio(const PhaseSpec& p) {
    switch (p.workload.kind) {
        case WorkloadKind::write:
        case WorkloadKind::read_write: return 1.0;
        case WorkloadKind::mixed: return p.workload.write_ratio;
        case WorkloadKind::select1:
        case WorkloadKind::read: break;
    }
    return 0.0;
}

bool plain_identifier(const std::string& name) {
    if (name.empty() || name.size() > 63) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_' ||
               c == '.';
    });
}

std::string fault_scope(const FaultRecord& f) {
    return fmt::format("fault {} ({}) in phase {}", f.index, f.kind, f.phase);
}

bool any_writes(const ScenarioSpec& spec) {
    return std::any_of(spec.phases.begin(), spec.phases.end(), [](const PhaseSpec& p) {
        return p.workload.kind == WorkloadKind::write || p.workload.kind == WorkloadKind::read_write ||
               (p.workload.kind == WorkloadKind::mixed && p.workload.write_ratio > 0);
    });
}

/// The report's shape before the run: what expectations may name.
Report skeleton(const ScenarioSpec& spec) {
    Report r;
    r.command = "run";
    r.scenario = spec.name;
    if (any_writes(spec)) r.writes = WritesSection{};
    if (spec.phases.size() >= 2) r.drift = DriftSection{};
    for (const auto& p : spec.phases) {
        PhaseRecord rec;
        rec.name = p.name;
        r.phases.push_back(rec);
        std::size_t index = 0;
        for (const auto& f : p.faults) {
            FaultRecord fr;
            fr.index = ++index;
            fr.kind = std::string(to_string(f.kind));
            fr.phase = p.name;
            if (f.kind == FaultKind::leak) fr.leaks_reported = 0;
            r.faults.push_back(fr);
        }
    }
    return r;
}

const std::vector<std::string_view> live_paths{"ops.ok", "ops.failed", "ops.timed_out", "ops.total"};

}  // namespace

void check_scenario(const ScenarioSpec& spec, const DbUrl& db, const ScenarioRunOptions& options) {
    if (std::find(spec.backends.begin(), spec.backends.end(), db.backend) == spec.backends.end()) {
        throw UsageFailure(fmt::format("scenario '{}' runs on {}, not on {} ({}); pass --db with one of those",
                                       spec.name, backend_list(spec.backends), to_string(db.backend), db.redacted));
    }
    if (db.backend == Backend::sqlite && any_writes(spec)) {
        for (const auto& [name, value] : db.params) {
            if ((name == "mode" && value == "ro") || (name == "immutable" && value == "1")) {
                throw UsageFailure(fmt::format("{} opens the database read-only ({}={}), and this run writes: use a "
                                               "read workload (select1, read), or drop {} from the URL",
                                               db.redacted, name, value, name));
            }
        }
    }
    const Json shape = report_to_json(skeleton(spec));
    auto check_paths = [&](const std::vector<ExpectText>& list, const Json& scope, const std::string& where) {
        for (const auto& e : list) {
            std::string error;
            const auto parsed = parse_expectation(e.text, error);
            if (!parsed) throw UsageFailure(fmt::format("{}: {}", e.where.text, error));
            if (auto why = check_expectation_path(*parsed, scope); !why.empty()) {
                throw UsageFailure(fmt::format("{}: expectation '{}' ({}): {}", e.where.text, e.text, where, why));
            }
        }
    };
    check_paths(spec.expect, shape, "run scope");
    for (const auto& e : spec.abort_on_fail) {
        std::string error;
        const auto parsed = parse_expectation(e.text, error);
        if (!parsed) throw UsageFailure(fmt::format("{}: {}", e.where.text, error));
        if (std::find(live_paths.begin(), live_paths.end(), parsed->path) == live_paths.end()) {
            throw UsageFailure(fmt::format("{}: abort_on_fail '{}': only ops.ok, ops.failed, ops.timed_out and ops.total "
                                           "are known while the run goes on",
                                           e.where.text, e.text));
        }
    }
    std::size_t fault_index = 0;
    for (std::size_t i = 0; i < spec.phases.size(); ++i) {
        const auto& p = spec.phases[i];
        check_paths(p.expect, shape.at("phases").at(i), "phase " + p.name);
        for (const auto& f : p.faults) {
            const Json& scope = shape.at("faults").at(fault_index++);
            check_paths(f.expect, scope, fmt::format("a {} fault of phase {}", to_string(f.kind), p.name));
            const auto can = fault_backends(f.kind);
            if (std::find(can.begin(), can.end(), db.backend) == can.end()) {
                throw UsageFailure(fmt::format("{}: a {} fault runs on {}, not on {} ({})", f.where.text,
                                               to_string(f.kind), backend_list(can), to_string(db.backend),
                                               db.redacted));
            }
            if (f.kind == FaultKind::sqlite_lock && db.memory) {
                throw UsageFailure(fmt::format("{}: sqlite.lock needs a database file another process can open, not "
                                               "an in-memory database",
                                               f.where.text));
            }
            if (f.kind == FaultKind::pg_restart && options.restart_command.empty()) {
                throw UsageFailure(fmt::format("{}: this scenario restarts the server: pass --restart-command CMD (for "
                                               "the throwaway server, scripts/pg_sandbox.sh restart-command prints one)",
                                               f.where.text));
            }
            if (f.kind == FaultKind::pg_lock_table) {
                const std::string table = f.table.empty() ? default_table(p) : f.table;
                if (table.empty()) {
                    throw UsageFailure(fmt::format("{}: pg.lock_table needs a table: phase '{}' runs select1, which "
                                                   "uses none (set table = \"...\")",
                                                   f.where.text, p.name));
                }
                if (!plain_identifier(table)) {
                    throw UsageFailure(fmt::format("{}: table '{}' must be a plain lower-case name (schema.table "
                                                   "allowed)",
                                                   f.where.text, table));
                }
            }
            if (f.kind == FaultKind::leak) {
                // The housekeeper looks for leaks every housekeeping_interval: a lease must be
                // held past the threshold by at least that much to be seen for sure.
                if (spec.pool.leak_threshold.count() == 0 ||
                    spec.pool.leak_threshold + spec.pool.housekeeping_interval >= f.duration) {
                    throw UsageFailure(fmt::format("{}: a leak fault's 'for' ({} ms) must exceed [pool] leak_threshold "
                                                   "({} ms) plus housekeeping_interval ({} ms), so the pool can see the "
                                                   "leaks",
                                                   f.where.text, f.duration.count(), spec.pool.leak_threshold.count(),
                                                   spec.pool.housekeeping_interval.count()));
                }
                if (f.leaks >= spec.pool.max_size) {
                    throw UsageFailure(fmt::format("{}: leaking {} leases from a pool of {} leaves the load nothing",
                                                   f.where.text, f.leaks, spec.pool.max_size));
                }
            }
        }
    }
}

namespace {

/// One phase's part of the run, kept for the report.
struct PhaseOutcome {
    LoadResult load;
    double started_s = 0;  // since the run started
    std::vector<FaultRun> faults;
    /// A phase without faults still times its outage (first failure to steady success),
    /// so a plain stress run reports it beside its failure counts.
    std::unique_ptr<OutageProbe> probe = std::make_unique<OutageProbe>();
    std::unique_ptr<std::atomic<OutageProbe*>> probe_slot;
    std::uint64_t open_fds = 0, rss_bytes = 0, pool_connections = 0;
};

std::uint64_t count_open_fds() {
    std::error_code ec;
    std::uint64_t n = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec)) {
        ++n;
    }
    return n > 0 ? n - 1 : 0;  // the directory iterator's own descriptor
}

std::uint64_t resident_bytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (f == nullptr) return 0;
    unsigned long long size = 0, resident = 0;
    const int n = std::fscanf(f, "%llu %llu", &size, &resident);
    std::fclose(f);
    return n == 2 ? resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

class ScenarioRun {
public:
    ScenarioRun(const ScenarioSpec& spec, const DbUrl& db, std::shared_ptr<Driver> driver,
                const ScenarioRunOptions& options, const RunHooks& hooks)
        : spec_(spec), db_(db), driver_(std::move(driver)), options_(options), hooks_(hooks),
          secrets_(url_secrets(db.original)), run_id_(make_run_id()) {}

    Report run() {
        // One run id per phase: a worker's write sequence starts again in each phase.
        for (const auto& p : spec_.phases) workloads_.emplace_back(p.workload, db_.backend, run_id_ + "-" + p.name);
        const bool sqlite_file = db_.backend == Backend::sqlite && !db_.memory;
        const auto journal_before = sqlite_file ? sqlite_file_journal_mode(db_.path) : std::nullopt;
        preflight();

        auto settings = std::make_shared<FaultSettings>();
        std::shared_ptr<BackendRegistry> registry;
        std::shared_ptr<Driver> base = driver_;
        if (db_.backend == Backend::postgresql) {
            registry = std::make_shared<BackendRegistry>();
            base = std::make_shared<TrackingDriver>(driver_, registry);
        }
        // The fault decorator only where an in-process fault needs it: it costs a few atomic
        // loads per statement, which a stress run on null:// would measure.
        const bool in_process_faults = std::any_of(spec_.phases.begin(), spec_.phases.end(), [](const PhaseSpec& p) {
            return std::any_of(p.faults.begin(), p.faults.end(), [](const FaultSpec& f) {
                return f.kind == FaultKind::connection_storm || f.kind == FaultKind::latency;
            });
        });
        std::shared_ptr<Driver> faulty = in_process_faults ? std::make_shared<FaultDriver>(base, settings) : base;

        mark_load_started();
        Report report = header();
        report.started_at = std::chrono::system_clock::now();
        run_start_ = Clock::now();
        {
            Pool pool(faulty, spec_.pool);
            FaultTargets targets{driver_, settings, &pool, db_, options_.restart_command, registry, options_.self_exe};
            for (std::size_t i = 0; i < spec_.phases.size() && !stop_.load(); ++i) {
                outcomes_.push_back(run_phase(i, pool, targets, report));
            }
            const std::size_t active_at_end = pool.stats().active;
            const bool clean = pool.shutdown(std::chrono::seconds(5));
            report.pool = make_pool_section(pool.stats(), spec_.pool.min_idle, active_at_end, clean);
            if (report.leaks_tracked) {
                for (const auto& l : pool.leaks()) {
                    if (l.kind != LeakReport::Kind::returned) report.leaks.push_back(make_leak_record(l));
                }
            }
        }
        for (auto& e : report.pool.breaker.history) e.reason = redact(e.reason);
        if (sqlite_file) journal_notes(report, journal_before, sqlite_file_journal_mode(db_.path));
        if (!headroom_note_.empty()) report.notes.push_back(headroom_note_);
        assemble(report);
        evaluate(report);
        return report;
    }

private:
    [[nodiscard]] std::string redact(std::string_view text) const { return scrub(std::string(text), secrets_); }

    /// A user's file is converted only when the URL asks; either way the report says what
    /// its journal mode is and costs.
    static void journal_notes(Report& report, const std::optional<std::string>& before,
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

    void preflight() {
        try {
            auto conn = driver_->connect(Clock::now() + spec_.pool.acquire_timeout);
            for (const auto& w : workloads_) w.setup(*conn);
            if (db_.backend == Backend::postgresql) check_headroom(*conn);
        } catch (const std::exception& e) {
            throw DatabaseUnusable(unusable_message(db_, e.what()));
        }
    }

    /// A pool larger than the server's free connection slots fails in a way that looks like
    /// an outage: say so once, before the run, with what to change.
    void check_headroom(Connection& conn) {
        std::int64_t max = 0, reserved = 0, used = 0;
        try {
            const Rows r = conn.query(
                "SELECT current_setting('max_connections')::int8, current_setting('superuser_reserved_connections')::int8, "
                "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')");
            max = r.int_at(0, 0);
            reserved = r.int_at(0, 1);
            used = r.int_at(0, 2);
        } catch (const Error&) {
            return;  // a server (or a proxy) that does not say: nothing to warn about
        }
        const std::int64_t free_slots = max - reserved - used + 1;  // this connection closes before the run
        if (static_cast<std::int64_t>(spec_.pool.max_size) <= free_slots) return;
        const bool flags = options_.command != "run";
        headroom_note_ = fmt::format(
            "the pool may open {} connections but the server has {} free (max_connections {}, {} reserved, {} in use): "
            "lower {}, or raise max_connections",
            spec_.pool.max_size, std::max<std::int64_t>(free_slots, 0), max, reserved, used - 1,
            flags ? "--pool-size" : "[pool] max_size");
        fmt::print(stderr, "poolbench: warning: {}\n", headroom_note_);
    }

    Report header() const {
        Report r;
        r.command = options_.command;
        if (options_.command == "run") r.scenario = spec_.name;
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
        if (spec_.phases.size() == 1) {
            // One phase (stress, soak, or a one-phase scenario): its settings are the run's.
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
    /// by operations; otherwise at least 20 points, at most 1 s apart.
    static std::chrono::milliseconds sample_interval(const PhaseSpec& p) {
        using std::chrono::milliseconds;
        if (p.sample_interval) return *p.sample_interval;
        if (!p.faults.empty() || !p.duration) return milliseconds{100};
        return std::clamp(*p.duration / 20, milliseconds{10}, milliseconds{1000});
    }

    PhaseOutcome run_phase(std::size_t index, Pool& pool, FaultTargets& targets, Report& report) {
        const PhaseSpec& p = spec_.phases[index];
        LoadSpec load;
        load.threads = p.threads;
        load.ops = p.ops;
        load.duration = p.duration;
        load.rate_ops_s = p.rate;
        load.sample_interval = sample_interval(p);
        load.connect_timeout = spec_.pool.acquire_timeout;
        load.error_backoff = spec_.error_backoff;

        std::atomic<bool> stop_phase{false};
        FaultClock clock(p, targets, default_table(p), hooks_.cancel, stop_phase);
        PhaseOutcome out;
        RunHooks hooks;
        hooks.cancel = &stop_phase;
        // Only a phase with faults has outages to time: the others skip the probe per operation.
        if (p.faults.empty()) {
            out.probe_slot = std::make_unique<std::atomic<OutageProbe*>>(out.probe.get());
            hooks.probe = out.probe_slot.get();
        } else {
            hooks.probe = clock.probe_slot();
        }
        hooks.on_start = [&](Clock::time_point start) {
            out.started_s = seconds_between(run_start_, start);
            clock.start(start);
        };
        hooks.on_sample = [&](const ProgressSample& sample) {
            // Ctrl-C is seen here too, in case the fault clock is busy starting a fault.
            if (hooks_.cancel != nullptr && hooks_.cancel->load()) stop_phase = true;
            if (hooks_.on_sample) hooks_.on_sample(sample);
            check_abort(sample, out.started_s, stop_phase, report);
        };
        // The phase is over: faults are reverted before its workers are joined (a worker
        // blocked by a lock returns only when the lock is gone).
        hooks.on_stop = [&] { (void)clock.finish(); };
        clock.start_faults_at_zero();
        out.load = run_load(pool, workloads_[index], load, hooks, p.writer_gate.value_or(spec_.writer_gate) ? &gate_ : nullptr);
        out.faults = std::move(clock.finish());
        out.open_fds = count_open_fds();
        out.rss_bytes = resident_bytes();
        out.pool_connections = pool.stats().total;
        if (clock.interrupted() || (hooks_.cancel != nullptr && hooks_.cancel->load())) {
            report.interrupted = true;
            report.interrupted_at = fmt::format("in phase '{}', {:.1f} s into it", p.name, out.load.duration_s);
            stop_ = true;
        }
        if (stop_phase.load()) stop_ = true;
        done_ok_ += out.load.ops.ok;
        done_failed_ += out.load.ops.failed;
        done_timed_out_ += out.load.ops.timed_out;
        return out;
    }

    /// abort_on_fail: checked at each sample once abort_grace has passed since the run began.
    void check_abort(const ProgressSample& s, double phase_started_s, std::atomic<bool>& stop_phase, Report& report) {
        if (spec_.abort_on_fail.empty() || report.aborted) return;
        const double now_s = phase_started_s + s.point.t_s;
        if (now_s < seconds(spec_.abort_grace)) return;
        const std::uint64_t ok = done_ok_ + s.ok;
        const std::uint64_t timed_out = done_timed_out_ + s.timed_out;
        const std::uint64_t failed = done_failed_ + (s.failed - s.timed_out);
        const Json live{{"ops", Json{{"ok", ok}, {"failed", failed}, {"timed_out", timed_out}, {"total", ok + failed + timed_out}}}};
        for (const auto& e : spec_.abort_on_fail) {
            std::string error;
            const auto parsed = parse_expectation(e.text, error);
            if (!parsed) continue;  // checked before the run
            const Expectation x = evaluate_expectation(*parsed, live, {});
            if (!x.passed) {
                report.aborted = true;
                report.abort_reason = fmt::format("abort_on_fail '{}' failed at {:.1f} s (actual {})", e.text, now_s, x.actual);
                stop_phase = true;
                return;
            }
        }
    }

    void assemble(Report& report) {
        Histogram acquire, query, op, failed;
        for (std::size_t i = 0; i < outcomes_.size(); ++i) {
            const PhaseSpec& p = spec_.phases[i];
            const PhaseOutcome& o = outcomes_[i];
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
            rec.duration_s = r.duration_s;
            rec.ops = r.ops;
            rec.throughput_ops_s = r.throughput_ops_s();
            rec.latency_us = summarize(r);
            rec.errors_by_class = r.errors_by_kind;
            rec.writes_acknowledged = r.writes_acknowledged;
            rec.late = r.late;
            rec.skipped = r.skipped;
            rec.cancelled = r.cancelled;
            rec.sample_interval_s = seconds(sample_interval(p));
            if (p.faults.empty()) {
                const std::int64_t failed_at = o.probe->first_failure_ns.load();
                const std::int64_t ok_at = o.probe->recovered_ns.load();
                if (failed_at == 0) {
                    rec.outage_ms = 0.0;
                } else if (ok_at != 0) {
                    rec.outage_ms = std::max(0.0, static_cast<double>(ok_at - failed_at) / 1e6);
                }
            }
            rec.open_fds = o.open_fds;
            rec.rss_bytes = o.rss_bytes;
            rec.pool_connections = o.pool_connections;
            // A fault is meant to stall a phase: there the stall rule is opt-in.
            if (p.check_stalls.value_or(p.rate > 0 && p.faults.empty()) && !r.cancelled) {
                const auto stalls = stalled_intervals(r.timeline, rec.sample_interval_s,
                                                      p.rate > 0 ? p.rate : rec.throughput_ops_s);
                rec.stalled_intervals = stalls.size();
                // When, not only how many (since the run began; the first 20).
                for (std::size_t k = 0; k < stalls.size() && k < 20; ++k) rec.stalled_at_s.push_back(o.started_s + stalls[k]);
            }
            report.phases.push_back(rec);

            acquire.merge(r.acquire_ns);
            query.merge(r.query_ns);
            op.merge(r.op_ns);
            failed.merge(r.failed_ns);
            report.ops.ok += r.ops.ok;
            report.ops.statement_timeouts += r.ops.statement_timeouts;
            report.ops.failed += r.ops.failed;
            report.ops.timed_out += r.ops.timed_out;
            report.duration_s += r.duration_s;
            for (std::size_t k = 0; k < report.errors_by_class.size(); ++k) report.errors_by_class[k] += r.errors_by_kind[k];
            writes_acknowledged_ += r.writes_acknowledged;
            for (auto point : r.timeline) {
                point.t_s += o.started_s;
                report.timeline.push_back(point);
            }
            merge_errors(report, r);
            report.pool.peak_total = std::max(report.pool.peak_total, r.max_total_seen);
            limit_violated_ = limit_violated_ || r.limit_violated;

            for (std::size_t k = 0; k < o.faults.size(); ++k) {
                report.faults.push_back(fault_record(p, k, o, report));
            }
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
        if (outcomes_.size() >= 2) {
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
            d.rss_over_allowance_bytes =
                d.rss_bytes > static_cast<std::int64_t>(d.rss_allowance_bytes)
                    ? static_cast<std::uint64_t>(d.rss_bytes) - d.rss_allowance_bytes
                    : 0;
            report.drift = d;
        }
        report.ops.total = report.ops.ok + report.ops.failed + report.ops.timed_out + report.ops.statement_timeouts;
        report.throughput_ops_s = report.duration_s > 0 ? static_cast<double>(report.ops.ok) / report.duration_s : 0;
        report.latency_us = {summarize_ns(acquire), summarize_ns(query), summarize_ns(op), summarize_ns(failed)};

        if (any_writes(spec_)) {
            WritesSection w;
            w.acknowledged = writes_acknowledged_;
            try {
                auto conn = driver_->connect(Clock::now() + spec_.pool.acquire_timeout);
                w.checked = true;
                for (std::size_t i = 0; i < outcomes_.size(); ++i) {
                    if (!workloads_[i].writes()) continue;
                    const auto verified = workloads_[i].count_written(*conn);
                    if (!verified) {
                        w.checked = false;
                        break;
                    }
                    w.verified += *verified;
                }
                w.lost = w.checked && w.acknowledged > w.verified ? w.acknowledged - w.verified : 0;
            } catch (const std::exception& e) {
                report.errors.push_back({redact(fmt::format("write verification failed: {}", e.what())), 1, "other", ""});
            }
            report.writes = w;
        }
    }

    /// The library's advice names PoolConfig fields; here it names what the user sets.
    [[nodiscard]] std::string cli_advice(std::string message) const {
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

    void merge_errors(Report& report, const LoadResult& r) const {
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

    FaultRecord fault_record(const PhaseSpec& p, std::size_t k, const PhaseOutcome& o, const Report& report) const {
        const FaultSpec& f = p.faults[k];
        const FaultRun& run = o.faults[k];
        FaultRecord rec;
        rec.index = k + 1;
        rec.kind = std::string(to_string(f.kind));
        rec.phase = p.name;
        rec.at_s = seconds(f.at);
        if (f.kind != FaultKind::pg_restart) rec.for_s = seconds(f.duration);
        rec.reverted = run.reverted;
        rec.error = redact(run.error);
        rec.detail = redact(run.detail);
        if (f.kind == FaultKind::leak) {
            std::uint64_t traced = 0;
            for (const auto& l : report.leaks) {
                if (std::any_of(l.stack.begin(), l.stack.end(), [](const std::string& frame) {
                        return frame.find("poolbench_scenario_leaked_lease") != std::string::npos;
                    })) {
                    ++traced;
                }
            }
            rec.leaks_reported = traced;
        }
        if (!run.started || run.error.rfind("did not start", 0) == 0) return rec;
        const Clock::time_point phase_start = run_start_ + std::chrono::duration_cast<Clock::duration>(
                                                               std::chrono::duration<double>(o.started_s));
        // A fault at 0 starts just before the load does.
        const double start_s = std::max(0.0, seconds_between(phase_start, *run.started));
        const double end_s = run.ended ? seconds_between(phase_start, *run.ended) : o.load.duration_s;
        rec.started_s = o.started_s + start_s;
        rec.ended_s = o.started_s + end_s;
        const Recovery r = measure_recovery(o.load.timeline, o.load.interval_errors, start_s, end_s);
        rec.recovery_ms = r.recovery_ms;
        rec.recovery_basis = r.basis;
        rec.level_ops_s = r.level_ops_s;
        rec.failed = r.failed;
        rec.stalled_ms = r.stalled_ms;
        rec.errors_by_class = r.errors_by_class;
        const std::int64_t failed_at = run.probe->first_failure_ns.load();
        const std::int64_t ok_at = run.probe->recovered_ns.load();
        if (failed_at == 0) {
            rec.outage_ms = 0.0;
        } else if (ok_at != 0) {
            rec.outage_ms = std::max(0.0, static_cast<double>(ok_at - failed_at) / 1e6);
        }
        return rec;
    }

    void evaluate(Report& report) const {
        auto& ex = report.expectations;
        if (report.writes) {
            if (report.writes->checked) {
                ex.push_back({"writes.lost == 0", "== 0", static_cast<double>(report.writes->lost), report.writes->lost == 0});
            } else if (db_.backend != Backend::null) {
                ex.push_back({"writes verified", "count query succeeds", 0, false});
            }
        }
        ex.push_back({"pool.peak_total <= pool.max_size", fmt::format("<= {}", report.pool.max_size),
                      static_cast<double>(report.pool.peak_total),
                      report.pool.peak_total <= report.pool.max_size && !limit_violated_});
        ex.push_back({"pool.active_at_end == 0", "== 0", static_cast<double>(report.pool.active_at_end),
                      report.pool.active_at_end == 0});
        const bool flat = options_.command != "run";  // stress, soak: names as they always were
        for (std::size_t i = 0; i < report.phases.size(); ++i) {
            const PhaseRecord& p = report.phases[i];
            const std::string scope = flat ? std::string() : "phase " + p.name;
            // A paced phase keeps its rate, unless a fault in it is meant to stop it.
            if (p.rate_ops_s > 0 && !p.cancelled && spec_.phases[i].faults.empty()) {
                // A paced phase must keep up with its target rate.
                Expectation e{"throughput_ops_s >= 95% of the target rate", fmt::format(">= {:.1f}", p.rate_ops_s * 0.95),
                              p.throughput_ops_s, p.throughput_ops_s >= p.rate_ops_s * 0.95};
                e.scope = scope;
                ex.push_back(std::move(e));
            }
            if (p.stalled_intervals) {
                Expectation e{"timeline intervals without a completed operation == 0", "== 0",
                              static_cast<double>(*p.stalled_intervals), *p.stalled_intervals == 0};
                e.scope = scope;
                ex.push_back(std::move(e));
            }
        }
        const bool leak_faults = std::any_of(report.faults.begin(), report.faults.end(),
                                             [](const FaultRecord& f) { return f.kind == "leak"; });
        if (report.leaks_tracked && !leak_faults) {
            ex.push_back({"leaks.reported == 0", "== 0", static_cast<double>(report.pool.leaks_detected),
                          report.pool.leaks_detected == 0});
        }
        for (const auto& f : report.faults) {
            const bool ran = f.started_s.has_value() && f.error.empty();
            Expectation e{"fault ran and was reverted", "started, reverted, no error", ran && f.reverted ? 1.0 : 0.0,
                          ran && f.reverted};
            e.scope = fault_scope(f);
            if (!f.error.empty()) e.note = f.error;
            ex.push_back(std::move(e));
        }

        const Json json = report_to_json(report);
        auto add = [&](const std::vector<ExpectText>& list, const Json& scope, const std::string& name) {
            for (const auto& e : list) {
                std::string error;
                if (const auto parsed = parse_expectation(e.text, error)) ex.push_back(evaluate_expectation(*parsed, scope, name));
            }
        };
        add(spec_.expect, json, {});
        add(spec_.abort_on_fail, json, {});
        std::size_t fault_index = 0;
        for (std::size_t i = 0; i < spec_.phases.size(); ++i) {
            add(spec_.phases[i].expect, json.at("phases").at(i), "phase " + spec_.phases[i].name);
            for (const auto& f : spec_.phases[i].faults) {
                add(f.expect, json.at("faults").at(fault_index), fault_scope(report.faults[fault_index]));
                ++fault_index;
            }
        }
        // An expectation written in the file that a built-in already states is listed once.
        std::vector<Expectation> unique;
        for (auto& e : ex) {
            const bool seen = std::any_of(unique.begin(), unique.end(), [&](const Expectation& u) {
                return u.name == e.name && u.scope == e.scope;
            });
            if (!seen) unique.push_back(std::move(e));
        }
        ex = std::move(unique);
        if (report.aborted) ex.push_back({"run not aborted", "abort_on_fail held", 0, false});
        // An interrupted run is not judged by an expectation: its RunError (exit 130) says so.
    }

    const ScenarioSpec& spec_;
    const DbUrl& db_;
    std::shared_ptr<Driver> driver_;
    const ScenarioRunOptions& options_;
    const RunHooks& hooks_;
    std::vector<std::string> secrets_;
    std::string run_id_;
    std::vector<Workload> workloads_;
    std::string headroom_note_;
    WriterGate gate_{"poolbench-writers"};  // one per database file, shared by every phase
    std::vector<PhaseOutcome> outcomes_;
    Clock::time_point run_start_;
    std::atomic<bool> stop_{false};
    std::uint64_t done_ok_ = 0, done_failed_ = 0, done_timed_out_ = 0;
    std::uint64_t writes_acknowledged_ = 0;
    bool limit_violated_ = false;
};

}  // namespace

std::vector<double> stalled_intervals(const std::vector<TimelinePoint>& timeline, double interval_s,
                                      double expected_ops_s) {
    std::vector<double> stalled;
    if (expected_ops_s * interval_s < 2) return stalled;
    double previous_t = 0;
    for (const auto& p : timeline) {
        const bool full = p.t_s - previous_t >= interval_s * 0.9;
        if (full && p.ops_s <= 0) stalled.push_back(p.t_s);
        previous_t = p.t_s;
    }
    return stalled;
}

Report run_scenario(const ScenarioSpec& spec, const DbUrl& db, std::shared_ptr<Driver> driver,
                    const ScenarioRunOptions& options, const RunHooks& hooks) {
    ScenarioRun run(spec, db, std::move(driver), options, hooks);
    return run.run();
}

}  // namespace poolbench::cli
