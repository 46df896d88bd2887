// drivers_internal.hpp — constructors of the built-in backends (not installed).
#pragma once

#include "poolbench/connection.hpp"
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

/// For tests of sqlite_driver.cpp's tables: QueryError::code() for an SQLite result code,
/// and whether a failure with that code breaks the connection.
[[nodiscard]] std::string sqlite_code_string(int code);
[[nodiscard]] bool sqlite_is_broken_code(int code) noexcept;

}  // namespace poolbench::internal
