// scenario_runner.cpp — running a scenario: drivers (the real one, server session tracking
// on PostgreSQL and MariaDB, the fault decorator), one pool (or, for replicas and shards,
// a Topology of pools: topology.hpp), the phases in order with their fault clocks,
// abort_on_fail; then the report (scenario_report.cpp) and its verdict
// (scenario_verdict.cpp).
#include "preflight_checks.hpp"
#include "scenario_run.hpp"

#include "cli.hpp"
#include "expectation.hpp"
#include "leak_fault.hpp"
#include "report_json.hpp"
#include "run_observer.hpp"

#include <poolbench/drivers.hpp>
#include <poolbench/error.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

namespace poolbench::cli {

namespace scenario_detail {

using Json = nlohmann::ordered_json;

namespace {

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

/// Tells the observer the pools are gone before they are, also when a phase throws.
class PoolWatch {
public:
    PoolWatch(RunObserver* observer, std::vector<const Pool*> pools) : observer_(observer), pools_(std::move(pools)) {
        if (observer_ == nullptr) return;
        for (const Pool* p : pools_) observer_->pool_opened(*p);
    }
    PoolWatch(const PoolWatch&) = delete;
    PoolWatch& operator=(const PoolWatch&) = delete;
    ~PoolWatch() { closed(); }
    /// Each pool's statistics as they are now (after its shutdown: the report's).
    void closed() noexcept {
        if (observer_ == nullptr) return;
        for (const Pool* p : pools_) {
            try {
                observer_->pool_closed(*p, p->stats());
            } catch (...) {  // NOLINT(bugprone-empty-catch): a phase threw; its error is the one to report
                observer_->pool_closed(*p, PoolStats{});
            }
        }
        observer_ = nullptr;
    }

private:
    RunObserver* observer_;
    std::vector<const Pool*> pools_;
};

}  // namespace

ScenarioRun::ScenarioRun(const ScenarioSpec& spec, const DbUrl& db, std::shared_ptr<Driver> driver,
                         const ScenarioRunOptions& options, const RunHooks& hooks)
    : spec_(spec), db_(db), driver_(std::move(driver)), options_(options), hooks_(hooks),
      secrets_(url_secrets(db.original)), run_id_(make_run_id()) {}

Report ScenarioRun::run() {
    // One run id per phase: a worker's write sequence starts again in each phase.
    for (const auto& p : spec_.phases) workloads_.emplace_back(p.workload, db_.backend, run_id_ + "-" + p.name);
    const bool sqlite_file = db_.backend == Backend::sqlite && !db_.memory;
    const auto journal_before = sqlite_file ? sqlite_file_journal_mode(db_.path) : std::nullopt;
    preflight();

    auto settings = std::make_shared<FaultSettings>();
    std::shared_ptr<BackendRegistry> registry;
    std::shared_ptr<Driver> base = driver_;
    if (!TrackingDriver::session_id_query(db_.backend).empty()) {
        registry = std::make_shared<BackendRegistry>();
        base = std::make_shared<TrackingDriver>(driver_, registry);
    }
    // The fault decorator only where an in-process fault needs it: it costs a few atomic
    // loads per statement, which a stress run on null:// would measure.
    const bool in_process_faults = std::any_of(spec_.phases.begin(), spec_.phases.end(), [](const PhaseSpec& p) {
        return std::any_of(p.faults.begin(), p.faults.end(), [](const FaultSpec& f) {
            return f.kind == FaultKind::connection_storm || f.kind == FaultKind::latency ||
                   f.kind == FaultKind::lost_replies;
        });
    });
    std::shared_ptr<Driver> faulty = in_process_faults ? std::make_shared<FaultDriver>(base, settings) : base;

    // A leak fault reads the pool's leak reports as they are published.
    std::shared_ptr<LeakLog> leak_log;
    PoolConfig config = spec_.pool;
    if (std::any_of(spec_.phases.begin(), spec_.phases.end(), [](const PhaseSpec& p) {
            return std::any_of(p.faults.begin(), p.faults.end(), [](const FaultSpec& f) { return f.kind == FaultKind::leak; });
        })) {
        leak_log = std::make_shared<LeakLog>();
        config.on_leak = [log = leak_log, chained = spec_.pool.on_leak](const LeakReport& r) {
            log->add(r);
            if (chained) chained(r);
        };
    }

    // Several pools (replicas, shards): made, seeded and replayed before the load (exit 3
    // when a node cannot be used); their first pool takes the fault decorator.
    const auto prepare_timeout = std::max<std::chrono::milliseconds>(spec_.pool.acquire_timeout, std::chrono::seconds(30));
    if (spec_.topology.multi()) {
        topology_ = std::make_unique<Topology>(spec_.topology, db_, driver_, faulty, config);
        topology_->prepare(workloads_, prepare_timeout);
    }

    if (options_.observer != nullptr) options_.observer->run_started(spec_);
    mark_load_started();
    Report report = header();
    report.started_at = std::chrono::system_clock::now();
    run_start_ = Clock::now();
    {
        std::unique_ptr<Pool> single = topology_ ? nullptr : std::make_unique<Pool>(faulty, config);
        Pool& pool = topology_ ? topology_->first_pool() : *single;
        const std::vector<const Pool*> all = topology_ ? topology_->pools() : std::vector<const Pool*>{&pool};
        // As pgbench connects its clients before its clock starts: the load begins with
        // min_idle connections open, not with threads queued behind them being opened.
        const auto warm_from = Clock::now();
        bool warm = true;
        if (config.min_idle > 0) {
            std::vector<Pool*> warming{&pool};
            if (topology_) {
                warming.clear();
                for (const auto& n : topology_->nodes()) warming.push_back(n.pool.get());
            }
            for (Pool* p : warming) warm = p->wait_for_min_idle(config.acquire_timeout) && warm;
        }
        const double warmup_ms = std::chrono::duration<double, std::milli>(Clock::now() - warm_from).count();
        if (!warm) {
            report.notes.push_back(fmt::format(
                "the load began with {} of min_idle {} connections open after {} ms (opening more failed or took "
                "longer than acquire_timeout)",
                pool.stats().total, config.min_idle, std::lround(warmup_ms)));
        }
        if (topology_) {
            if (auto note = topology_->start(prepare_timeout)) report.notes.push_back(*note);
        }
        PoolWatch watch(options_.observer, all);
        FaultTargets targets{driver_,  settings, &pool,         db_,     options_.restart_command,
                             registry, options_.self_exe, hooks_.cancel, leak_log, {}, nullptr};
        targets.node_commands = options_.node_commands;
        if (topology_) {
            for (const auto& n : topology_->nodes()) targets.nodes.push_back({n.name, n.role, n.db, n.driver, n.pool.get()});
            targets.router = topology_->router();
        }
        for (std::size_t i = 0; i < spec_.phases.size() && !stop_.load(); ++i) {
            outcomes_.push_back(run_phase(i, pool, targets, report));
        }
        std::vector<LeakReport> pool_leaks;
        for (const Pool* p : all) {
            for (auto& l : p->leaks()) pool_leaks.push_back(std::move(l));
        }
        // A writer's lease may still be out for the WAL checkpoint its commit left to the
        // gate's thread: not a lease the load kept.
        gate_.wait_idle();
        if (topology_) {
            topology_->close_and_report(report, spec_.pool.min_idle, std::chrono::seconds(5));
        } else {
            const std::size_t active_at_end = pool.stats().active;
            const bool clean = pool.shutdown(std::chrono::seconds(5));
            report.pool = make_pool_section(pool.stats(), spec_.pool.min_idle, active_at_end, clean);
        }
        watch.closed();  // the live endpoint's figures are the report's: each pool's after its shutdown
        report.pool.warmup_ms = config.min_idle > 0 ? warmup_ms : 0;
        if (report.leaks_tracked) {
            // With a leak fault, every report as it arrived (the pool keeps only its last 1000).
            for (const auto& l : leak_log ? leak_log->listed() : pool_leaks) {
                if (l.kind != LeakReport::Kind::returned) report.leaks.push_back(make_leak_record(l));
            }
            if (leak_log) report.leaks_list_rule = fmt::format("the report lists the first {}", LeakLog::max_listed);
        }
    }
    for (auto& e : report.pool.breaker.history) e.reason = redact(e.reason);
    report.prepared_statements = driver_->prepared_statements();  // decided by its first connections
    if (sqlite_file) journal_notes(report, journal_before, sqlite_file_journal_mode(db_.path));
    if (!headroom_note_.empty()) report.notes.push_back(headroom_note_);
    assemble(report);
    evaluate(report);
    return report;
}

void ScenarioRun::preflight() {
    try {
        auto conn = driver_->connect(Clock::now() + spec_.pool.acquire_timeout);
        // Before the setup: a read-only server would refuse its CREATE TABLE more vaguely.
        check_writable(*conn, db_.backend, workloads_);
        // Shards are seeded each with its own accounts (Topology::prepare); a primary here,
        // and its replicas receive it.
        if (!spec_.topology.sharded()) {
            for (const auto& w : workloads_) w.setup(*conn);
        }
        if (db_.backend == Backend::postgresql || db_.backend == Backend::mariadb) check_headroom(*conn);
    } catch (const std::exception& e) {
        throw DatabaseUnusable(unusable_message(db_, e.what()));
    }
    // Known only once connected: through PgBouncer a backend pid is a server connection the
    // pooler shares with its other clients (faults.cpp's PgTerminate says the same at run time).
    if (driver_->behind_pooler().value_or(false)) {
        for (const auto& p : spec_.phases) {
            for (const auto& f : p.faults) {
                if (f.kind != FaultKind::pg_terminate_backends) continue;
                throw UsageFailure(fmt::format(
                    "{}: pg.terminate_backends cannot run through a pooler: {} is PgBouncer (or the like), whose server "
                    "connections other clients share; point --db at the server itself",
                    f.where.text, db_.redacted));
            }
        }
    }
}

/// A pool larger than the server's free connection slots fails in a way that looks like
/// an outage: say so once, before the run, with what to change.
void ScenarioRun::check_headroom(Connection& conn) {
    // PostgreSQL keeps superuser_reserved_connections of max_connections back; MariaDB has
    // one extra connection for an administrator beyond max_connections, which an ordinary
    // pool does not get: its free slots are max_connections less Threads_connected.
    const bool pg = db_.backend == Backend::postgresql;
    if (driver_->behind_pooler().value_or(false)) {
        // The pool's connections are the pooler's clients: max_connections does not bound them.
        headroom_note_ = fmt::format(
            "{} is a pooler (PgBouncer) in front of the server: the pool's {} connections are its clients, bounded by "
            "its max_client_conn, and share its server connections (poolbench diagnose shows its settings)",
            db_.redacted, spec_.pool.max_size);
        return;
    }
    std::int64_t max = 0, reserved = 0, used = 0;
    try {
        const Rows r = conn.query(
            pg ? "SELECT current_setting('max_connections')::int8, current_setting('superuser_reserved_connections')::int8, "
                 "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
               : "SELECT CAST(@@max_connections AS SIGNED), 0, (SELECT CAST(VARIABLE_VALUE AS SIGNED) FROM "
                 "information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'THREADS_CONNECTED')");
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
        "the pool may open {} connections but the server has {} free (max_connections {}, {}{} in use): "
        "lower {}, or raise max_connections",
        spec_.pool.max_size, std::max<std::int64_t>(free_slots, 0), max,
        pg ? fmt::format("{} reserved, ", reserved) : std::string(), used - 1, flags ? "--pool-size" : "[pool] max_size");
    fmt::print(stderr, "poolbench: warning: {}\n", headroom_note_);
}

PhaseOutcome ScenarioRun::run_phase(std::size_t index, Pool& pool, FaultTargets& targets, Report& report) {
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
    RunObserver* observer = options_.observer;
    if (observer != nullptr) {
        observer->phase_started(index);
        clock.on_change([observer, index](std::size_t fault, bool active) { observer->fault_changed(index, fault, active); });
    }
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
    const auto phase_start = Clock::now();
    out.started_s = seconds_between(run_start_, phase_start);
    hooks.on_start = [&](Clock::time_point start) {
        out.load_started_s = seconds_between(run_start_, start);
        clock.start(start);
    };
    hooks.on_sample = [&](const ProgressSample& sample) {
        // Ctrl-C is seen here too, in case the fault clock is busy starting a fault.
        if (hooks_.cancel != nullptr && hooks_.cancel->load()) stop_phase = true;
        if (hooks_.on_sample) hooks_.on_sample(sample);
        if (observer != nullptr) observer->phase_sample(sample);
        check_abort(sample, out.load_started_s, stop_phase, report);
    };
    // The phase is over: faults are reverted before its workers are joined (a worker
    // blocked by a lock returns only when the lock is gone).
    hooks.on_stop = [&] { (void)clock.finish(); };
    if (clock.start_faults_at_zero()) {
        const bool gated = p.writer_gate.value_or(spec_.writer_gate);
        out.load = topology_ ? topology_->run_load(workloads_[index], load, hooks, gated)
                             : run_load(pool, workloads_[index], load, hooks, gated ? &gate_ : nullptr);
    } else {
        // A fault at 0 found that the load cannot run (its awaited condition failed): the
        // phase is over before it began, and the run with it.
        out.load_started_s = seconds_between(run_start_, Clock::now());
        out.load.cancelled = true;
    }
    out.faults = std::move(clock.finish());
    if (observer != nullptr) observer->phase_ended(out.load.ops);
    out.ended_s = seconds_between(run_start_, Clock::now());
    out.open_fds = count_open_fds();
    out.rss_bytes = resident_bytes();
    out.pool_connections = 0;
    for (const Pool* each : topology_ ? topology_->pools() : std::vector<const Pool*>{&pool}) {
        out.pool_connections += each->stats().total;
    }
    if (clock.interrupted() || (hooks_.cancel != nullptr && hooks_.cancel->load())) {
        report.interrupted = true;
        report.interrupted_at = fmt::format("in phase '{}', {:.1f} s into it", p.name, out.ended_s - out.started_s);
        stop_ = true;
    }
    if (stop_phase.load()) stop_ = true;
    done_ok_ += out.load.ops.ok;
    done_failed_ += out.load.ops.failed;
    done_timed_out_ += out.load.ops.timed_out;
    return out;
}

/// abort_on_fail: checked at each sample once abort_grace has passed since the run began.
void ScenarioRun::check_abort(const ProgressSample& s, double phase_started_s, std::atomic<bool>& stop_phase, Report& report) {
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

}  // namespace scenario_detail

Report run_scenario(const ScenarioSpec& spec, const DbUrl& db, std::shared_ptr<Driver> driver,
                    const ScenarioRunOptions& options, const RunHooks& hooks) {
    scenario_detail::ScenarioRun run(spec, db, std::move(driver), options, hooks);
    return run.run();
}

}  // namespace poolbench::cli
