// poolbench/error.hpp — the one exception hierarchy of the library.
//
// Every exception the library throws derives from poolbench::Error. Children are
// chosen by how a caller reacts to them:
//   ConfigError   fix the configuration (bad pool settings, bad URL);
//   PoolTimeout   no connection within the acquire timeout: back off, shed load;
//   PoolClosed    the pool is shut down: stop using it;
//   ConnectError  a new connection could not be opened: the database is unusable;
//   QueryError    a statement failed: carries the backend's code;
//   UsageError    the caller broke a documented rule (e.g. used an empty lease).
//
// Thread-safety: exception objects are immutable after construction; const access
// from several threads is safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace poolbench {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Invalid configuration: pool settings, database URL, driver options.
class ConfigError : public Error {
public:
    using Error::Error;
};

/// The caller broke a documented rule of the API (for example, used a moved-from lease).
class UsageError : public Error {
public:
    using Error::Error;
};

/// acquire() gave up at its deadline. Carries the pool's state at that moment.
class PoolTimeout : public Error {
public:
    PoolTimeout(const std::string& message, std::chrono::milliseconds waited, std::size_t in_use,
                std::size_t max_size, std::size_t waiting)
        : Error(message), waited_(waited), in_use_(in_use), max_size_(max_size), waiting_(waiting) {}
    [[nodiscard]] std::chrono::milliseconds waited() const noexcept { return waited_; }
    [[nodiscard]] std::size_t in_use() const noexcept { return in_use_; }
    [[nodiscard]] std::size_t max_size() const noexcept { return max_size_; }
    [[nodiscard]] std::size_t waiting() const noexcept { return waiting_; }

private:
    std::chrono::milliseconds waited_;
    std::size_t in_use_;
    std::size_t max_size_;
    std::size_t waiting_;
};

/// The pool is shut down (or shutting down); no more leases are handed out.
class PoolClosed : public Error {
public:
    using Error::Error;
};

/// The lease was revoked by leak reclaim (PoolConfig::leak_reclaim_after): its connection
/// was taken back so the pool's capacity returns. Using the lease again throws this;
/// releasing it is still safe (and closes the old connection).
class LeaseRevoked : public Error {
public:
    using Error::Error;
};

/// A new connection could not be opened (unreachable server, bad path, bad credentials).
class ConnectError : public Error {
public:
    using Error::Error;
};

/// The circuit breaker is open: recent attempts to open connections all failed, so this
/// acquire failed at once instead of trying again. The message says since and until when.
class CircuitOpen : public ConnectError {
public:
    using ConnectError::ConnectError;
};

/// Too many threads are already queued (PoolConfig::max_waiting): shed load.
class PoolOverloaded : public Error {
public:
    using Error::Error;
};

/// A statement failed. `code()` is the SQLSTATE for PostgreSQL or the extended
/// result-code name for SQLite (e.g. "SQLITE_BUSY"); `native_code()` is SQLite's
/// numeric extended code (0 for PostgreSQL). `broken()` says the connection can no
/// longer be used and the pool will destroy it when the lease is returned.
class QueryError : public Error {
public:
    QueryError(const std::string& message, std::string code, int native_code, bool broken)
        : Error(message), code_(std::move(code)), native_code_(native_code), broken_(broken) {}
    [[nodiscard]] const std::string& code() const noexcept { return code_; }
    [[nodiscard]] int native_code() const noexcept { return native_code_; }
    [[nodiscard]] bool broken() const noexcept { return broken_; }
    /// SQLITE_BUSY / SQLITE_LOCKED (and their extended codes): another connection holds a lock.
    [[nodiscard]] bool is_busy() const noexcept {
        return code_.rfind("SQLITE_BUSY", 0) == 0 || code_.rfind("SQLITE_LOCKED", 0) == 0;
    }

private:
    std::string code_;
    int native_code_;
    bool broken_;
};

}  // namespace poolbench
