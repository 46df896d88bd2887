// cmd_leak.cpp — `poolbench leak`: leak leases on purpose and check that the pool's leak
// detection finds every one of them, exactly once, with a stack trace that points at the
// code that leaked — and never flags a lease that was merely held for a while.
//
// Flow: preflight → a normal select1 phase (run_load) → a thread named "pb-leaker" takes
// --leaks leases from poolbench_leak_injected_lease() and keeps them, while a thread named
// "pb-holder" holds a few leases for half the threshold and returns them → wait (on the
// pool's on_leak callback, bounded) until the pool has reported the injected leases (and,
// with --reclaim, reclaimed them) → with --reclaim: a revoked lease must throw LeaseRevoked
// and a second phase must run without failures → the leaked leases are returned late →
// shutdown → report.
#include "cli.hpp"
#include "report_files.hpp"
#include "runner.hpp"
#include "workload.hpp"

#include <poolbench/drivers.hpp>
#include <poolbench/error.hpp>
#include <poolbench/pool.hpp>
#include <poolbench/url.hpp>

#include "cli11.hpp"
#include <fmt/format.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace poolbench::cli {

// Both functions have external linkage and are never inlined, so their names appear in
// the acquiring stacks the pool records. The check looks for the first one.
Lease poolbench_leak_injected_lease(Pool& pool);
void poolbench_leak_legitimate_hold(Pool& pool, std::size_t count, std::chrono::milliseconds hold);

__attribute__((noinline)) Lease poolbench_leak_injected_lease(Pool& pool) {
    Lease lease = pool.acquire();
    asm volatile("" ::: "memory");  // keep this frame (no tail call)
    return lease;
}

