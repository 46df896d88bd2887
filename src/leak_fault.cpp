// leak_fault.cpp — leases leaked on purpose and what the pool found (leak_fault.hpp).
#include "leak_fault.hpp"

#include "runner.hpp"

#include <poolbench/error.hpp>

#include <fmt/format.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <exception>
#include <string>
#include <thread>
#include <utility>

namespace poolbench::cli {

// Both have external linkage and are never inlined, so their names appear in the
// acquiring stacks the pool records. The check looks for the first one.
Lease poolbench_leak_injected_lease(Pool& pool, std::chrono::milliseconds timeout);
void poolbench_leak_legitimate_hold(Pool& pool, std::size_t count, std::chrono::milliseconds hold,
                                    std::chrono::milliseconds timeout, const std::stop_token& stop);

[[gnu::noinline]] Lease poolbench_leak_injected_lease(Pool& pool, std::chrono::milliseconds timeout) {
    Lease lease = pool.acquire(timeout);
    asm volatile("" ::: "memory");  // keep this frame (no tail call)
    return lease;
}

[[gnu::noinline]] void poolbench_leak_legitimate_hold(Pool& pool, std::size_t count, std::chrono::milliseconds hold,
                                                      std::chrono::milliseconds timeout, const std::stop_token& stop) {
    std::vector<Lease> held;
    held.reserve(count);
    for (std::size_t i = 0; i < count; ++i) held.push_back(pool.acquire(timeout));
    // The legitimate hold itself, under the threshold; cut short when the fault ends early.
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    (void)cv.wait_for(lock, stop, hold, [] { return false; });
    held.clear();
    asm volatile("" ::: "memory");
}

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t trace_frames_checked = 5;

}  // namespace

void LeakLog::add(const LeakReport& report) {
    LeakFact f;
    f.leased_at = Clock::now() - report.held;
    f.kind = report.kind;
    f.thread_id = report.thread_id;
    f.has_stack = !report.stack.empty();
    for (std::size_t i = 0; i < std::min(trace_frames_checked, report.stack.size()); ++i) {
        if (report.stack[i].find(leak_injector) != std::string::npos) f.traced = true;
    }
    {
        std::lock_guard lock(mu_);
        facts_.push_back(f);
        if (report.kind != LeakReport::Kind::returned && listed_.size() < max_listed) listed_.push_back(report);
    }
    cv_.notify_all();
}

std::vector<LeakReport> LeakLog::listed() const {
    std::lock_guard lock(mu_);
    return listed_;
}

std::size_t LeakLog::size() const {
    std::lock_guard lock(mu_);
    return facts_.size();
}

std::vector<LeakFact> LeakLog::since(std::size_t from) const {
    std::lock_guard lock(mu_);
    if (from >= facts_.size()) return {};
    return {facts_.begin() + static_cast<std::ptrdiff_t>(from), facts_.end()};
}

bool LeakLog::wait(const std::function<bool()>& done, Clock::time_point deadline, const std::atomic<bool>* cancel) {
    while (true) {
        std::unique_lock lock(mu_);
        const std::size_t seen = facts_.size();
        lock.unlock();
        if (done()) return true;
        const auto now = Clock::now();
        if (now >= deadline || (cancel != nullptr && cancel->load())) return false;
        lock.lock();
        // Re-checks at least every 100 ms to notice a cancel request.
        cv_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds{100}),
                       [&] { return facts_.size() != seen; });
    }
}

namespace {

struct Classified {
    std::uint64_t injected_reported = 0;  ///< first reports of this fault's leases
    std::uint64_t reclaimed_first = 0;    ///< ... of which the first report was the reclaim
    std::uint64_t traced = 0, false_positives = 0, injected_reclaimed = 0, returned = 0;
};

// Each leased lease gets one first report: "suspected" once past the threshold, or — when
// the housekeeper's pass reaches it only after leak_reclaim_after (a slow pass: symbolizing
// the first trace of a process can take a few hundred ms) — a "reclaimed" report carrying
// the trace. A reclaim of a lease already reported has no trace. A first report from
// another thread is a false positive, unless it shows the injector (another leak fault's) —
// or its lease was taken before the fault began (`since`): a hold of the load before it,
// reported late, is not this fault's to judge.
Classified classify(const std::vector<LeakFact>& facts, long leaker_tid, Clock::time_point since) {
    Classified c;
    for (const auto& r : facts) {
        const bool injected = r.thread_id == leaker_tid;
        bool first = false;
        switch (r.kind) {
            case LeakReport::Kind::suspected: first = true; break;
            case LeakReport::Kind::reclaimed:
                if (injected) ++c.injected_reclaimed;
                first = r.has_stack;
                if (first && injected) ++c.reclaimed_first;
                break;
            case LeakReport::Kind::returned:
                if (injected) ++c.returned;
                break;
        }
        if (!first) continue;
        if (!injected) {
            if (!r.traced && r.leased_at >= since) ++c.false_positives;
            continue;
        }
        ++c.injected_reported;
        if (r.traced) ++c.traced;
    }
    return c;
}

// The thread that leaks: takes the leases (so the traces name it and its function) and
// keeps them until finish(), when it returns them itself (late returns are reported with
// its thread id) and then runs `after_return` — while still alive, so no other thread can
// have reused its kernel thread id when the reports are classified. Between start() and
// finish() other threads may use the leases (the thread only waits meanwhile).
class Leaker {
public:
    Leaker(Pool& pool, std::size_t count, std::function<void(long)> after_return)
        : pool_(pool), count_(count), after_return_(std::move(after_return)) {}
    Leaker(const Leaker&) = delete;
    Leaker& operator=(const Leaker&) = delete;
    ~Leaker() { finish(); }

