// fault_clock.hpp — one thread per scenario phase that starts each fault at its `at`,
// ticks it, and reverts it at `at + for` (a restart: when its command exits, or at its
// timeout). Every fault it started is reverted when the phase ends, also early (an
// ops-bounded phase, abort_on_fail, Ctrl-C). It also watches the interrupt flag every
// 10 ms, so a Ctrl-C stops the phase at once.
//
// Thread-safety: start() and finish() from the thread that runs the phase; the fault
// clock thread is the only one that touches the faults in between.
#pragma once

#include "faults.hpp"
#include "runner.hpp"
#include "scenario.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace poolbench::cli {

/// What the clock saw of one fault.
struct FaultRun {
    const FaultSpec* spec = nullptr;
    std::optional<std::chrono::steady_clock::time_point> started, ended;
    bool reverted = false;
    std::string error;
    std::string detail;
    bool stopped_phase = false;                ///< the fault kept the phase's load from running
    std::optional<LeakCheckSection> leak_check;  ///< a leak fault's findings
    std::unique_ptr<OutageProbe> probe = std::make_unique<OutageProbe>();
    /// replica.*: how long the router took to take the replica out and back (node_faults.hpp).
    std::optional<double> failover_ms, rejoin_ms;
};

class FaultClock {
public:
    /// `stop_phase` is set when the interrupt flag (`interrupt`, may be null) is seen.
    FaultClock(const PhaseSpec& phase, FaultTargets& targets, std::string table, const std::atomic<bool>* interrupt,
               std::atomic<bool>& stop_phase);
    FaultClock(const FaultClock&) = delete;
    FaultClock& operator=(const FaultClock&) = delete;
    ~FaultClock();

    /// Starts the faults at 0 before the load does, so none of the phase runs without them.
    /// Returns false when one of them keeps the phase's load from running (await_ready).
    [[nodiscard]] bool start_faults_at_zero();
    /// Starts the clock at the phase's start (RunHooks::on_start).
    void start(std::chrono::steady_clock::time_point phase_start);
    /// The probe of the fault started last, chained to those started before it
    /// (OutageProbe::previous), for the workers (RunHooks::probe).
    [[nodiscard]] const std::atomic<OutageProbe*>* probe_slot() const noexcept { return &probe_; }
    /// Called with a fault's index when it takes effect (true) and when it is reverted
    /// (false), from whichever thread does it. Set it before start_faults_at_zero.
    void on_change(std::function<void(std::size_t, bool)> callback) { on_change_ = std::move(callback); }
    /// Stops the clock, reverts every fault still in effect; idempotent.
    std::vector<FaultRun>& finish();
    [[nodiscard]] bool interrupted() const noexcept { return interrupted_.load(); }

private:
    void run();
    void begin(FaultRun& f);
    void end(FaultRun& f, std::unique_ptr<ActiveFault>& active);
    void note_rotation_times();

    const PhaseSpec& phase_;
    FaultTargets& targets_;
    std::string table_;
    const std::atomic<bool>* interrupt_;
    std::atomic<bool>& stop_phase_;
    std::vector<FaultRun> runs_;
    std::vector<std::unique_ptr<ActiveFault>> active_;
    std::function<void(std::size_t, bool)> on_change_;
    std::atomic<OutageProbe*> probe_{nullptr};
    std::atomic<bool> interrupted_{false};
    std::chrono::steady_clock::time_point phase_start_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    bool finished_ = false;
    std::thread thread_;
};

}  // namespace poolbench::cli
