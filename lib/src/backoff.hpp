// backoff.hpp — the library's one exponential backoff with full jitter, and its one
// random generator for jitter (not installed). Used by the pool's connector (between
// attempts to open a connection, PoolConfig::connect_retry), by run_in_transaction
// (between runs of a transaction body) and by the pool's max_lifetime jitter.
//
// Thread-safety: each thread has its own generator (thread_local), so both functions are
// safe from any number of threads at once, with no lock and no shared state.
#pragma once

#include "poolbench/config.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <thread>

namespace poolbench::internal {

/// A uniform double in [0, 1) from this thread's generator, seeded from the thread's id
/// and the clock (jitter needs spread, not cryptographic quality).
inline double uniform01() noexcept {
    thread_local std::minstd_rand rng(static_cast<std::minstd_rand::result_type>(
        std::hash<std::thread::id>{}(std::this_thread::get_id()) ^
        static_cast<std::size_t>(std::chrono::steady_clock::now().time_since_epoch().count())));
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

/// The pause before retry number `retry` (1-based: the pause after the first failed
/// attempt) under `policy`: "full jitter", a uniformly random pause in
/// [0, min(policy.max, policy.base * 2^(retry-1))]. Randomising the whole pause, not just
/// a part, spreads clients that failed together (a database coming back) the most.
/// 0 when base or max is 0.
inline std::chrono::nanoseconds backoff(const RetryPolicy& policy, int retry) noexcept {
    const auto base = static_cast<double>(std::chrono::nanoseconds(policy.base).count());
    const auto cap = static_cast<double>(std::chrono::nanoseconds(policy.max).count());
    if (base <= 0 || cap <= 0) return std::chrono::nanoseconds{0};
    const double ceiling = std::min(cap, std::ldexp(base, std::clamp(retry - 1, 0, 62)));
    return std::chrono::nanoseconds{static_cast<std::int64_t>(ceiling * uniform01())};
}

}  // namespace poolbench::internal
