// fault_clock.cpp — starting, ticking and reverting a phase's faults on time.
#include "fault_clock.hpp"

#include "node_faults.hpp"
#include "rotation_times.hpp"
#include "runner.hpp"

#include <poolbench/router.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace poolbench::cli {

using Clock = std::chrono::steady_clock;

namespace {
constexpr auto tick_period = std::chrono::milliseconds{10};
}  // namespace

FaultClock::FaultClock(const PhaseSpec& phase, FaultTargets& targets, std::string table,
                       const std::atomic<bool>* interrupt, std::atomic<bool>& stop_phase)
    : phase_(phase), targets_(targets), table_(std::move(table)), interrupt_(interrupt), stop_phase_(stop_phase) {
    runs_.resize(phase_.faults.size());
    active_.resize(phase_.faults.size());
    for (std::size_t i = 0; i < runs_.size(); ++i) runs_[i].spec = &phase_.faults[i];
}

FaultClock::~FaultClock() { (void)finish(); }

bool FaultClock::start_faults_at_zero() {
    for (auto& f : runs_) {
        if (f.spec->at.count() == 0) begin(f);
    }
    // Only once every fault at 0 is in effect: what one awaits is timed inside its window.
    bool load = true;
    for (std::size_t i = 0; i < runs_.size(); ++i) {
        if (!active_[i] || active_[i]->await_ready()) continue;
        runs_[i].stopped_phase = true;
        stop_phase_ = true;
        load = false;
    }
    return load;
}

void FaultClock::start(Clock::time_point phase_start) {
    phase_start_ = phase_start;
    thread_ = std::thread([this] {
        name_this_thread("pb-faults");
        run();
    });
}

void FaultClock::begin(FaultRun& f) {
    const std::size_t i = static_cast<std::size_t>(&f - runs_.data());
    // The probe is armed first: a failure the fault causes at once must count. It chains to
    // the probes published before it, so an earlier fault's open outage still ends.
    OutageProbe* previous = probe_.load(std::memory_order_relaxed);  // one thread at a time stores
    f.probe->previous = previous;
    probe_.store(f.probe.get(), std::memory_order_release);
    try {
        active_[i] = start_fault(*f.spec, targets_, table_);
        f.started = active_[i]->started_at().value_or(Clock::now());
        if (on_change_) on_change_(i, true);
    } catch (const std::exception& e) {
        probe_.store(previous, std::memory_order_release);  // an earlier fault still in effect keeps its probe
        f.error = fmt::format("did not start: {}", e.what());
        f.started = Clock::now();
        f.ended = f.started;
        f.reverted = true;  // nothing took effect
    }
}

void FaultClock::end(FaultRun& f, std::unique_ptr<ActiveFault>& active) {
    if (!active) return;
    try {
        active->stop();
        f.reverted = true;
    } catch (const std::exception& e) {
        f.error = fmt::format("revert: {}", e.what());
        f.reverted = ends_by_itself(f.spec->kind);  // a command that failed leaves nothing to undo
    }
    f.detail = active->detail();
    f.leak_check = active->leak_check();
    f.ended = Clock::now();
    f.probe->closed.store(true, std::memory_order_relaxed);
    active.reset();
    if (on_change_) on_change_(static_cast<std::size_t>(&f - runs_.data()), false);
}

void FaultClock::run() {
    std::unique_lock lock(mu_);
    while (!done_) {
        const auto now = Clock::now();
        if (interrupt_ != nullptr && interrupt_->load()) {
            interrupted_ = true;
            stop_phase_ = true;
        }
        const bool stopping = stop_phase_.load();
        lock.unlock();
        for (std::size_t i = 0; i < runs_.size(); ++i) {
            FaultRun& f = runs_[i];
            // Nothing new starts once the phase is being stopped (Ctrl-C, abort_on_fail).
            if (!f.started && !stopping && now >= phase_start_ + f.spec->at) begin(f);
            auto& active = active_[i];
            if (!active) continue;
            bool over = false;
            try {
                active->tick(now);
                // A fault lasts its 'for' from when it took effect (a lock may take a moment to
                // get) — but not from before its 'at': a fault at 0 is started just before the
                // load, and the phase's threads may take a while to start.
                const auto from = std::max(*f.started, phase_start_ + f.spec->at);
                over = !ends_by_itself(f.spec->kind) ? now >= from + f.spec->duration
                                                             : active->finished() || now >= from + f.spec->timeout;
            } catch (const std::exception& e) {
                // A fault that broke while in effect (its side connection died) is ended now;
                // its error is the report's, never the process's.
                f.error = fmt::format("failed while in effect: {}", e.what());
                over = true;
            }
            if (over) {
                const std::string error = f.error;
                end(f, active);
                if (!error.empty() && f.error.rfind("revert", 0) != 0) f.error = error;
            }
        }
        lock.lock();
        cv_.wait_for(lock, tick_period, [&] { return done_; });
    }
    lock.unlock();
    // Reverted here, on the thread that started them: a child process started with
    // PR_SET_PDEATHSIG is tied to this thread's life, and must be told to let go first.
    for (std::size_t i = 0; i < runs_.size(); ++i) end(runs_[i], active_[i]);
}

/// Replica faults: the router's reaction, from its state history as the phase ends.
void FaultClock::note_rotation_times() {
    if (targets_.router == nullptr) return;
    const bool any = std::any_of(runs_.begin(), runs_.end(), [](const FaultRun& f) {
        return is_replica_fault(f.spec->kind) && f.started && f.error.rfind("did not start", 0) != 0;
    });
    if (!any) return;
    const RouterStats stats = targets_.router->stats();
    for (auto& f : runs_) {
        if (!is_replica_fault(f.spec->kind) || !f.started || f.error.rfind("did not start", 0) == 0) continue;
        const std::string name = replica_fault_node(*f.spec);
        for (const auto& n : stats.nodes) {
            if (n.name != name) continue;
            // A promotion has no end to return from: the replica stays out.
            const auto t = rotation_times(n.history, *f.started,
                                          f.spec->kind == FaultKind::replica_stop ? f.ended : std::nullopt);
            f.failover_ms = t.failover_ms;
            f.rejoin_ms = t.rejoin_ms;
        }
    }
}

std::vector<FaultRun>& FaultClock::finish() {
    if (finished_) return runs_;
    finished_ = true;
    {
        std::lock_guard lock(mu_);
        done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    // Faults the clock thread never saw (it did not start) are reverted here.
    for (std::size_t i = 0; i < runs_.size(); ++i) end(runs_[i], active_[i]);
    for (auto& f : runs_) {
        if (!f.started && f.error.empty()) f.error = "did not start: the phase ended before its 'at'";
    }
    note_rotation_times();
    probe_.store(nullptr, std::memory_order_release);
    return runs_;
}

}  // namespace poolbench::cli
