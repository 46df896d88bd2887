// poolbench/error.hpp — the one exception hierarchy of the library.
//
// Every exception the library throws derives from poolbench::Error. Children are
// chosen by how a caller reacts to them:
//   ConfigError   fix the configuration (bad pool settings, bad URL);
//   PoolTimeout   no connection within the acquire timeout: back off, shed load;
//   PoolClosed    the pool is shut down: stop using it;
//   ConnectError  a new connection could not be opened: the database is unusable;
//   QueryError    a statement failed: carries the backend's code and its ErrorKind;
//   UsageError    the caller broke a documented rule (e.g. used an empty lease).
//
// ErrorKind classifies every failure once, the same way for every backend: each driver
// sets the kind when it builds its QueryError, and error_kind() maps the pool's own
// exceptions by type. Callers (retry rules, reports) read the kind instead of comparing
// backend codes.
//
// Thread-safety: exception objects are immutable after construction; const access
// from several threads is safe. to_string, parse_error_kind and error_kind are pure
// functions, safe from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace poolbench {

/// How a failure is classified, once, for every backend. Stable snake_case names (to_string) are report keys.
///
/// The kind says what happened; QueryError::broken() separately says whether the pool
/// destroys the connection. A failure with a specific kind keeps it even when the
/// driver's broken rule also breaks the connection: PostgreSQL 25006 is `read_only`
/// (and, under the default broken_sqlstates rule, broken() too, so the pool reconnects),
/// and a statement abandoned after its cancel went unanswered is `statement_timeout`
/// with broken(). Only a failure with no specific kind that the broken rule breaks
/// (e.g. an SQLSTATE added with broken_sqlstates=) is `connection_lost`.
enum class ErrorKind : std::uint8_t {
    busy,                  // SQLITE_BUSY/SQLITE_LOCKED*: another connection holds a lock
    lock_timeout,          // PostgreSQL 55P03 lock_not_available (lock_timeout)
    statement_timeout,     // a statement cancelled: PostgreSQL 57014, SQLITE_INTERRUPT
    serialization_failure, // PostgreSQL 40001
    deadlock,              // PostgreSQL 40P01
    connection_lost,       // a broken connection: PG class 08, 57P01-57P03, the driver's broken rule; SQLite IO errors that break it
    connection_refused,    // ConnectError (a new connection could not be opened)
    circuit_open,          // CircuitOpen
    pool_timeout,          // PoolTimeout
    pool_overloaded,       // PoolOverloaded
    pool_closed,           // PoolClosed
    lease_revoked,         // LeaseRevoked
    constraint_violation,  // PG class 23, SQLITE_CONSTRAINT*
    read_only,             // PG 25006, SQLITE_READONLY*
    other,
};
inline constexpr std::size_t error_kind_count = 15;

/// "busy", "lock_timeout", ... exactly the enumerator names.
[[nodiscard]] std::string_view to_string(ErrorKind kind) noexcept;
/// The kind named `name` (exactly as to_string spells it); nullopt for any other text.
[[nodiscard]] std::optional<ErrorKind> parse_error_kind(std::string_view name) noexcept;
/// Classifies any exception: QueryError by its kind(), the pool's exceptions by type, anything else `other`.
[[nodiscard]] ErrorKind error_kind(const std::exception& e) noexcept;

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

/// A statement failed. `code()` is the SQLSTATE for PostgreSQL, the extended result-code
/// name for SQLite (e.g. "SQLITE_BUSY"), or the error number in decimal for MariaDB
/// (e.g. "1213"); `native_code()` is SQLite's numeric extended code, MariaDB's error
/// number, 0 for PostgreSQL. `broken()` says the connection can no
/// longer be used and the pool will destroy it when the lease is returned. `kind()` is
/// the failure's classification (see ErrorKind for how it relates to broken()).
class QueryError : public Error {
public:
    /// With the kind decided by the caller (the library's drivers classify here).
    QueryError(const std::string& message, std::string code, int native_code, bool broken, ErrorKind kind)
        : Error(message), code_(std::move(code)), native_code_(native_code), broken_(broken), kind_(kind) {}
    /// The kind derived from the code by the backend's own rule: a name starting with
    /// "SQLITE_" by SQLite's, a 5-character SQLSTATE by PostgreSQL's, 1 to 4 digits (an error
    /// number) by MariaDB's; a code of none of these shapes is `other`. A code with no specific kind is `connection_lost` when `broken`.
    QueryError(const std::string& message, std::string code, int native_code, bool broken);
    [[nodiscard]] const std::string& code() const noexcept { return code_; }
    [[nodiscard]] int native_code() const noexcept { return native_code_; }
    [[nodiscard]] bool broken() const noexcept { return broken_; }
    [[nodiscard]] ErrorKind kind() const noexcept { return kind_; }
    /// kind() == ErrorKind::busy: SQLITE_BUSY / SQLITE_LOCKED (and their extended codes),
    /// another connection holds a lock.
    [[nodiscard]] bool is_busy() const noexcept { return kind_ == ErrorKind::busy; }

private:
    std::string code_;
    int native_code_;
    bool broken_;
    ErrorKind kind_;
};

}  // namespace poolbench
