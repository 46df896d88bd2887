// ErrorKind: names, error_kind() over the exception hierarchy, and the per-backend
// classifiers (SQLite result codes, PostgreSQL SQLSTATEs, MariaDB error numbers) behind
// every QueryError.
#include <catch2/catch.hpp>

#include "../../lib/src/error_kind.hpp"
#include "poolbench/error.hpp"
#include "poolbench/transaction.hpp"

#include <sqlite3.h>

#include <chrono>
#include <set>
#include <string>
#include <string_view>

using poolbench::ErrorKind;
using poolbench::QueryError;
using poolbench::internal::mariadb_error_kind;
using poolbench::internal::postgres_error_kind;
using poolbench::internal::sqlite_error_kind;

namespace {

ErrorKind pg(std::string_view sqlstate, bool broken = false) { return postgres_error_kind(sqlstate, broken); }
ErrorKind lite(int code) { return sqlite_error_kind(code, false); }
ErrorKind maria(unsigned code, bool broken = false) { return mariadb_error_kind(code, broken); }

}  // namespace

TEST_CASE("every ErrorKind has a snake_case name that parses back to it", "[error_kind]") {
    std::set<std::string_view> names;
    for (std::size_t i = 0; i < poolbench::error_kind_count; ++i) {
        const auto kind = static_cast<ErrorKind>(i);
        const std::string_view name = poolbench::to_string(kind);
        INFO(name);
        CHECK_FALSE(name.empty());
        for (const char c : name) CHECK(((c >= 'a' && c <= 'z') || c == '_'));
        const auto back = poolbench::parse_error_kind(name);
        REQUIRE(back.has_value());
        CHECK(*back == kind);
        names.insert(name);
    }
    CHECK(names.size() == poolbench::error_kind_count);
    CHECK(static_cast<std::size_t>(ErrorKind::other) + 1 == poolbench::error_kind_count);
    // The report keys, spelled out: renaming one is a breaking change.
    CHECK(poolbench::to_string(ErrorKind::busy) == "busy");
    CHECK(poolbench::to_string(ErrorKind::lock_timeout) == "lock_timeout");
    CHECK(poolbench::to_string(ErrorKind::statement_timeout) == "statement_timeout");
    CHECK(poolbench::to_string(ErrorKind::serialization_failure) == "serialization_failure");
    CHECK(poolbench::to_string(ErrorKind::deadlock) == "deadlock");
    CHECK(poolbench::to_string(ErrorKind::connection_lost) == "connection_lost");
    CHECK(poolbench::to_string(ErrorKind::connection_refused) == "connection_refused");
    CHECK(poolbench::to_string(ErrorKind::circuit_open) == "circuit_open");
    CHECK(poolbench::to_string(ErrorKind::pool_timeout) == "pool_timeout");
    CHECK(poolbench::to_string(ErrorKind::pool_overloaded) == "pool_overloaded");
    CHECK(poolbench::to_string(ErrorKind::pool_closed) == "pool_closed");
    CHECK(poolbench::to_string(ErrorKind::lease_revoked) == "lease_revoked");
    CHECK(poolbench::to_string(ErrorKind::constraint_violation) == "constraint_violation");
    CHECK(poolbench::to_string(ErrorKind::read_only) == "read_only");
    CHECK(poolbench::to_string(ErrorKind::other) == "other");
}

TEST_CASE("parse_error_kind rejects anything but an exact name", "[error_kind]") {
    CHECK_FALSE(poolbench::parse_error_kind("").has_value());
    CHECK_FALSE(poolbench::parse_error_kind("Busy").has_value());
    CHECK_FALSE(poolbench::parse_error_kind("busy ").has_value());
    CHECK_FALSE(poolbench::parse_error_kind("lock-timeout").has_value());
    CHECK_FALSE(poolbench::parse_error_kind("SQLITE_BUSY").has_value());
}

