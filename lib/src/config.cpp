// config.cpp — validation of PoolConfig and RetryPolicy: the one place each rule lives.
#include "poolbench/config.hpp"

#include "poolbench/error.hpp"

#include <string>

namespace poolbench {

namespace {
[[noreturn]] void reject(const PoolConfig& c, const std::string& what) {
    throw ConfigError("pool '" + c.name + "': " + what);
}
}  // namespace

std::string RetryPolicy::why_invalid() const {
    if (max_attempts < 1)
        return "max_attempts is " + std::to_string(max_attempts) + "; it must be at least 1 (1 = no retries)";
    if (base.count() < 0) return "base is negative (" + std::to_string(base.count()) + " ms); use 0 for no pause";
    if (max < base)
        return "max (" + std::to_string(max.count()) + " ms) is below base (" + std::to_string(base.count()) +
               " ms); raise max or lower base";
    return {};
}

void PoolConfig::validate() const {
    // Hard cap: slots are allocated up front and a pool of more than this many
    // connections to one database is almost always a mistake.
    constexpr std::size_t max_allowed = 100'000;
    if (max_size == 0) reject(*this, "max_size is 0; it must be at least 1");
    if (max_size > max_allowed)
        reject(*this, "max_size " + std::to_string(max_size) + " is above the limit of " +
                          std::to_string(max_allowed));
    if (min_idle > max_size)
        reject(*this, "min_idle " + std::to_string(min_idle) + " is above max_size " +
                          std::to_string(max_size) + "; lower min_idle or raise max_size");
    if (acquire_timeout.count() < 0)
        reject(*this, "acquire_timeout is negative (" + std::to_string(acquire_timeout.count()) +
                          " ms); use 0 to fail at once or a positive duration");
    if (validation_interval.count() < 0)
        reject(*this, "validation_interval is negative (" + std::to_string(validation_interval.count()) +
                          " ms); use 0 to validate on every acquire");
    if (core_size > max_size)
        reject(*this, "core_size " + std::to_string(core_size) + " is above max_size " + std::to_string(max_size));
    if (max_size_limit != 0 && max_size_limit < max_size)
        reject(*this, "max_size_limit " + std::to_string(max_size_limit) + " is below max_size " +
                          std::to_string(max_size));
    if (max_size_limit > max_allowed)
        reject(*this, "max_size_limit " + std::to_string(max_size_limit) + " is above the limit of " +
                          std::to_string(max_allowed));
    if (max_connecting == 0) reject(*this, "max_connecting is 0; it must be at least 1");
    if (idle_timeout.count() < 0) reject(*this, "idle_timeout is negative; use 0 to never close idle connections");
    if (max_lifetime.count() < 0) reject(*this, "max_lifetime is negative; use 0 for no limit");
    if (!(max_lifetime_jitter >= 0.0 && max_lifetime_jitter < 1.0))
        reject(*this, "max_lifetime_jitter must be in [0, 1) (got " + std::to_string(max_lifetime_jitter) + ")");
    if (keepalive_interval.count() < 0) reject(*this, "keepalive_interval is negative; use 0 to turn keepalive off");
    if (const std::string why = connect_retry.why_invalid(); !why.empty()) reject(*this, "connect_retry." + why);
    if (breaker_failures < 0) reject(*this, "breaker_failures is negative; use 0 for no circuit breaker");
    if (breaker_failures > 0 && breaker_cooldown.count() <= 0)
        reject(*this, "breaker_cooldown must be positive when the circuit breaker is on");
    if (leak_threshold.count() < 0) reject(*this, "leak_threshold is negative; use 0 to turn leak detection off");
    if (leak_reclaim_after.count() < 0)
        reject(*this, "leak_reclaim_after is negative; use 0 to never reclaim");
    if (leak_reclaim_after.count() > 0 && leak_reclaim_after <= leak_threshold)
        reject(*this, "leak_reclaim_after (" + std::to_string(leak_reclaim_after.count()) +
                          " ms) must be above leak_threshold (" + std::to_string(leak_threshold.count()) +
                          " ms), and leak_threshold must be set");
    if (starvation_threshold.count() < 0)
        reject(*this, "starvation_threshold is negative; use 0 for strict first-come-first-served hand-off");
    if (housekeeping_interval.count() <= 0)
        reject(*this, "housekeeping_interval must be positive (got " +
                          std::to_string(housekeeping_interval.count()) + " ms)");
}

}  // namespace poolbench
