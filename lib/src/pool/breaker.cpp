// pool/breaker.cpp — the circuit breaker's transitions and its message.
#include "breaker.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace poolbench::internal {

std::string clock_text(std::chrono::system_clock::time_point t) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d UTC", tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    return buf;
}

CircuitBreaker::Decision CircuitBreaker::admit(Now now) {
    if (state_ == BreakerState::closed) return Decision::allow;
    if (state_ == BreakerState::open && cooldown_over(now.mono_ns)) {
        move_to(BreakerState::half_open, "cooldown over: one probe let through", now);
        return Decision::probe;
    }
    return Decision::reject;
}

bool CircuitBreaker::on_success(Now now) {
    consecutive_failures_ = 0;
    if (state_ == BreakerState::closed) return false;
    move_to(BreakerState::closed, "a connection opened", now);
    return true;
}

bool CircuitBreaker::on_failure(const std::string& error, Now now) {
    ++consecutive_failures_;
    if (failures_ <= 0) return false;
    const bool trips = state_ == BreakerState::half_open ||
                       (state_ == BreakerState::closed && consecutive_failures_ >= failures_);
    if (!trips) return false;
    until_ns_ = now.mono_ns + cooldown_ns_;
    since_ = now.wall;
    move_to(BreakerState::open, error, now);
    return true;
}

void CircuitBreaker::move_to(BreakerState to, std::string_view reason, Now now) noexcept {
    state_ = to;
    ++transitions_;
    try {
        history_.push_back(BreakerTransition{now.wall, to, std::string(reason)});
        if (history_.size() > 32) history_.pop_front();
    } catch (...) {
        // Out of memory for the history: the state itself has changed.
    }
}

std::string CircuitBreaker::describe(Now now, const std::string& last_error) const {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::nanoseconds(std::max<std::int64_t>(0, until_ns_ - now.mono_ns)));
    std::string msg = "circuit breaker " +
                      (state_ == BreakerState::half_open ? std::string("half-open (a probe connection is being opened)")
                                                         : "open since " + clock_text(since_)) +
                      " after " + std::to_string(failures_) + " consecutive connection failures";
    if (!last_error.empty()) msg += " (last: " + last_error + ")";
    if (state_ == BreakerState::open)
        msg += "; acquires that need a new connection fail at once until " + clock_text(now.wall + left) + " (in " +
               std::to_string(left.count()) + " ms), then one probe is let through";
    return msg;
}

}  // namespace poolbench::internal
