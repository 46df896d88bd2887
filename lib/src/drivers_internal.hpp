// drivers_internal.hpp — constructors of the built-in backends (not installed).
#pragma once

#include "poolbench/connection.hpp"
#include "poolbench/diagnostics.hpp"
#include "poolbench/url.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace poolbench::internal {

/// null://: connections that do nothing (see null_driver.cpp).
[[nodiscard]] std::shared_ptr<Driver> make_null_driver();

/// sqlite:...: validates the URL options (throws ConfigError); for an in-memory URL,
/// creates the shared database (throws ConnectError if that fails).
[[nodiscard]] std::shared_ptr<Driver> make_sqlite_driver(const DbUrl& url);

/// postgresql:// and postgres://: validates the URL's parameters (throws ConfigError);
/// opens nothing until connect() (see postgres_driver.cpp).
[[nodiscard]] std::shared_ptr<Driver> make_postgres_driver(const DbUrl& url);

/// mariadb:// and mysql://: validates the URL's options (throws ConfigError); opens
/// nothing until connect() (see mariadb_driver.cpp).
[[nodiscard]] std::shared_ptr<Driver> make_mariadb_driver(const DbUrl& url);

/// What the PostgreSQL driver's URL says that diagnose needs.
struct PgDiagnoseSetup {
    bool client_statement_timeout = false;  ///< the URL's statement_timeout (poolbench's own, client-side)
};
/// PostgreSQL's diagnose() (postgres_diagnose.cpp), through driver.connect_read_only().
[[nodiscard]] Diagnosis postgres_diagnose(Driver& driver, const PgDiagnoseSetup& setup, const DiagnoseOptions& options);

/// What the MariaDB driver's URL says that diagnose needs.
struct MariaDiagnoseSetup {
    bool client_statement_timeout = false;  ///< the URL's statement_timeout (max_statement_time per session)
    bool local = false;                     ///< a Unix socket or a loopback host
};
/// MariaDB's (and MySQL's) diagnose() (mariadb_diagnose.cpp), through driver.connect_read_only().
[[nodiscard]] Diagnosis mariadb_diagnose(Driver& driver, const MariaDiagnoseSetup& setup, const DiagnoseOptions& options);

/// For tests of sqlite_codes.cpp's tables: QueryError::code() for an SQLite result code,
/// and whether a failure with that code breaks the connection.
[[nodiscard]] std::string sqlite_code_string(int code);
[[nodiscard]] bool sqlite_is_broken_code(int code) noexcept;

}  // namespace poolbench::internal