TEST_CASE("error_kind classifies each exception type of the library", "[error_kind]") {
    using namespace poolbench;
    CHECK(error_kind(QueryError("x", "40P01", 0, false)) == ErrorKind::deadlock);
    CHECK(error_kind(QueryError("x", "XX000", 0, false, ErrorKind::lock_timeout)) == ErrorKind::lock_timeout);
    CHECK(error_kind(ConnectError("refused")) == ErrorKind::connection_refused);
    CHECK(error_kind(CircuitOpen("open")) == ErrorKind::circuit_open);
    CHECK(error_kind(PoolTimeout("t", std::chrono::milliseconds(5), 1, 1, 0)) == ErrorKind::pool_timeout);
    CHECK(error_kind(PoolOverloaded("o")) == ErrorKind::pool_overloaded);
    CHECK(error_kind(PoolClosed("c")) == ErrorKind::pool_closed);
    CHECK(error_kind(LeaseRevoked("r")) == ErrorKind::lease_revoked);
    CHECK(error_kind(ConfigError("c")) == ErrorKind::other);
    CHECK(error_kind(UsageError("u")) == ErrorKind::other);
    CHECK(error_kind(Error("e")) == ErrorKind::other);
    CHECK(error_kind(std::runtime_error("r")) == ErrorKind::other);
    CHECK(error_kind(std::bad_alloc()) == ErrorKind::other);
    // Through a base reference, as a catch (const std::exception&) sees it.
    const CircuitOpen circuit("open");
    const std::exception& base = circuit;
    CHECK(error_kind(base) == ErrorKind::circuit_open);
}

TEST_CASE("SQLite result codes map to kinds", "[error_kind][sqlite]") {
    for (int code : {SQLITE_BUSY, SQLITE_BUSY_RECOVERY, SQLITE_BUSY_SNAPSHOT, SQLITE_BUSY_TIMEOUT, SQLITE_LOCKED,
                     SQLITE_LOCKED_SHAREDCACHE, SQLITE_LOCKED_VTAB}) {
        INFO(code);
        CHECK(lite(code) == ErrorKind::busy);
    }
    CHECK(lite(SQLITE_INTERRUPT) == ErrorKind::statement_timeout);
    for (int code : {SQLITE_CONSTRAINT, SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY,
                     SQLITE_CONSTRAINT_NOTNULL, SQLITE_CONSTRAINT_FOREIGNKEY, SQLITE_CONSTRAINT_CHECK}) {
        INFO(code);
        CHECK(lite(code) == ErrorKind::constraint_violation);
    }
    for (int code : {SQLITE_READONLY, SQLITE_READONLY_RECOVERY, SQLITE_READONLY_CANTLOCK, SQLITE_READONLY_ROLLBACK}) {
        INFO(code);
        CHECK(lite(code) == ErrorKind::read_only);
    }
    for (int code : {SQLITE_IOERR, SQLITE_IOERR_READ, SQLITE_IOERR_SHORT_READ, SQLITE_IOERR_WRITE, SQLITE_IOERR_FSYNC,
                     SQLITE_IOERR_LOCK, SQLITE_CORRUPT, SQLITE_CORRUPT_INDEX, SQLITE_NOTADB, SQLITE_CANTOPEN,
                     SQLITE_CANTOPEN_ISDIR, SQLITE_READONLY_DBMOVED}) {
        INFO(code);
        CHECK(lite(code) == ErrorKind::connection_lost);
    }
    for (int code : {SQLITE_ERROR, SQLITE_FULL, SQLITE_NOMEM, SQLITE_SCHEMA, SQLITE_RANGE, SQLITE_MISUSE, SQLITE_TOOBIG,
                     SQLITE_MISMATCH, 99, -1}) {
        INFO(code);
        CHECK(lite(code) == ErrorKind::other);
        CHECK(sqlite_error_kind(code, true) == ErrorKind::connection_lost);
    }
    // A code's own kind wins over the broken flag.
    CHECK(sqlite_error_kind(SQLITE_BUSY, true) == ErrorKind::busy);
}

TEST_CASE("PostgreSQL SQLSTATEs map to kinds", "[error_kind][pg]") {
    CHECK(pg("55P03") == ErrorKind::lock_timeout);
    CHECK(pg("57014") == ErrorKind::statement_timeout);
    CHECK(pg("40001") == ErrorKind::serialization_failure);
    CHECK(pg("40P01") == ErrorKind::deadlock);
    for (const char* code : {"08000", "08003", "08006", "08001", "08P01", "57P01", "57P02", "57P03"}) {
        INFO(code);
        CHECK(pg(code) == ErrorKind::connection_lost);
        CHECK(pg(code, true) == ErrorKind::connection_lost);
    }
    for (const char* code : {"23000", "23502", "23503", "23505", "23514", "23P01"}) {
        INFO(code);
        CHECK(pg(code) == ErrorKind::constraint_violation);
    }
    CHECK(pg("25006") == ErrorKind::read_only);
    // The default broken rule breaks the connection on 25006; the kind stays read_only.
    CHECK(pg("25006", true) == ErrorKind::read_only);
    CHECK(pg("57014", true) == ErrorKind::statement_timeout);
    for (const char* code : {"XX000", "42P01", "42601", "22012", "26000", "54023", "57000", "57P04", "40002", "25P02"}) {
        INFO(code);
        CHECK(pg(code) == ErrorKind::other);
        // A code without a kind of its own that the broken rule (broken_sqlstates=) breaks.
        CHECK(pg(code, true) == ErrorKind::connection_lost);
    }
}

