// poolbench/url.hpp — database URLs: parsing, validation and redaction.
//
//   sqlite:///abs/path.db      file database at an absolute path
//   sqlite://rel/path.db       file database relative to the working directory
//   sqlite::memory:            in-memory database shared by all the pool's connections
//   postgresql://user:pass@host:port/db?sslmode=...   (also postgres://)
//   mariadb://user:pass@host:port/db?ssl_mode=...     (also mysql://; port 3306 when absent)
//   null://                    no database: measures the pool itself
// Query parameters after '?' are options: for SQLite `busy_timeout=MS` and any other
// `name=value` becomes `PRAGMA name=value` on every new connection.
//
// Thread-safety: free functions are reentrant; DbUrl is a plain value type.
#pragma once

#include "poolbench/connection.hpp"  // Backend

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace poolbench {

struct DbUrl {
    Backend backend = Backend::null;
    std::string original;  ///< exactly as given (may contain a password: never print it)
    std::string redacted;  ///< safe to print: any password replaced by "***"
    // SQLite
    std::string path;      ///< file path ("" for in-memory)
    bool memory = false;
    // PostgreSQL
    std::string conninfo;  ///< the URL handed to libpq (password intact)
    // MariaDB / MySQL: the URL's parts, percent-decoded ("" / 0 when absent).
    std::string user;
    std::string password;  ///< never print it
    /// MariaDB, and PostgreSQL too: the (first) host, IPv6 without its brackets, and its
    /// port ("" / 0 when the URL gives none: the driver's defaults apply).
    std::string host;
    unsigned port = 0;
    std::string database;
    // Options from the query string, in order.
    std::vector<std::pair<std::string, std::string>> params;
};

/// Parses a database URL. Throws ConfigError with one line saying what is wrong and
/// what a valid URL looks like.
[[nodiscard]] DbUrl parse_db_url(std::string_view url);

/// Replaces the password in any URL-like or key=value connection string by "***".
[[nodiscard]] std::string redact_url(std::string_view url);

}  // namespace poolbench
