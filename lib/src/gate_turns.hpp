// gate_turns.hpp — who gets the write turn of a WriterGate: bounded barging, with the
// time passed in (so tests/unit/test_gate_turns.cpp drives it without threads or sleeps).
//
// The rule is the pool's (pool/waiter_queue.hpp), reused as is: queued writers are served
// in arrival order among themselves; a running writer that finds the turn free takes it
// even while others are queued (barging), unless the front writer has waited
// `starvation_ns`; a release then only wakes the front writer to compete (once: a writer
// that woke and lost is "passed over": releases stop waking it, and it looks again by
// itself every recheck_ns() until its threshold), and once the front
// has waited the threshold every release hands the turn straight to it, so newcomers queue
// behind it. 0 makes every hand-off strict (first come, first served at all times).
//
// Thread-safety: none. WriterGate holds its mutex around every call; a Waiter's `bell`
// and `outcome` are the only fields its sleeping thread reads without that mutex.
#pragma once

#include "pool/waiter_queue.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace poolbench::internal {

class GateTurns {
public:
    explicit GateTurns(std::int64_t starvation_ns) noexcept
        : strict_(starvation_ns <= 0), signals_(starvation_ns), queue_(signals_) {}
    GateTurns(const GateTurns&) = delete;
    GateTurns& operator=(const GateTurns&) = delete;

    /// A writer arriving at `now` takes the turn at once if it is free and nobody queued
    /// has waited the threshold (it may barge past queued writers that have not).
    bool try_take(std::int64_t now) noexcept {
        if (held_ || (!queue_.empty() && front_starving(now))) return false;
        held_ = true;
        ++turns_;
        if (!queue_.empty()) ++barges_;
        return true;
    }

    /// The writer that failed try_take() queues at the back, at `now`.
    void enqueue(Waiter& w, std::int64_t now) noexcept {
        w.since_ns = now;
        queue_.push_back(w);
        ++waits_;
    }

    /// How long a passed-over front writer sleeps at most before it looks again: T/8, at
    /// least 100 us. Releases do not wake it (each wake would be futile while writers barge),
    /// so without this cap a free turn nobody barges for would sit idle until its threshold,
    /// while the writers queued behind it (only the front may take a free turn) time out.
    [[nodiscard]] std::int64_t recheck_ns() const noexcept {
        return std::max<std::int64_t>(signals_.starvation_ns() / 8, 100'000);
    }

    /// When queued `w`, going to sleep at `now`, should wake by itself if nobody wakes it: at
    /// `deadline`, or — when it is passed over (releases do not wake it) — within
    /// recheck_ns() and at its threshold at the latest, to look again (a free turn then is
    /// taken; from its threshold on a held one is handed to it on release).
    [[nodiscard]] std::int64_t wake_by(const Waiter& w, std::int64_t now, std::int64_t deadline) const noexcept {
        if (!w.passed_over || w.looked_at_threshold) return deadline;
        const std::int64_t starving_from = w.since_ns + signals_.starvation_ns();
        return std::min({deadline, starving_from, now + recheck_ns()});
    }

    /// Queued `w` woke at `now` (rung, at its threshold, spuriously) and was not handed the
    /// turn: it takes the turn if it is at the front and the turn is free. A front writer
    /// that was woken to compete and lost to a barging writer is passed over.
    bool look(Waiter& w, std::int64_t now) noexcept {
        if (w.passed_over && !w.looked_at_threshold && now >= w.since_ns + signals_.starvation_ns())
            queue_.starving_now(w);
        const bool was_notified = queue_.begin_look(w);
        if (queue_.is_front(w) && !held_) {
            queue_.unlink(w);
            held_ = true;
            ++turns_;
            return true;
        }
        if (was_notified && queue_.is_front(w) && !w.looked_at_threshold) queue_.pass_over(w);
        return false;
    }

    /// Queued `w` gives up (timed out). If the turn is free, the new front writer is woken
    /// (a rare path) to take it, even if it had been passed over. Returns the bell to ring
    /// after unlocking (nullptr: none), as release() does.
    std::uint32_t* leave(Waiter& w) noexcept {
        queue_.unlink(w);
        if (held_) return nullptr;
        return queue_.wake_front_to_look();
    }

    /// The holder gives the turn back at `now`. Returns the bell to ring after unlocking
    /// (nullptr: none): the front writer's, either handed the turn (it has waited the
    /// threshold: the turn stays held, now by it) or woken to compete for the free turn.
    std::uint32_t* release(std::int64_t now) noexcept {
        if (queue_.empty()) {
            held_ = false;
            return nullptr;
        }
        if (front_starving(now)) {
            ++turns_;
            ++handoffs_;
            return queue_.hand_to_front(0, 0);  // held_ stays true: newcomers cannot take it first
        }
        held_ = false;
        if (signals_.after_release(now) == FrontSignals::OnRelease::wake_front) return queue_.notify_front();
        return nullptr;
    }

    [[nodiscard]] bool held() const noexcept { return held_; }
    [[nodiscard]] std::size_t queued() const noexcept { return queue_.size(); }
    [[nodiscard]] bool front_starving(std::int64_t now) const noexcept {
        return !queue_.empty() && (strict_ || signals_.starving(now));
    }
    /// Turns granted; of them, those that queued first, those taken past queued writers
    /// (barging), and those handed straight to a starving front writer.
    [[nodiscard]] std::uint64_t turns() const noexcept { return turns_; }
    [[nodiscard]] std::uint64_t waits() const noexcept { return waits_; }
    [[nodiscard]] std::uint64_t barges() const noexcept { return barges_; }
    [[nodiscard]] std::uint64_t handoffs() const noexcept { return handoffs_; }

private:
    const bool strict_;
    FrontSignals signals_;
    WaiterQueue queue_;
    bool held_ = false;
    std::uint64_t turns_ = 0;
    std::uint64_t waits_ = 0;
    std::uint64_t barges_ = 0;
    std::uint64_t handoffs_ = 0;
};

}  // namespace poolbench::internal