TEST_CASE("MariaDB error numbers map to kinds", "[error_kind][mariadb]") {
    CHECK(maria(1205) == ErrorKind::lock_timeout);
    CHECK(maria(1213) == ErrorKind::deadlock);
    CHECK(maria(1020) == ErrorKind::serialization_failure);
    CHECK(maria(1969) == ErrorKind::statement_timeout);  // max_statement_time
    CHECK(maria(1317) == ErrorKind::statement_timeout);  // KILL QUERY
    for (unsigned code : {1290u, 1792u, 1836u}) {
        INFO(code);
        CHECK(maria(code) == ErrorKind::read_only);
        // The default broken_errors rule breaks the connection on 1290 / 1836; the kind stays.
        CHECK(maria(code, true) == ErrorKind::read_only);
    }
    for (unsigned code : {1048u, 1062u, 1169u, 1216u, 1217u, 1451u, 1452u, 1557u, 1586u, 3819u, 4025u}) {
        INFO(code);
        CHECK(maria(code) == ErrorKind::constraint_violation);
        CHECK(maria(code, true) == ErrorKind::constraint_violation);
    }
    // The server shutting down, the connection killed, and every client-side error.
    for (unsigned code : {1053u, 1927u, 2000u, 2002u, 2003u, 2006u, 2013u, 2014u, 2026u, 2055u, 2999u}) {
        INFO(code);
        CHECK(maria(code) == ErrorKind::connection_lost);
        CHECK(maria(code, true) == ErrorKind::connection_lost);
    }
    for (unsigned code : {0u, 1u, 1044u, 1045u, 1064u, 1142u, 1146u, 1210u, 1999u, 3000u, 4031u, 9999u}) {
        INFO(code);
        CHECK(maria(code) == ErrorKind::other);
        // A number without a kind of its own that broken_errors= breaks.
        CHECK(maria(code, true) == ErrorKind::connection_lost);
    }
    // A specific kind wins over the broken flag.
    CHECK(maria(1213, true) == ErrorKind::deadlock);
    CHECK(maria(1205, true) == ErrorKind::lock_timeout);
    CHECK(maria(1969, true) == ErrorKind::statement_timeout);
    CHECK(maria(1020, true) == ErrorKind::serialization_failure);
}

