// leak_fault.hpp — the `leak` fault (faults.hpp): a thread named "pb-leaker" takes `leaks`
// leases from poolbench_leak_injected_lease() and keeps them until the fault ends, while a
// thread named "pb-holder" holds `holds` leases legitimately for `hold_for` (under the
// threshold) and returns them. At the end the leaker returns its leases itself (late
// returns) and the pool's leak reports are classified: each leaked lease reported exactly
// once, traced to the injector, no other lease reported (a false positive).
//
// With `await_detection` (what `poolbench leak` runs), the fault's await_ready() — called
// once it is in effect, before the phase's load — returns only when the pool has reported
// every leaked lease — and, when the pool reclaims, revoked them,
// and using each revoked lease threw LeaseRevoked — or at the fault's timeout or a Ctrl-C;
// the phase's load then runs on what is left (the reclaimed capacity). When the wait
// failed (await_ready() returned false), the phase's load is skipped.
//
// Thread-safety: LeakLog is safe from any thread (the pool's on_leak calls add() on its
// housekeeper thread and on the thread returning a reported lease). The fault itself follows ActiveFault's contract.
#pragma once

#include "faults.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace poolbench::cli {

/// The function every leaked lease is taken from; its name is what the traces must show.
inline constexpr const char* leak_injector = "poolbench_leak_injected_lease";

/// What classifying a leak report needs, kept for every report of the run.
struct LeakFact {
    LeakReport::Kind kind = LeakReport::Kind::suspected;
    long thread_id = 0;
    bool has_stack = false;
    bool traced = false;  ///< the injector is among the stack's top frames
    /// When the lease was taken: the report's arrival less how long it had been held (late
    /// by the time the pool took to publish it, e.g. symbolizing its trace).
    std::chrono::steady_clock::time_point leased_at{};
};

/// Every leak report the pool publishes (the pool's on_leak feeds add()), in order, and a
/// wait for the next one. A fault reads the reports since it started, so an earlier leak
/// fault's reports are never counted again. Must outlive the pool.
class LeakLog {
public:
    void add(const LeakReport& report);
    [[nodiscard]] std::size_t size() const;
    [[nodiscard]] std::vector<LeakFact> since(std::size_t from) const;
    /// Waits until `done()` holds (true), the deadline passes or `cancel` (may be null) is
    /// set (false). done() is called without the lock held.
    bool wait(const std::function<bool()>& done, std::chrono::steady_clock::time_point deadline,
              const std::atomic<bool>* cancel);
    /// The reports the report lists (all but late returns), in order of arrival: the first
    /// `max_listed`. Unlike the pool's own list (its most recent 1000 of every kind), a late
    /// return never pushes a detection out.
    [[nodiscard]] std::vector<LeakReport> listed() const;
    static constexpr std::size_t max_listed = 10'000;

private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<LeakFact> facts_;
    std::vector<LeakReport> listed_;
};

}  // namespace poolbench::cli
