// error_kind.cpp — ErrorKind names, error_kind() over the exception hierarchy, and the
// per-backend classifiers (error_kind.hpp).
#include "error_kind.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <string>

namespace poolbench {

namespace {

/// Indexed by ErrorKind: the enumerator names, in declaration order.
constexpr std::array<std::string_view, error_kind_count> kind_names{
    "busy",
    "lock_timeout",
    "statement_timeout",
    "serialization_failure",
    "deadlock",
    "connection_lost",
    "connection_refused",
    "circuit_open",
    "pool_timeout",
    "pool_overloaded",
    "pool_closed",
    "lease_revoked",
    "constraint_violation",
    "read_only",
    "other",
};
static_assert(static_cast<std::size_t>(ErrorKind::other) + 1 == error_kind_count,
              "error_kind_count and kind_names must list every ErrorKind");

constexpr bool starts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::string_view to_string(ErrorKind kind) noexcept {
    const auto i = static_cast<std::size_t>(kind);
    return i < kind_names.size() ? kind_names[i] : "other";
}

std::optional<ErrorKind> parse_error_kind(std::string_view name) noexcept {
    for (std::size_t i = 0; i < kind_names.size(); ++i) {
        if (kind_names[i] == name) return static_cast<ErrorKind>(i);
    }
    return std::nullopt;
}

ErrorKind error_kind(const std::exception& e) noexcept {
    if (const auto* q = dynamic_cast<const QueryError*>(&e)) return q->kind();
    if (dynamic_cast<const CircuitOpen*>(&e) != nullptr) return ErrorKind::circuit_open;  // before ConnectError
    if (dynamic_cast<const ConnectError*>(&e) != nullptr) return ErrorKind::connection_refused;
    if (dynamic_cast<const PoolTimeout*>(&e) != nullptr) return ErrorKind::pool_timeout;
    if (dynamic_cast<const PoolOverloaded*>(&e) != nullptr) return ErrorKind::pool_overloaded;
    if (dynamic_cast<const PoolClosed*>(&e) != nullptr) return ErrorKind::pool_closed;
    if (dynamic_cast<const LeaseRevoked*>(&e) != nullptr) return ErrorKind::lease_revoked;
    return ErrorKind::other;
}

QueryError::QueryError(const std::string& message, std::string code, int native_code, bool broken)
    : QueryError(message, std::move(code), native_code, broken, ErrorKind::other) {
    if (starts_with(code_, "SQLITE_")) {
        // The name decides (it is what callers have always compared); the number only
        // stands in for a name this build of the table does not know.
        kind_ = internal::sqlite_error_kind(internal::sqlite_code_from_name(code_).value_or(native_code_), broken_);
    } else if (code_.size() == 5) {
        kind_ = internal::postgres_error_kind(code_, broken_);
    } else if (!code_.empty() && code_.size() <= 4 &&
               std::all_of(code_.begin(), code_.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        kind_ = internal::mariadb_error_kind(static_cast<unsigned>(std::stoul(code_)), broken_);
    } else if (broken_) {
        kind_ = ErrorKind::connection_lost;
    }
}

namespace internal {

ErrorKind sqlite_error_kind(int code, bool broken) noexcept {
    switch (code & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return ErrorKind::busy;
        case SQLITE_INTERRUPT: return ErrorKind::statement_timeout;
        case SQLITE_CONSTRAINT: return ErrorKind::constraint_violation;
        // The file was renamed or deleted under the connection: a new one opens the right file.
        case SQLITE_READONLY: return code == SQLITE_READONLY_DBMOVED ? ErrorKind::connection_lost : ErrorKind::read_only;
        // The file or its locks are in an unknown state, or the file went away.
        case SQLITE_IOERR:
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
        case SQLITE_CANTOPEN: return ErrorKind::connection_lost;
        // Not broken: FULL hits every connection alike (the statement is rolled back and
        // the connection is fine once space frees up); NOMEM, SCHEMA, RANGE, ... likewise.
        default: return broken ? ErrorKind::connection_lost : ErrorKind::other;
    }
}

ErrorKind postgres_error_kind(std::string_view sqlstate, bool broken) noexcept {
    if (sqlstate == "55P03") return ErrorKind::lock_timeout;
    if (sqlstate == "57014") return ErrorKind::statement_timeout;
    if (sqlstate == "40001") return ErrorKind::serialization_failure;
    if (sqlstate == "40P01") return ErrorKind::deadlock;
    if (sqlstate == "25006") return ErrorKind::read_only;
    const std::string_view cls = sqlstate.substr(0, 2);
    if (cls == "08" || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03") {
        return ErrorKind::connection_lost;
    }
    if (cls == "23") return ErrorKind::constraint_violation;
    return broken ? ErrorKind::connection_lost : ErrorKind::other;
}

ErrorKind mariadb_error_kind(unsigned code, bool broken) noexcept {
    switch (code) {
        case 1205: return ErrorKind::lock_timeout;
        case 1213: return ErrorKind::deadlock;
        case 1020: return ErrorKind::serialization_failure;
        case 1317:
        case 1969: return ErrorKind::statement_timeout;
        case 1290:
        case 1792:
        case 1836: return ErrorKind::read_only;
        case 1048:
        case 1062:
        case 1169:
        case 1216:
        case 1217:
        case 1451:
        case 1452:
        case 1557:
        case 1586:
        case 3819:
        case 4025: return ErrorKind::constraint_violation;
        case 1053:
        case 1927: return ErrorKind::connection_lost;
        default: break;
    }
    // Client-side errors (CR_*): no usable connection (2006 gone away, 2013 lost, 2055 lost
    // with system error, 2002/2003 cannot connect, ...). 2014 (commands out of sync) and the
    // prepared-statement misuse codes 2030-2036, 2050-2057 leave the connection in an unknown
    // state too; treat them alike.
    if (code >= 2000 && code < 3000) return ErrorKind::connection_lost;
    return broken ? ErrorKind::connection_lost : ErrorKind::other;
}

}  // namespace internal

}  // namespace poolbench
