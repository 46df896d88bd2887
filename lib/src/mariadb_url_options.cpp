// mariadb_url_options.cpp — the checks of a MariaDB URL's options (see mariadb_url_options.hpp).
#include "mariadb_url_options.hpp"

#include "driver_text.hpp"
#include "pg_text.hpp"
#include "poolbench/error.hpp"
#include "poolbench/internal/duration.hpp"
#include "poolbench/url.hpp"

#include <mysql.h>

#include <charconv>

namespace poolbench::internal::mariadb {

namespace {

constexpr std::string_view known_options =
    "ssl_mode, ssl_ca, connect_timeout, charset, statement_timeout, socket, autocommit, reset_connection, "
    "reset_query, broken_errors";

[[noreturn]] void bad(const std::string& name, const std::string& value, const std::string& redacted,
                      std::string_view use) {
    throw ConfigError("invalid " + name + " '" + value + "' in MariaDB URL '" + redacted + "': " + std::string(use));
}

bool read_flag(const std::string& name, const std::string& value, const std::string& redacted) {
    if (value == "1" || value == "true" || value == "on") return true;
    if (value == "0" || value == "false" || value == "off") return false;
    bad(name, value, redacted, "use 1 or 0");
}

}  // namespace

std::string MariaSettings::scrub(std::string message) const {
    return pg::scrub_secrets(std::move(message), {password});
}

std::string MariaSettings::where() const {
    if (!socket.empty()) return socket;
    return (host.empty() ? std::string("localhost") : host) + ":" + std::to_string(port == 0 ? 3306 : port);
}

std::vector<unsigned> parse_error_list(std::string_view text, const std::string& redacted) {
    std::vector<unsigned> out;
    while (true) {
        const std::size_t comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        unsigned n = 0;
        const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), n);
        if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || n == 0 || n > 9999) {
            throw ConfigError("invalid broken_errors entry '" + std::string(item) + "' in MariaDB URL '" + redacted +
                              "': use a comma-separated list of error numbers (1290,1836)");
        }
        out.push_back(n);
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return out;
}

MariaSettings read_settings(const DbUrl& url) {
    MariaSettings s;
    s.redacted = url.redacted;
    s.user = url.user;
    s.password = url.password;
    s.host = url.host.empty() ? "localhost" : url.host;
    s.port = url.port;
    s.database = url.database;
    for (const auto& [name, value] : url.params) {
        const std::string& r = url.redacted;
        if (name == "ssl_mode" || name == "sslmode" || name == "ssl-mode") {
            const std::string v = lower(value);
            if (v == "disabled" || v == "disable") s.ssl_mode = SslMode::disabled;
            else if (v == "preferred" || v == "prefer") s.ssl_mode = SslMode::preferred;
            else if (v == "required" || v == "require") s.ssl_mode = SslMode::required;
            else if (v == "verify_ca" || v == "verify-ca") s.ssl_mode = SslMode::verify_ca;
            else if (v == "verify_identity" || v == "verify-full") s.ssl_mode = SslMode::verify_identity;
            else bad(name, value, r, "use one of disabled, preferred, required, verify_ca, verify_identity");
        } else if (name == "ssl_ca") {
            if (value.empty()) bad(name, value, r, "give the path of a CA certificate file");
            s.ssl_ca = value;
        } else if (name == "connect_timeout") {
            std::chrono::milliseconds d{0};
            // MySQL's connect_timeout is whole seconds: a bare number means seconds here too.
            const bool bare = !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
            const std::string text = bare ? value + "s" : value;
            if (!read_duration(text, d, {.allow_zero = false, .bare_number_is_ms = false}).empty()) {
                bad(name, value, r, "use a duration such as 5s or 1500ms (a bare number is seconds)");
            }
            s.connect_timeout = d;
        } else if (name == "charset") {
            if (value.empty() || mariadb_get_charset_by_name(value.c_str()) == nullptr) {
                bad(name, value, r, "use a character set the server knows, such as utf8mb4, utf8mb3 or latin1");
            }
            s.charset = value;
        } else if (name == "statement_timeout") {
            std::chrono::milliseconds d{0};
            if (!read_duration(value, d, {.allow_zero = true, .bare_number_is_ms = true}).empty()) {
                bad(name, value, r, "use a duration such as 250ms, 5s, 2m or 1h (0 turns it off)");
            }
            s.statement_timeout_text = value;
            if (d.count() > 0) s.statement_timeout = d;
        } else if (name == "socket") {
            if (value.empty() || value.front() != '/') bad(name, value, r, "give the absolute path of the server's Unix socket");
            s.socket = value;
        } else if (name == "autocommit") {
            s.autocommit = read_flag(name, value, r);
        } else if (name == "reset_connection") {
            s.reset_connection = read_flag(name, value, r);
        } else if (name == "reset_query") {
            s.reset_query = value;
        } else if (name == "broken_errors") {
            s.broken_errors = parse_error_list(value, r);
        } else if (name == "password") {
            throw ConfigError("MariaDB URL '" + r + "': give the password in the URL's user part (user:password@host), "
                              "not as ?password=");
        } else {
            throw ConfigError("unknown parameter '" + name + "' in MariaDB URL '" + r + "': use " +
                              std::string(known_options));
        }
    }
    if (!s.ssl_ca.empty() && s.ssl_mode != SslMode::verify_ca && s.ssl_mode != SslMode::verify_identity) {
        throw ConfigError("MariaDB URL '" + url.redacted +
                          "': ssl_ca is used only to verify the server; add ssl_mode=verify_ca or verify_identity");
    }
    return s;
}

}  // namespace poolbench::internal::mariadb