    /// Starts the thread and waits until it has taken every lease (or failed: rethrows).
    /// Taking them all must end by `deadline`.
    void start(Clock::time_point deadline) {
        deadline_ = deadline;
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
        const long tid = static_cast<long>(::syscall(SYS_gettid));
        std::vector<Lease> taken;
        std::exception_ptr error;
        try {
            taken.reserve(count_);
            for (std::size_t i = 0; i < count_; ++i) {
                const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - Clock::now());
                try {
                    taken.push_back(poolbench_leak_injected_lease(pool_, std::max(left, std::chrono::milliseconds{1})));
                } catch (const Error& e) {
                    throw FaultFailure(fmt::format("leaking lease {} of {} ({} already out): {}", i + 1, count_, i, e.what()));
                }
            }
        } catch (...) {
            error = std::current_exception();
            taken.clear();
        }
        std::unique_lock lock(mu_);
        tid_ = tid;
        leases_ = std::move(taken);
        error_ = error;
        acquired_ = true;
        cv_.notify_all();
        cv_.wait(lock, [&] { return go_; });
        leases_.clear();  // the late returns
        if (!error_ && after_return_) after_return_(tid);
    }

    Pool& pool_;
    std::size_t count_;
    Clock::time_point deadline_;
    std::function<void(long)> after_return_;
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool acquired_ = false;
    bool go_ = false;
    long tid_ = 0;
    std::vector<Lease> leases_;
    std::exception_ptr error_;
};

class Leak final : public ActiveFault {
public:
    Leak(const FaultSpec& spec, FaultTargets& t)
        : spec_(spec), pool_(*t.pool), log_(t.leak_log), interrupt_(t.interrupt),
          reclaim_(t.pool->config().leak_reclaim_after),
          leaker_(*t.pool, spec.leaks, [this](long tid) { final_ = classify(log_->since(from_), tid, injected_at_); }) {
        from_ = log_->size();
        check_.injected = spec.leaks;
        check_.legitimate_holds = spec.holds;
        check_.injector = leak_injector;
        if (reclaim_.count() > 0) check_.reclaim_after_ms = reclaim_.count();
        const auto hold = spec.hold_for.count() > 0 ? spec.hold_for : pool_.config().leak_threshold / 2;
        injected_at_ = Clock::now();
        // Taking the leases (and the holds) is bounded by the fault's timeout and its own
        // window: a fault that cannot get them in time did not start, and does not hold up
        // the fault clock past its window.
        const auto bound = spec.await_detection ? spec.timeout : std::min(spec.timeout, spec.duration);
        const auto take_by = injected_at_ + bound;

        // The legitimate holds run beside the leaks: only the leaks may be reported.
        if (spec.holds > 0) {
            const auto hold_timeout = std::chrono::ceil<std::chrono::milliseconds>(bound);
            holder_ = std::jthread([this, hold, hold_timeout](const std::stop_token& stop) {
                name_this_thread("pb-holder");
                try {
                    poolbench_leak_legitimate_hold(pool_, spec_.holds, hold, hold_timeout, stop);
                } catch (...) {
                    holder_error_ = std::current_exception();
                }
            });
        }
        leaker_.start(take_by);  // a failure leaves through start_fault; the members join and return
    }

    [[nodiscard]] std::optional<Clock::time_point> started_at() const override { return injected_at_; }

    /// With await_detection: until the pool reported every lease (see await()).
    [[nodiscard]] bool await_ready() override {
        if (!spec_.await_detection) return true;
        await(injected_at_);
        return awaited_;
    }

    void stop() override {
        if (holder_.joinable()) {
            holder_.request_stop();  // a hold still going when the fault ends early ends now
            holder_.join();
        }
        if (!spec_.await_detection) await_reports();
        if (reclaim_.count() > 0 && !revoked_checked_ && current().injected_reclaimed >= spec_.leaks) check_revoked();
        leaker_.finish();  // the late returns, then the final classification (on the leaker thread)
        check_.reported = final_.injected_reported;
        check_.reclaimed_before_report = final_.reclaimed_first;
        check_.traced_to_injector = final_.traced;
        check_.false_positives = final_.false_positives;
        check_.reclaimed = final_.injected_reclaimed;
        check_.returned_late = final_.returned;
        stopped_ = true;
        if (holder_error_) {
            try {
                std::rethrow_exception(holder_error_);
            } catch (const std::exception& e) {
                throw FaultFailure(fmt::format("a legitimate hold failed: {}", e.what()));
            }
        }
    }

