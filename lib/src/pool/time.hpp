// pool/time.hpp — the pool's notion of time: int64 nanoseconds on the hot-path clock.
//
// fast_clock reads the TSC scaled to steady_clock nanoseconds where the CPU allows it; it
// agrees with steady_clock to within microseconds, so deadlines computed with it can be
// handed to condition variables and futexes as steady_clock time points.
#pragma once

#include "poolbench/internal/fast_clock.hpp"

#include <chrono>
#include <cstdint>
#include <limits>

namespace poolbench::internal {

using Clock = std::chrono::steady_clock;

constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();

inline std::int64_t now_ns() noexcept { return fast_clock::now_ns(); }

inline Clock::time_point to_time_point(std::int64_t ns) {
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

inline std::uint64_t elapsed(std::int64_t from, std::int64_t to) noexcept {
    return to > from ? static_cast<std::uint64_t>(to - from) : 0;
}

template <class Rep, class Period>
inline std::int64_t to_ns(std::chrono::duration<Rep, Period> d) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

inline std::chrono::milliseconds to_ms(std::int64_t ns) noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(ns));
}

}  // namespace poolbench::internal
