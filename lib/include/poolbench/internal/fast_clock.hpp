// poolbench/internal/fast_clock.hpp — nanoseconds for hot paths (internal: not a stable API;
// the CLI's load runner uses it too).
//
// std::chrono::steady_clock costs about 24 ns a call here (the vDSO's clock_gettime),
// and acquire + release read the clock three times: most of a 100 ns cycle. Where the
// CPU has an invariant TSC, now_ns() reads it instead (about 10 ns) and scales it to
// steady_clock's nanoseconds: calibrated against steady_clock at first use and refined
// on a longer baseline by refine(), which the housekeepers call. Without an invariant
// TSC (or off x86-64) it is steady_clock.
//
// The two clocks share steady_clock's epoch and, refined every second on an ever longer
// baseline, agree to within microseconds; a refinement may move now_ns() back by that
// much, so callers clamp negative differences to zero. The pool also derives its
// condition-variable deadlines from it.
//
// Thread-safety: now_ns() and refine() may be called from any thread at any time.
#pragma once

#include <cstdint>

namespace poolbench::internal::fast_clock {

[[nodiscard]] std::int64_t now_ns() noexcept;

/// Re-anchors the TSC scale on the longest baseline so far; cheap and rate-limited to
/// once a second, so it may be called often.
void refine() noexcept;

/// True when now_ns() reads the TSC (for the benchmark report).
[[nodiscard]] bool uses_tsc() noexcept;

}  // namespace poolbench::internal::fast_clock
