// pool/breaker.hpp — the circuit breaker on opening connections, as a pure state machine.
//
//   closed    --`failures` consecutive connect failures-->  open (until now + cooldown)
//   open      --an admit() after the cooldown------------->  half_open (that caller probes)
//   half_open --the probe fails--------------------------->  open again
//   any       --a connection opens------------------------>  closed
//
// It keeps no clock and takes no lock: every call is given the time (`Now`), so it is
// tested without threads or sleeps. With failures == 0 the breaker is off: it stays
// closed and admits everything (a null object, so callers never ask whether it is on).
//
// Thread-safety: none; the pool calls it under its mutex.
#pragma once

#include "poolbench/stats.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace poolbench::internal {

class CircuitBreaker {
public:
    struct Now {
        std::int64_t mono_ns;                        // steady clock, for the cooldown
        std::chrono::system_clock::time_point wall;  // for the history and messages
    };
    enum class Decision { allow, probe, reject };

    CircuitBreaker(int failures, std::int64_t cooldown_ns) noexcept : failures_(failures), cooldown_ns_(cooldown_ns) {}

    [[nodiscard]] BreakerState state() const noexcept { return state_; }
    [[nodiscard]] bool closed() const noexcept { return state_ == BreakerState::closed; }
    [[nodiscard]] bool open() const noexcept { return state_ == BreakerState::open; }
    [[nodiscard]] std::int64_t open_until_ns() const noexcept { return until_ns_; }
    [[nodiscard]] bool cooldown_over(std::int64_t now_ns) const noexcept { return now_ns >= until_ns_; }

    /// May a connection be opened now? closed: allow. open past its cooldown: moves to
    /// half_open and this caller is the probe. open before it, or half_open (a probe is
    /// already out): reject.
    Decision admit(Now now);
    /// A connection opened. True if this closed a breaker that was open or half-open.
    bool on_success(Now now);
    /// A connection failed to open with `error`. True if this opened the breaker.
    bool on_failure(const std::string& error, Now now);

    /// "circuit breaker open since 13:45:01.123 UTC after 5 consecutive connection
    /// failures (last: ...); acquires that need a new connection fail at once until ..."
    [[nodiscard]] std::string describe(Now now, const std::string& last_error) const;

    [[nodiscard]] std::uint64_t transitions() const noexcept { return transitions_; }
    [[nodiscard]] const std::deque<BreakerTransition>& history() const noexcept { return history_; }

private:
    void move_to(BreakerState to, std::string_view reason, Now now) noexcept;

    const int failures_;
    const std::int64_t cooldown_ns_;
    BreakerState state_ = BreakerState::closed;
    int consecutive_failures_ = 0;
    std::int64_t until_ns_ = 0;
    std::chrono::system_clock::time_point since_{};
    std::uint64_t transitions_ = 0;
    std::deque<BreakerTransition> history_;  // the last 32
};

/// "13:45:01.123 UTC".
std::string clock_text(std::chrono::system_clock::time_point t);

}  // namespace poolbench::internal