TEST_CASE("the 4-argument QueryError derives its kind from the code by the backend's rule", "[error_kind]") {
    // SQLite names: the name decides, extended or primary, whatever the native number.
    CHECK(QueryError("x", "SQLITE_BUSY", 5, false).kind() == ErrorKind::busy);
    CHECK(QueryError("x", "SQLITE_BUSY_SNAPSHOT", 0, false).kind() == ErrorKind::busy);
    CHECK(QueryError("x", "SQLITE_LOCKED", 0, false).kind() == ErrorKind::busy);
    CHECK(QueryError("x", "SQLITE_IOERR", 5, false).kind() == ErrorKind::connection_lost);
    CHECK(QueryError("x", "SQLITE_CONSTRAINT_UNIQUE", 0, false).kind() == ErrorKind::constraint_violation);
    CHECK(QueryError("x", "SQLITE_INTERRUPT", 0, false).kind() == ErrorKind::statement_timeout);
    CHECK(QueryError("x", "SQLITE_READONLY_DBMOVED", 0, true).kind() == ErrorKind::connection_lost);
    CHECK(QueryError("x", "SQLITE_FULL", 13, false).kind() == ErrorKind::other);
    CHECK(QueryError("x", "SQLITE_FULL", 13, true).kind() == ErrorKind::connection_lost);
    // The "SQLITE_<number>" fallback name, and a name the table does not know (the number decides).
    CHECK(QueryError("x", "SQLITE_" + std::to_string(SQLITE_BUSY | (99 << 8)), 0, false).kind() == ErrorKind::busy);
    CHECK(QueryError("x", "SQLITE_NOT_A_CODE", SQLITE_LOCKED, false).kind() == ErrorKind::busy);
    CHECK(QueryError("x", "SQLITE_NOT_A_CODE", 0, false).kind() == ErrorKind::other);
    // SQLSTATEs.
    CHECK(QueryError("x", "40001", 0, false).kind() == ErrorKind::serialization_failure);
    CHECK(QueryError("x", "23505", 0, false).kind() == ErrorKind::constraint_violation);
    CHECK(QueryError("x", "08006", 0, true).kind() == ErrorKind::connection_lost);
    CHECK(QueryError("x", "XX000", 0, false).kind() == ErrorKind::other);
    CHECK(QueryError("x", "XX000", 0, true).kind() == ErrorKind::connection_lost);
    // MariaDB error numbers: one to four digits.
    CHECK(QueryError("x", "1213", 1213, false).kind() == ErrorKind::deadlock);
    CHECK(QueryError("x", "1205", 1205, false).kind() == ErrorKind::lock_timeout);
    CHECK(QueryError("x", "1020", 1020, false).kind() == ErrorKind::serialization_failure);
    CHECK(QueryError("x", "1969", 1969, false).kind() == ErrorKind::statement_timeout);
    CHECK(QueryError("x", "1062", 1062, false).kind() == ErrorKind::constraint_violation);
    CHECK(QueryError("x", "1290", 1290, true).kind() == ErrorKind::read_only);
    CHECK(QueryError("x", "2013", 2013, true).kind() == ErrorKind::connection_lost);
    CHECK(QueryError("x", "2006", 2006, false).kind() == ErrorKind::connection_lost);  // the number decides
    CHECK(QueryError("x", "1146", 1146, false).kind() == ErrorKind::other);
    CHECK(QueryError("x", "1146", 1146, true).kind() == ErrorKind::connection_lost);
    CHECK(QueryError("x", "7", 7, false).kind() == ErrorKind::other);
    CHECK(QueryError("x", "0", 0, true).kind() == ErrorKind::connection_lost);
    // The code string decides, not the native number.
    CHECK(QueryError("x", "1213", 0, false).kind() == ErrorKind::deadlock);
    CHECK(QueryError("x", "1146", 1213, false).kind() == ErrorKind::other);
    // Five digits are an SQLSTATE (class 23: constraint), not an error number.
    CHECK(QueryError("x", "23505", 23505, false).kind() == ErrorKind::constraint_violation);
    CHECK(QueryError("x", "12130", 0, false).kind() == ErrorKind::other);
    // Not only digits: neither an error number nor an SQLSTATE.
    CHECK(QueryError("x", "12a3", 0, false).kind() == ErrorKind::other);
    CHECK(QueryError("x", "-121", 0, false).kind() == ErrorKind::other);
    CHECK(QueryError("x", "121 ", 0, true).kind() == ErrorKind::connection_lost);
    // Retryable on MariaDB: deadlock, 1020 and the lock wait timeout (1205) -- which shares
    // its kind with PostgreSQL's lock_timeout (55P03), a deliberate cap that is not retried.
    CHECK(poolbench::is_retryable(QueryError("x", "1213", 1213, false)));
    CHECK(poolbench::is_retryable(QueryError("x", "1020", 1020, false)));
    CHECK(poolbench::is_retryable(QueryError("x", "1205", 1205, false)));
    CHECK_FALSE(poolbench::is_retryable(QueryError("x", "55P03", 0, false)));
    CHECK_FALSE(poolbench::is_retryable(QueryError("x", "1062", 1062, false)));
    CHECK_FALSE(poolbench::is_retryable(QueryError("x", "1969", 1969, false)));
    // Neither shape.
    CHECK(QueryError("x", "", 0, false).kind() == ErrorKind::other);
    CHECK(QueryError("x", "E42", 0, true).kind() == ErrorKind::connection_lost);
    // The 5-argument constructor keeps what it is given.
    const QueryError given("x", "SQLITE_BUSY", 5, false, ErrorKind::other);
    CHECK(given.kind() == ErrorKind::other);
    CHECK_FALSE(given.is_busy());
}

TEST_CASE("is_busy and is_retryable read the kind", "[error_kind]") {
    CHECK(QueryError("x", "", 0, false, ErrorKind::busy).is_busy());
    CHECK_FALSE(QueryError("x", "", 0, false, ErrorKind::lock_timeout).is_busy());
    for (std::size_t i = 0; i < poolbench::error_kind_count; ++i) {
        const auto kind = static_cast<ErrorKind>(i);
        INFO(poolbench::to_string(kind));
        const bool expected =
            kind == ErrorKind::busy || kind == ErrorKind::serialization_failure || kind == ErrorKind::deadlock;
        CHECK(poolbench::is_retryable(QueryError("x", "XX000", 0, false, kind)) == expected);
    }
    CHECK_FALSE(poolbench::is_retryable(poolbench::PoolClosed("closed")));
}
