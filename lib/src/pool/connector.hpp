// pool/connector.hpp — opening one connection: the driver call, its timing, and the retry
// policy (attempts, exponential backoff with full jitter) between failed attempts.
//
// The connector never sleeps and takes no lock: the pool decides whether to retry (a
// circuit breaker or a shutdown may stop it) and waits the backoff where a shutdown can
// end the wait.
//
// Thread-safety: open(), may_retry() and backoff_ns() may be called from any number of
// threads at once (the driver's connect() is thread-safe by its contract).
#pragma once

#include "poolbench/config.hpp"
#include "poolbench/connection.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace poolbench::internal {

using ConnPtr = std::shared_ptr<Connection>;  // shared only to outlive an interrupt(); see core.hpp

class Connector {
public:
    struct Opened {
        ConnPtr conn;
        std::string failure;  // empty on success
        std::int64_t took_ns = 0;
    };

    /// Throws ConfigError when `driver` is null.
    Connector(std::shared_ptr<Driver> driver, const PoolConfig& config);

    /// One attempt, never throwing: a connection, or the reason there is none. A connect
    /// gets at least a second even when called at (or past) the deadline.
    Opened open(std::int64_t deadline_ns) const noexcept;
    /// Another attempt is allowed after `attempt` (1-based) failed ones.
    [[nodiscard]] bool may_retry(int attempt) const noexcept { return attempt < retry_.max_attempts; }
    /// The pause after failed attempt `attempt`: the library's one full-jitter backoff
    /// (backoff.hpp) under PoolConfig::connect_retry.
    [[nodiscard]] std::int64_t backoff_ns(int attempt) const noexcept;

    [[nodiscard]] const Driver& driver() const noexcept { return *driver_; }

private:
    const std::shared_ptr<Driver> driver_;
    const RetryPolicy retry_;
};

}  // namespace poolbench::internal
