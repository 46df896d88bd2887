// fault_clock.cpp — starting, ticking and reverting a phase's faults on time.
#include "fault_clock.hpp"

#include "runner.hpp"

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

void FaultClock::start_faults_at_zero() {
    for (auto& f : runs_) {
        if (f.spec->at.count() == 0) begin(f);
    }
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
    try {
        // The probe is armed first: a failure the fault causes at once must count.
        probe_.store(f.probe.get(), std::memory_order_release);
        active_[i] = start_fault(*f.spec, targets_, table_);
        f.started = Clock::now();
    } catch (const std::exception& e) {
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
        f.reverted = f.spec->kind == FaultKind::pg_restart;  // a command that failed leaves nothing to undo
    }
    f.detail = active->detail();
    f.ended = Clock::now();
    active.reset();
}

void FaultClock::run() {
    std::unique_lock lock(mu_);
    while (!done_) {
        const auto now = Clock::now();
        if (interrupt_ != nullptr && interrupt_->load()) {
            interrupted_ = true;
            stop_phase_ = true;
        }
        lock.unlock();
        for (std::size_t i = 0; i < runs_.size(); ++i) {
            FaultRun& f = runs_[i];
            if (!f.started && now >= phase_start_ + f.spec->at) begin(f);
            auto& active = active_[i];
            if (!active) continue;
            active->tick(now);
            const bool timed = f.spec->kind != FaultKind::pg_restart;
            // A fault lasts its 'for' from when it took effect (a lock may take a moment to get).
            const bool over = timed ? now >= *f.started + f.spec->duration
                                    : active->finished() || now >= *f.started + f.spec->timeout;
            if (over) end(f, active);
        }
        lock.lock();
        cv_.wait_for(lock, tick_period, [&] { return done_; });
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
    // Every fault still in effect is reverted, whatever ended the phase.
    for (std::size_t i = 0; i < runs_.size(); ++i) end(runs_[i], active_[i]);
    for (auto& f : runs_) {
        if (!f.started && f.error.empty()) f.error = "did not start: the phase ended before its 'at'";
    }
    probe_.store(nullptr, std::memory_order_release);
    return runs_;
}

}  // namespace poolbench::cli
