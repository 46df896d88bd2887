// drivers_internal.hpp — constructors of the built-in backends (not installed).
#pragma once

#include "poolbench/connection.hpp"
#include "poolbench/url.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace poolbench::internal {

/// True when `value` is one of the space-separated words in `choices` (a URL option's
/// accepted values, checked when the driver is made).
inline bool one_of(std::string_view value, std::string_view choices) {
    while (!choices.empty()) {
        const auto sp = choices.find(' ');
        if (choices.substr(0, sp) == value) return true;
        choices = sp == std::string_view::npos ? std::string_view{} : choices.substr(sp + 1);
    }
    return false;
}

/// The same words joined with ',' for an error message.
inline std::string comma_list(std::string_view choices) {
    std::string list(choices);
    for (char& c : list)
        if (c == ' ') c = ',';
    return list;
}

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