    [[nodiscard]] std::optional<LeakCheckSection> leak_check() const override {
        if (!stopped_) return std::nullopt;
        return check_;
    }

    [[nodiscard]] std::string detail() const override {
        std::string out = fmt::format("{} lease{} held from {}() by thread pb-leaker until the fault ended", spec_.leaks,
                                      spec_.leaks == 1 ? "" : "s", leak_injector);
        if (spec_.holds > 0) out += fmt::format(", {} held legitimately by pb-holder", spec_.holds);
        if (stopped_) {
            out += fmt::format("; the pool reported {} ({} traced to it), {} false positive{}, {} late return{}",
                               check_.reported, check_.traced_to_injector, check_.false_positives,
                               check_.false_positives == 1 ? "" : "s", check_.returned_late,
                               check_.returned_late == 1 ? "" : "s");
        }
        if (spec_.await_detection && !awaited_) {
            out += interrupted_while_waiting_
                       ? std::string("; interrupted while waiting for the pool's reports, so the phase's load did not run")
                       : fmt::format("; the pool did not report{} every lease within {} ms, so the phase's load did not run",
                                     reclaim_.count() > 0 ? " and reclaim" : "", spec_.timeout.count());
        }
        return out;
    }

private:
    [[nodiscard]] Classified current() const { return classify(log_->since(from_), leaker_tid(), injected_at_); }
    [[nodiscard]] long leaker_tid() const noexcept { return leaker_.thread_id(); }

    /// Until every lease is reported (and, when the pool reclaims, revoked) or the timeout.
    void await(Clock::time_point injected_at) {
        const auto deadline = injected_at + spec_.timeout;
        awaited_ = log_->wait([&] { return current().injected_reported >= spec_.leaks; }, deadline, interrupt_);
        if (awaited_ && reclaim_.count() > 0) {
            awaited_ = log_->wait([&] { return current().injected_reclaimed >= spec_.leaks; }, deadline, interrupt_);
            if (awaited_) check_revoked();
        }
        check_.detection_wait_ms = std::chrono::duration<double, std::milli>(Clock::now() - injected_at).count();
        interrupted_while_waiting_ = !awaited_ && interrupt_ != nullptr && interrupt_->load();
    }

    /// The housekeeper publishes a report once its trace is symbolized (the first of a
    /// process can take a while on a busy machine): leases held long enough to have been
    /// found — past the threshold (and the reclaim) plus a housekeeping interval — are
    /// returned only once their reports are in, or at the fault's timeout or a Ctrl-C.
    void await_reports() {
        const PoolConfig& c = pool_.config();
        if (Clock::now() - injected_at_ < std::max(c.leak_threshold, c.leak_reclaim_after) + c.housekeeping_interval) {
            return;  // ended early (an ops-bounded phase, Ctrl-C): what was found is what counts
        }
        (void)log_->wait(
            [&] {
                const Classified now = current();
                return now.injected_reported >= spec_.leaks && (reclaim_.count() == 0 || now.injected_reclaimed >= spec_.leaks);
            },
            Clock::now() + spec_.timeout, interrupt_);
    }

    /// Every leased lease was revoked: each must now refuse to be used.
    void check_revoked() {
        std::size_t threw = 0;
        for (auto& lease : leaker_.leases()) {
            try {
                (void)lease->ping();
            } catch (const LeaseRevoked&) {
                ++threw;
            } catch (const Error&) {  // NOLINT(bugprone-empty-catch): counted as not thrown
            }
        }
        check_.revoked_use_threw = !leaker_.leases().empty() && threw == leaker_.leases().size();
        revoked_checked_ = true;
    }

    FaultSpec spec_;
    Pool& pool_;
    std::shared_ptr<LeakLog> log_;
    const std::atomic<bool>* interrupt_;
    std::chrono::milliseconds reclaim_;
    std::size_t from_ = 0;
    Clock::time_point injected_at_;
    Classified final_;
    LeakCheckSection check_;
    bool awaited_ = false;
    bool interrupted_while_waiting_ = false;
    bool revoked_checked_ = false;
    bool stopped_ = false;
    std::exception_ptr holder_error_;
    std::jthread holder_;  // joined by stop(), or on the way out of a failed start
    Leaker leaker_;  // last: its thread is joined before the members it classifies into go
};

}  // namespace

std::unique_ptr<ActiveFault> start_leak_fault(const FaultSpec& spec, FaultTargets& targets) {
    if (targets.pool == nullptr || !targets.leak_log) throw FaultFailure("the leak fault needs the pool and its leak log");
    return std::make_unique<Leak>(spec, targets);
}

}  // namespace poolbench::cli
