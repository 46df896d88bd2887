// mariadb_url_options.hpp — what a MariaDB / MySQL URL says, checked when the driver is
// made (not installed): the settings a driver and its connections share.
//
// Options (the URL's query parameters; anything else is a ConfigError naming these):
//   ssl_mode=disabled|preferred|required|verify_ca|verify_identity  (default preferred: TLS
//                      when the server offers it; sslmode= is accepted as a spelling)
//   ssl_ca=PATH        the CA file for verify_ca / verify_identity
//   connect_timeout=DURATION  (5s, 1500ms; a bare number is seconds, as in MySQL's own)
//   charset=NAME       the connection character set (default utf8mb4), checked against the
//                      client library's list
//   statement_timeout=DURATION  (a bare number is milliseconds; 0 = off) the server's
//                      max_statement_time for the session: a statement running longer is
//                      stopped by the server (error 1969, kind statement_timeout) and the
//                      connection stays usable; the client also stops waiting for an answer
//                      that long plus 5 s, and then gives the connection up (broken)
//   socket=PATH        connect through this Unix socket instead of TCP (the URL's host and
//                      port are then not used)
//   autocommit=1|0     (default 1)
//   reset_connection=0|1  release also runs COM_RESET_CONNECTION (mysql_reset_connection):
//                      session variables, temporary tables, user locks and prepared
//                      statements are reset, like PostgreSQL's DISCARD ALL
//   reset_query=SQL    run on release after any rollback; also once on the driver's first
//                      connection, where a failure is a ConnectError (reset_query_check.hpp)
//   broken_errors=LIST which error numbers also make the pool drop the connection, beside
//                      those that always do (the client's 2000-2999, 1053 shutdown, 1927
//                      killed); default 1290,1836 (the server is read-only: a pool that writes
//                      reconnects, e.g. to a new primary after a failover)
//
// Thread-safety: MariaSettings is immutable after the driver builds it and is shared by
// its connections; the functions are reentrant.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace poolbench {
struct DbUrl;
}

namespace poolbench::internal::mariadb {

enum class SslMode { disabled, preferred, required, verify_ca, verify_identity };

/// Everything a driver and its connections share; immutable after construction.
struct MariaSettings {
    std::string redacted;
    std::string user, password, host, database, socket;
    unsigned port = 0;  ///< 0: the library's default (3306)
    SslMode ssl_mode = SslMode::preferred;
    std::string ssl_ca;
    std::optional<std::chrono::milliseconds> connect_timeout;
    std::string charset = "utf8mb4";
    std::optional<std::chrono::milliseconds> statement_timeout;
    std::string statement_timeout_text;
    bool autocommit = true;
    bool reset_connection = false;
    std::string reset_query;
    std::vector<unsigned> broken_errors{1290, 1836};

    /// Removes the password from `message`.
    [[nodiscard]] std::string scrub(std::string message) const;
    /// Where the server is, for messages: "host:port" or the socket path.
    [[nodiscard]] std::string where() const;
};

/// Reads and checks `url` (a mariadb:// or mysql:// DbUrl). Throws ConfigError with one
/// line naming the option, the URL (redacted) and the accepted values.
[[nodiscard]] MariaSettings read_settings(const DbUrl& url);

/// The error numbers of a broken_errors list; throws ConfigError for a bad entry.
[[nodiscard]] std::vector<unsigned> parse_error_list(std::string_view text, const std::string& redacted);

}  // namespace poolbench::internal::mariadb
