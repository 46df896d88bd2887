// pool/connector.cpp — one connection attempt, and the backoff between attempts.
#include "connector.hpp"

#include "poolbench/error.hpp"
#include "time.hpp"

#include <algorithm>
#include <random>
#include <thread>

namespace poolbench::internal {

double uniform01() noexcept {
    thread_local std::minstd_rand rng(static_cast<std::minstd_rand::result_type>(
        std::hash<std::thread::id>{}(std::this_thread::get_id()) ^
        static_cast<std::size_t>(Clock::now().time_since_epoch().count())));
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

Connector::Connector(std::shared_ptr<Driver> driver, const PoolConfig& config)
    : driver_(std::move(driver)),
      attempts_(config.connect_attempts),
      base_ns_(to_ns(config.connect_backoff_base)),
      max_ns_(to_ns(config.connect_backoff_max)) {
    if (!driver_) throw ConfigError("pool '" + config.name + "': no driver given");
}

Connector::Opened Connector::open(std::int64_t deadline_ns) const noexcept {
    Opened o;
    const std::int64_t t0 = now_ns();
    try {
        o.conn = driver_->connect(to_time_point(std::max(deadline_ns, t0 + 1'000'000'000)));
        if (!o.conn) o.failure = "the driver returned no connection";
    } catch (const std::exception& e) {
        o.failure = e.what();
        if (o.failure.empty()) o.failure = "unknown error";
    } catch (...) {
        o.failure = "unknown error";
    }
    o.took_ns = now_ns() - t0;
    return o;
}

std::int64_t Connector::backoff_ns(int attempt) const noexcept {
    const double cap = std::min(static_cast<double>(max_ns_),
                                static_cast<double>(base_ns_) * static_cast<double>(1 << std::clamp(attempt - 1, 0, 20)));
    return static_cast<std::int64_t>(cap * uniform01());
}

}  // namespace poolbench::internal