__attribute__((noinline)) void poolbench_leak_legitimate_hold(Pool& pool, std::size_t count,
                                                              std::chrono::milliseconds hold) {
    std::vector<Lease> held;
    held.reserve(count);
    for (std::size_t i = 0; i < count; ++i) held.push_back(pool.acquire());
    std::this_thread::sleep_for(hold);  // the legitimate hold itself: well under the threshold
    held.clear();
    asm volatile("" ::: "memory");
}

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* injector_name = "poolbench_leak_injected_lease";
constexpr std::size_t trace_frames_checked = 5;
constexpr std::size_t max_legitimate_holds = 2;
constexpr std::chrono::milliseconds max_leak_duration{600'000};  // --threshold, --reclaim
constexpr std::chrono::milliseconds wait_margin{5'000};

struct LeakOptions {
    CommonOptions common;
    std::size_t leaks = 3;
    std::string threshold = "500ms";
    std::string reclaim;
    LoadOptions load{8, 2000, {}, nullptr};
    std::size_t pool_size = 10;
    std::string acquire_timeout = "10s";

    CLI::Option* reclaim_option = nullptr;
};

struct LeakPlan {
    DbUrl db;
    PoolConfig pool;
    LoadSpec load;
    std::size_t leaks = 0;
    std::size_t legitimate = 0;
    std::chrono::milliseconds shutdown_grace{5'000};
};

LeakPlan make_plan(const LeakOptions& o, const DatabaseChoice& db) {
    LeakPlan plan;
    plan.db = parse_db_url(db.url());  // ConfigError: exit 2

    const auto threshold = parse_duration(o.threshold, "--threshold");
    if (threshold > max_leak_duration) {
        throw UsageFailure(fmt::format("--threshold {} is above the 10m maximum", o.threshold));
    }
    std::chrono::milliseconds reclaim{0};
    if (o.reclaim_option->count() > 0) {
        reclaim = parse_duration(o.reclaim, "--reclaim");
        if (reclaim > max_leak_duration) {
            throw UsageFailure(fmt::format("--reclaim {} is above the 10m maximum", o.reclaim));
        }
        if (reclaim <= threshold) {
            throw UsageFailure(
                fmt::format("--reclaim {} must be longer than --threshold {}", o.reclaim, o.threshold));
        }
        if (o.leaks > o.pool_size) {
            throw UsageFailure(fmt::format("--leaks {} exceeds --pool-size {}", o.leaks, o.pool_size));
        }
    } else if (o.leaks >= o.pool_size) {
        throw UsageFailure(fmt::format(
            "--leaks {} must be below --pool-size {}: leaked leases keep their connections, so the pool needs "
            "one left to run (or add --reclaim D to take them back)",
            o.leaks, o.pool_size));
    }

    plan.pool.name = "poolbench";
    plan.pool.max_size = o.pool_size;
    plan.pool.acquire_timeout = parse_duration(o.acquire_timeout, "--acquire-timeout");
    plan.pool.leak_threshold = threshold;
    plan.pool.leak_reclaim_after = reclaim;
    plan.pool.leak_trace_every = 1;
    plan.pool.validate();

    apply_load_options(o.load, o.common, plan.load);
    plan.load.connect_timeout = plan.pool.acquire_timeout;
    plan.leaks = o.leaks;
    plan.legitimate = std::min(max_legitimate_holds, o.pool_size - std::min(o.pool_size, o.leaks));
    return plan;
}

// Wakes the main thread whenever the pool publishes a leak report (on_leak runs on the
// housekeeper thread). Must outlive the pool.
class LeakSignal {
public:
    void notify() {
        {
            std::lock_guard lock(mu_);
            ++events_;
        }
        cv_.notify_all();
    }

    /// Waits until `done()` holds (true), the deadline passes or a cancel is requested
    /// (false). done() is called without the lock held.
    bool wait(const std::function<bool()>& done, Clock::time_point deadline, const std::atomic<bool>& cancel) {
        while (true) {
            std::unique_lock lock(mu_);
            const std::uint64_t seen = events_;
            lock.unlock();
            if (done()) return true;
            const auto now = Clock::now();
            if (now >= deadline || cancel.load()) return false;
            lock.lock();
            // Re-checks at least every 100 ms to notice a cancel request.
            cv_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds{100}),
                           [&] { return events_ != seen; });
        }
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::uint64_t events_ = 0;
};

// The thread that leaks: takes the leases (so the traces name it and its function) and
// keeps them until finish(), when it returns them itself (late returns are reported with
// the returning thread). It stays alive until then, so no other thread can reuse its
// kernel thread id while reports are being classified. Between start() and finish() the
// main thread may use the leases (the thread only waits meanwhile).
class Leaker {
public:
    Leaker(Pool& pool, std::size_t count) : pool_(pool), count_(count) {}
    Leaker(const Leaker&) = delete;
    Leaker& operator=(const Leaker&) = delete;
    ~Leaker() { finish(); }

    /// Starts the thread and waits until it has taken every lease (or failed: rethrows).
    void start() {
        thread_ = std::thread([this] { run(); });
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return acquired_; });
        if (error_) std::rethrow_exception(error_);
    }
    [[nodiscard]] long thread_id() const noexcept { return tid_; }
    [[nodiscard]] std::vector<Lease>& leases() noexcept { return leases_; }
    /// Has the thread return its leases, and joins it. Idempotent.
    void finish() {
        if (!thread_.joinable()) return;
        {
            std::lock_guard lock(mu_);
            go_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

private:
    void run() {
        name_this_thread("pb-leaker");
        std::vector<Lease> taken;
        std::exception_ptr error;
        try {
            taken.reserve(count_);
            for (std::size_t i = 0; i < count_; ++i) taken.push_back(poolbench_leak_injected_lease(pool_));
        } catch (...) {
            error = std::current_exception();
            taken.clear();
        }
        std::unique_lock lock(mu_);
        tid_ = static_cast<long>(::syscall(SYS_gettid));
        leases_ = std::move(taken);
        error_ = error;
        acquired_ = true;
        cv_.notify_all();
        cv_.wait(lock, [&] { return go_; });
        leases_.clear();  // the late returns
    }

    Pool& pool_;
    std::size_t count_;
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool acquired_ = false;
    bool go_ = false;
    long tid_ = 0;
    std::vector<Lease> leases_;
    std::exception_ptr error_;
};

struct Classified {
    std::uint64_t injected_reported = 0;  ///< first reports of injected leases
    std::uint64_t reclaimed_first = 0;    ///< ... of which the first report was the reclaim
    std::uint64_t traced = 0, false_positives = 0, injected_reclaimed = 0, returned = 0;
};

// Each leased lease gets one first report: "suspected" once past the threshold, or —
// when the housekeeper's pass reaches it only after leak_reclaim_after (a slow pass:
// symbolizing the first trace of a process can take a few hundred ms) — a "reclaimed"
// report carrying the trace. A reclaim of a lease already reported has no trace.
Classified classify(const std::vector<LeakReport>& reports, long leaker_tid) {
    Classified c;
    for (const auto& r : reports) {
        const bool injected = r.thread_id == leaker_tid;
        bool first = false;
        switch (r.kind) {
            case LeakReport::Kind::suspected:
                first = true;
                break;
            case LeakReport::Kind::reclaimed:
                if (injected) ++c.injected_reclaimed;
                first = !r.stack.empty();
                if (first && injected) ++c.reclaimed_first;
                break;
            case LeakReport::Kind::returned:
                if (injected) ++c.returned;
                break;
        }
        if (!first) continue;
        if (!injected) {
            ++c.false_positives;
            continue;
        }
        ++c.injected_reported;
        for (std::size_t i = 0; i < std::min(trace_frames_checked, r.stack.size()); ++i) {
            if (r.stack[i].find(injector_name) != std::string::npos) {
                ++c.traced;
                break;
            }
        }
    }
    return c;
}

void add_phase(LoadResult& total, const LoadResult& phase, double t_offset_s) {
    total.duration_s += phase.duration_s;
    total.ops.total += phase.ops.total;
    total.ops.ok += phase.ops.ok;
    total.ops.failed += phase.ops.failed;
    total.ops.timed_out += phase.ops.timed_out;
    total.acquire_ns.merge(phase.acquire_ns);
    total.query_ns.merge(phase.query_ns);
    total.op_ns.merge(phase.op_ns);
    for (auto p : phase.timeline) {
        p.t_s += t_offset_s;
        total.timeline.push_back(p);
    }
    for (const auto& e : phase.errors) {
        auto it = std::find_if(total.errors.begin(), total.errors.end(),
                               [&](const ErrorSample& s) { return s.message == e.message; });
        if (it != total.errors.end()) {
            it->count += e.count;
        } else {
            total.errors.push_back(e);
        }
    }
    total.errors_other += phase.errors_other;
    total.max_total_seen = std::max(total.max_total_seen, phase.max_total_seen);
    total.limit_violated = total.limit_violated || phase.limit_violated;
    total.cancelled = total.cancelled || phase.cancelled;
}

Expectation expect_eq(std::string field, std::uint64_t actual, std::uint64_t expected) {
    return {fmt::format("{} == {}", field, expected), fmt::format("== {}", expected), static_cast<double>(actual),
            actual == expected};
}

void preflight(Driver& driver, const Workload& workload, const LeakPlan& plan) {
    try {
        auto conn = driver.connect(Clock::now() + plan.pool.acquire_timeout);
        workload.setup(*conn);
    } catch (const std::exception& e) {
        throw DatabaseUnusable(unusable_message(plan.db, e.what()));
    }
}

Report run_leak_check(const LeakPlan& plan, const std::shared_ptr<Driver>& driver, const RunHooks& hooks) {
    const std::vector<std::string> secrets = url_secrets(plan.db.original);
    const Workload workload(WorkloadSpec{}, plan.db.backend, make_run_id());
    preflight(*driver, workload, plan);
    mark_load_started();

    Report report;
    report.command = "leak";
    report.backend = std::string(to_string(driver->backend()));
    report.url_redacted = plan.db.redacted;
    report.config.threads = plan.load.threads;
    report.config.pool_max = plan.pool.max_size;
    report.config.pool_min_idle = plan.pool.min_idle;
    report.config.acquire_timeout_ms = plan.pool.acquire_timeout.count();
    report.config.workload = std::string(to_string(workload.spec().kind));
    report.config.ops = plan.load.ops;
    if (plan.load.duration) report.config.duration_s = std::chrono::duration<double>(*plan.load.duration).count();
    report.config.rows = workload.spec().rows;
    report.config.sample_interval_s = std::chrono::duration<double>(plan.load.sample_interval).count();
    report.config.leak_threshold_ms = plan.pool.leak_threshold.count();
    report.config.leak_reclaim_after_ms = plan.pool.leak_reclaim_after.count();
    report.leaks_tracked = true;

    LeakCheckSection check;
    check.injected = plan.leaks;
    check.legitimate_holds = plan.legitimate;
    check.injector = injector_name;
    const bool reclaiming = plan.pool.leak_reclaim_after.count() > 0;
    if (reclaiming) check.reclaim_after_ms = plan.pool.leak_reclaim_after.count();

    LoadResult total;
    bool detected = false;
    bool reclaimed_all = false;
    Classified found;
    std::exception_ptr failure;  // a database error after the pool opened: exit 3, after cleanup

    LeakSignal signal;  // outlives the pool: its on_leak calls notify()
    {
        PoolConfig config = plan.pool;
        config.on_leak = [&signal](const LeakReport&) { signal.notify(); };
        Pool pool(driver, config);
        const auto run_start = Clock::now();
        const std::atomic<bool> never{false};
        const std::atomic<bool>& cancel = hooks.cancel != nullptr ? *hooks.cancel : never;

        add_phase(total, run_load(pool, workload, plan.load, hooks), 0.0);

        Leaker leaker(pool, plan.leaks);
        if (!total.cancelled) {
            try {
                const auto inject_start = Clock::now();
                std::exception_ptr holder_error;
                std::thread holder([&] {
                    name_this_thread("pb-holder");
                    try {
                        poolbench_leak_legitimate_hold(pool, plan.legitimate, plan.pool.leak_threshold / 2);
                    } catch (...) {
                        holder_error = std::current_exception();
                    }
                });
                try {
                    leaker.start();
                } catch (...) {
                    holder.join();
                    throw;
                }
                holder.join();
                if (holder_error) std::rethrow_exception(holder_error);

                // Bounded: threshold + reclaim + a margin (the housekeeper checks every
                // threshold/4, at most every second, and symbolizes before it publishes).
                const auto deadline = inject_start + plan.pool.leak_threshold * 2 + plan.pool.leak_reclaim_after +
                                      wait_margin;
                const long tid = leaker.thread_id();
                const auto n = static_cast<std::uint64_t>(plan.leaks);
                detected = signal.wait([&] { return classify(pool.leaks(), tid).injected_reported >= n; }, deadline,
                                       cancel);
                if (detected && reclaiming) {
                    reclaimed_all = signal.wait(
                        [&] { return classify(pool.leaks(), tid).injected_reclaimed >= n; }, deadline, cancel);
                }
                check.detection_wait_ms = std::chrono::duration<double, std::milli>(Clock::now() - inject_start).count();

                if (reclaimed_all) {
                    // Every injected lease was revoked: each must now refuse to be used.
                    std::size_t threw = 0;
                    for (auto& lease : leaker.leases()) {
                        try {
                            (void)lease->ping();
                        } catch (const LeaseRevoked&) {
                            ++threw;
                        } catch (const Error&) {  // NOLINT(bugprone-empty-catch): counted as not thrown
                        }
                    }
                    check.revoked_use_threw = threw == leaker.leases().size();
                    if (!cancel.load()) {
                        const double offset = std::chrono::duration<double>(Clock::now() - run_start).count();
                        const LoadResult second = run_load(pool, workload, plan.load, hooks);
                        check.second_phase = second.ops;
                        add_phase(total, second, offset);
                    }
                }
            } catch (const Error&) {
                failure = std::current_exception();
            }
        }

        // Late returns: the leaker gives its leases back (revoked ones close their
        // connections). No thread starts between its exit and the classification.
        leaker.finish();
        found = classify(pool.leaks(), leaker.thread_id());

        const std::size_t active_at_end = pool.stats().active;
        const bool clean = pool.shutdown(plan.shutdown_grace);
        report.pool = make_pool_section(pool.stats(), plan.pool.min_idle, active_at_end, clean);
        report.pool.peak_total = std::max(report.pool.peak_total, total.max_total_seen);
        for (const auto& l : pool.leaks()) {
            if (l.kind != LeakReport::Kind::returned) report.leaks.push_back(make_leak_record(l));
        }
    }
    if (failure) std::rethrow_exception(failure);
    for (auto& e : report.pool.breaker.history) e.reason = scrub(e.reason, secrets);

    check.reported = found.injected_reported;
    check.reclaimed_before_report = found.reclaimed_first;
    check.traced_to_injector = found.traced;
    check.false_positives = found.false_positives;
    check.reclaimed = found.injected_reclaimed;
    check.returned_late = found.returned;

    report.duration_s = total.duration_s;
    report.ops = total.ops;
    report.throughput_ops_s = total.throughput_ops_s();
    report.latency_us = summarize(total);
    report.timeline = total.timeline;
    report.interrupted = total.cancelled || (hooks.cancel != nullptr && hooks.cancel->load());
    for (const auto& e : total.errors) report.errors.push_back({scrub(e.message, secrets), e.count, e.kind, e.code});
    report.errors_other = total.errors_other;

    const std::uint64_t n = plan.leaks;
    auto& ex = report.expectations;
    ex.push_back(expect_eq("ops.failed", total.ops.failed, 0));
    ex.push_back(expect_eq("ops.timed_out", total.ops.timed_out, 0));
    ex.push_back(expect_eq("leaks.reported", check.reported, n));
    ex.push_back(expect_eq("leak_check.traced_to_injector", check.traced_to_injector, n));
    ex.push_back(expect_eq("leak_check.false_positives", check.false_positives, 0));
    if (reclaiming) {
        ex.push_back(expect_eq("leak_check.reclaimed", check.reclaimed, n));
        ex.push_back({"revoked lease throws LeaseRevoked", "== 1", check.revoked_use_threw ? 1.0 : 0.0,
                      check.revoked_use_threw});
        const std::uint64_t second_bad =
            check.second_phase ? check.second_phase->failed + check.second_phase->timed_out : 1;
        ex.push_back(expect_eq("leak_check.second_phase.ops.failed", second_bad, 0));
    }
    ex.push_back(expect_eq("leak_check.returned_late", check.returned_late, n));
    ex.push_back({"pool.peak_total <= pool.max_size", fmt::format("<= {}", report.pool.max_size),
                  static_cast<double>(report.pool.peak_total),
                  report.pool.peak_total <= report.pool.max_size && !total.limit_violated});
    if (report.interrupted) ex.push_back({"run completed", "not interrupted", 0, false});
    report.leak_check = std::move(check);
    return report;
}

ExitCode run_leak(const LeakOptions& o) {
    check_report_targets(o.common);
    arm_error_reports(o.common, "leak");
    const DatabaseChoice db = DatabaseChoice::resolve(o.common.db);
    const LeakPlan plan = make_plan(o, db);
    guard_reports_against(o.common, plan.db);

    std::shared_ptr<Driver> driver = open_driver(plan.db);

    ProgressLine progress(o.common);
    const RunHooks hooks = command_hooks(progress);
    const Report report = run_leak_check(plan, driver, hooks);
    progress.finish();
    return emit_report(report, o.common);
}

}  // namespace

Command add_leak_command(CLI::App& app) {
    auto o = std::make_shared<LeakOptions>();
    CLI::App* cmd = app.add_subcommand(
        "leak",
        "Leak leases on purpose and check that the pool reports each one exactly once, with a stack trace "
        "pointing at the leaking code, and never a lease that was only held for a while");

    add_database_option(*cmd, o->common);

    cmd->add_option("--leaks", o->leaks, "Leases to leak (below --pool-size unless --reclaim is given)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1'000}))
        ->capture_default_str()
        ->group("Leaks");
    cmd->add_option("--threshold", o->threshold, "Leak threshold: a lease held longer is reported (at most 10m)")
        ->type_name("DURATION")
        ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
        ->capture_default_str()
        ->group("Leaks");
    o->reclaim_option =
        cmd->add_option("--reclaim", o->reclaim,
                        "Revoke leaked leases after this long (above --threshold), then check that the pool's "
                        "capacity came back (off by default)")
            ->type_name("DURATION")
            ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
            ->group("Leaks");

    add_load_options(*cmd, o->load,
                     {"Worker threads in the normal workload phases",
                      "Operations per workload phase, all threads together",
                      "Run each workload phase this long instead of --ops"});

    cmd->add_option("--pool-size", o->pool_size, "Maximum connections in the pool")
        ->check(CLI::Range(std::size_t{1}, std::size_t{10'000}))
        ->capture_default_str()
        ->group("Pool");
    cmd->add_option("--acquire-timeout", o->acquire_timeout, "How long an acquire waits for a connection")
        ->type_name("DURATION")
        ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
        ->capture_default_str()
        ->group("Pool");

    add_output_options(*cmd, o->common);
    return {cmd, [o] { return run_leak(*o); }};
}

}  // namespace poolbench::cli
