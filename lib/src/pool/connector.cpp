// pool/connector.cpp — one connection attempt, and the backoff between attempts.
#include "connector.hpp"

#include "../backoff.hpp"
#include "poolbench/error.hpp"
#include "time.hpp"

#include <algorithm>

namespace poolbench::internal {

Connector::Connector(std::shared_ptr<Driver> driver, const PoolConfig& config)
    : driver_(std::move(driver)), retry_(config.connect_retry) {
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

std::int64_t Connector::backoff_ns(int attempt) const noexcept { return backoff(retry_, attempt).count(); }

}  // namespace poolbench::internal
