// sqlite_options.hpp — what an SQLite URL's options say, checked when the driver is made
// (not installed): busy_timeout, mode, immutable, and every other option as a PRAGMA.
//
// Thread-safety: parse_sqlite_options is reentrant; SqliteOptions is a plain value.
#pragma once

#include "poolbench/url.hpp"

#include <string>
#include <vector>

namespace poolbench::internal::sqlite {

inline constexpr int default_busy_timeout_ms = 5000;

/// The options of an SQLite URL, checked.
struct SqliteOptions {
    int busy_timeout_ms = default_busy_timeout_ms;
    bool read_only = false;         ///< mode=ro
    bool immutable = false;         ///< immutable=1
    bool journal_from_url = false;  ///< the URL sets journal_mode
    std::string journal_asked;      ///< the URL's journal_mode, lower case
    std::vector<std::string> pragmas;  ///< "PRAGMA name=value" from the URL, in order
};

/// Reads and checks `url`'s options; throws ConfigError naming the option and `describe`
/// (the URL as messages show it). Options are checked when the driver is made: names must
/// be identifiers SQLite knows (it silently ignores unknown pragmas, so a typo would
/// otherwise pass unnoticed) and values must match [A-Za-z0-9_.-]+.
[[nodiscard]] SqliteOptions parse_sqlite_options(const DbUrl& url, const std::string& describe);

}  // namespace poolbench::internal::sqlite
