// error_kind.hpp — the one failure classifier of each backend (not installed).
//
// Every QueryError a driver builds gets its ErrorKind from here, and so does the
// 4-argument QueryError constructor (which picks the backend by the code's shape), so a
// backend's codes are mapped to kinds in exactly one place.
#pragma once

#include "poolbench/error.hpp"

#include <optional>
#include <string_view>

namespace poolbench::internal {

/// SQLite: the kind of a failure with (extended) result code `code`.
///   busy                  BUSY*, LOCKED*
///   statement_timeout     INTERRUPT
///   constraint_violation  CONSTRAINT*
///   read_only             READONLY* except READONLY_DBMOVED
///   connection_lost       IOERR*, CORRUPT*, NOTADB, CANTOPEN*, READONLY_DBMOVED: the
///                         failures that leave the connection unusable (the SQLite
///                         driver's broken rule is exactly "kind is connection_lost")
///   other                 the rest (FULL, NOMEM, SCHEMA, RANGE, ERROR, ...), or
///                         connection_lost when `broken` says the caller broke it anyway.
[[nodiscard]] ErrorKind sqlite_error_kind(int code, bool broken) noexcept;

/// PostgreSQL: the kind of a failure with SQLSTATE `sqlstate`; `broken` says the
/// connection is broken (it went bad, or the driver's broken_sqlstates rule matched).
///   lock_timeout 55P03, statement_timeout 57014, serialization_failure 40001,
///   deadlock 40P01, connection_lost class 08 and 57P01-57P03, constraint_violation
///   class 23, read_only 25006; any other code is connection_lost when `broken`, else other.
/// A specific kind wins over `broken` (see ErrorKind).
[[nodiscard]] ErrorKind postgres_error_kind(std::string_view sqlstate, bool broken) noexcept;

/// MariaDB / MySQL: the kind of a failure with server or client error number `code`.
///   lock_timeout 1205 (innodb_lock_wait_timeout), deadlock 1213, serialization_failure
///   1020 (record changed since last read: snapshot isolation), statement_timeout 1969
///   (max_statement_time) and 1317 (KILL QUERY), read_only 1290 (--read-only), 1836 (read-only
///   mode) and 1792 (a READ ONLY transaction), constraint_violation 1048, 1062, 1169, 1216,
///   1217, 1451, 1452, 1557, 1586, 3819, 4025, connection_lost 1053 (server shutdown), 1927
///   (connection killed), 2006 / 2013 / 2055 (server gone, connection lost) and the other
///   client errors 2000-2999 that mean no connection; any other number is connection_lost
///   when `broken`, else other. A specific kind wins over `broken` (see ErrorKind).
[[nodiscard]] ErrorKind mariadb_error_kind(unsigned code, bool broken) noexcept;

/// SQLite's numeric code for a QueryError::code() name ("SQLITE_BUSY_SNAPSHOT", or the
/// "SQLITE_<number>" fallback); nullopt for a name it does not know (sqlite_codes.cpp).
[[nodiscard]] std::optional<int> sqlite_code_from_name(std::string_view name);

}  // namespace poolbench::internal
