// pg_url_options.hpp — what a PostgreSQL URL says, checked when the driver is made (not
// installed): the settings a driver and its connections share, the checks of libpq's
// keyword values, the URL without its query and its raw password, and the SQLSTATE rule
// that says which errors break a connection (broken_sqlstates=).
//
// Thread-safety: PgSettings is immutable after the driver builds it and is shared by its
// connections; the functions are reentrant.
#pragma once

#include "pg_text.hpp"

#include <libpq-fe.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace poolbench::internal::pg {

struct ConninfoFreer {
    void operator()(PQconninfoOption* o) const noexcept { PQconninfoFree(o); }
};
using ConninfoPtr = std::unique_ptr<PQconninfoOption, ConninfoFreer>;

/// prepare= in the URL: how query() sends a statement (postgres_driver.cpp's header).
enum class PrepareMode {
    on,         ///< named: each SQL text prepared once per connection (pb_1, pb_2, ...) and reused
    off,        ///< unnamed: parsed with every call (PQsendQueryParams), as a pooler needs
    automatic,  ///< unnamed when a pooler is found in front of the server, else named (the default)
};

/// Everything a driver and its connections share; immutable after construction.
struct PgSettings {
    std::string redacted;
    std::vector<std::string> keywords;
    std::vector<std::string> values;
    std::vector<std::string> secrets;  ///< passwords to scrub from libpq messages
    std::optional<std::chrono::milliseconds> statement_timeout;
    std::string statement_timeout_text;
    std::optional<std::chrono::milliseconds> connect_timeout;
    std::string reset_query;
    bool reset_query_discards = false;  ///< the reset query deallocates prepared statements
    std::vector<std::string> broken_sqlstates;  ///< which SQLSTATEs mean "connection unusable"
    PrepareMode prepare = PrepareMode::automatic;

    /// Removes every password from `message`.
    [[nodiscard]] std::string scrub(std::string message) const { return scrub_secrets(std::move(message), secrets); }
};

/// libpq checks these values only when connecting, which would make a typo in the URL
/// look like an unusable database (exit 3) rather than a bad URL (exit 2): check them
/// when the driver is made. One line naming the parameter and the accepted values.
void check_libpq_value(const std::string& name, const std::string& value, const std::string& redacted);

/// The default broken rule: connection exceptions (class 08), the server shutting down or
/// the backend terminated (57P01-57P03), and 25006 (read-only transaction): a pool that
/// writes and finds itself on a read-only standby after a failover must reconnect (to the
/// new primary) rather than fail every write. broken_sqlstates=... in the URL replaces it.
inline constexpr std::string_view default_broken_sqlstates = "08,57P01,57P02,57P03,25006";

/// `code` matches an entry of `rule`: a 2-character class or a 5-character SQLSTATE.
[[nodiscard]] bool matches_sqlstate(std::string_view code, const std::vector<std::string>& rule) noexcept;

/// The entries of a broken_sqlstates list (classes and codes, comma-separated); throws
/// ConfigError naming the URL (`redacted`) for a bad entry.
[[nodiscard]] std::vector<std::string> parse_sqlstate_rule(std::string_view text, const std::string& redacted);

/// The URL without its query string. Like libpq, credentials end at the first '@'
/// before any '/', so a '?' inside a password does not start the query.
[[nodiscard]] std::string base_url(std::string_view conninfo);

/// The password as written in the URL (still %-encoded), "" when it has none.
[[nodiscard]] std::string raw_password(std::string_view conninfo);

/// prepare=VALUE: on, off or auto; throws ConfigError naming the URL (`redacted`) otherwise.
[[nodiscard]] PrepareMode parse_prepare_mode(std::string_view value, const std::string& redacted);

/// The keywords libpq accepts.
[[nodiscard]] std::set<std::string, std::less<>> libpq_keywords();

}  // namespace poolbench::internal::pg
