// url.cpp — parsing, validation and redaction of database URLs.
//
// Accepted forms (see url.hpp):
//   sqlite:///abs/path.db   sqlite://rel/path.db   sqlite::memory:   (also sqlite://:memory:)
//   postgresql://user:pass@host:port/db?k=v   postgres://...        null://
//   mariadb://user:pass@host:port/db?k=v      mysql://...  (one host; user, password and
//                                             database are percent-decoded into DbUrl)
// Every form may carry "?name=value&..." options; values (and names) are percent-decoded.
// SQLite paths are taken literally (no percent-decoding), so a file name may contain '%'.
#include "poolbench/url.hpp"

#include "poolbench/error.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

namespace poolbench {

namespace {

constexpr std::string_view valid_forms =
    "use sqlite:///abs/path.db, sqlite://rel/path.db, sqlite::memory:, "
    "postgresql://user@host:port/db, mariadb://user@host:port/db (or mysql://) or null://";

char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    }
    return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// Decodes %XX escapes into `out`. False when an escape is malformed.
bool percent_decode(std::string_view in, std::string& out) {
    out.clear();
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (i + 2 >= in.size()) return false;  // needs two hex digits after '%'
        const int hi = hex_value(in[i + 1]);
        const int lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return true;
}

/// Makes text safe to show inside one line of an error message: control characters
/// become \xNN, so a URL with a newline cannot split the message.
std::string printable(std::string_view s) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto u = static_cast<unsigned char>(ch);
        if (u < 0x20 || u == 0x7f) {
            out += "\\x";
            out.push_back(digits[u >> 4]);
            out.push_back(digits[u & 0xf]);
        } else {
            out.push_back(ch);
        }
    }
    return out;
}

[[noreturn]] void fail(std::string_view original, std::string_view problem) {
    std::string msg = "invalid database URL '";
    msg += printable(redact_url(original));
    msg += "': ";
    msg += problem;
    msg += " — ";
    msg += valid_forms;
    throw ConfigError(msg);
}

/// Parses "a=b&c=d" into `params`, percent-decoding names and values.
void parse_query(std::string_view query, std::string_view original,
                 std::vector<std::pair<std::string, std::string>>& params) {
    if (query.empty()) return;  // a bare trailing '?' carries no options
    std::size_t index = 0;
    while (true) {
        ++index;
        const std::size_t amp = query.find('&');
        const std::string_view piece = query.substr(0, amp);
        if (piece.empty()) {
            fail(original, "query parameter #" + std::to_string(index) +
                               " is empty (a stray '&'; expected name=value)");
        }
        const std::size_t eq = piece.find('=');
        const std::string_view raw_name = piece.substr(0, eq);
        std::string name;
        if (!percent_decode(raw_name, name)) {
            fail(original, "query parameter name '" + printable(raw_name) +
                               "' has a malformed %-escape (use %XX with two hex digits)");
        }
        if (eq == std::string_view::npos) {
            fail(original, "query parameter '" + printable(name) + "' has no value (expected name=value)");
        }
        if (name.empty()) {
            fail(original, "query parameter #" + std::to_string(index) + " has an empty name (expected name=value)");
        }
        std::string value;
        // The value is never echoed: it may be a password.
        if (!percent_decode(piece.substr(eq + 1), value)) {
            fail(original, "the value of query parameter '" + printable(name) +
                               "' has a malformed %-escape (use %XX with two hex digits)");
        }
        params.emplace_back(std::move(name), std::move(value));
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
}

/// Checks "host[:port][,host[:port]...]" (IPv6 hosts in brackets) for valid ports, and
/// keeps the first host (brackets removed) and its port in `out`.
void check_pg_hosts(std::string_view hosts, std::string_view original, DbUrl& out) {
    bool first = true;
    while (true) {
        const std::size_t comma = hosts.find(',');
        std::string_view host = hosts.substr(0, comma);
        std::string_view port;
        bool has_port = false;
        if (!host.empty() && host.front() == '[') {
            const std::size_t close = host.find(']');
            if (close == std::string_view::npos) {
                fail(original, "IPv6 host '" + printable(host) + "' lacks its closing ']'");
            }
            const std::string_view after = host.substr(close + 1);
            if (!after.empty()) {
                if (after.front() != ':') {
                    fail(original, "unexpected '" + printable(after) + "' after IPv6 host (expected :port)");
                }
                has_port = true;
                port = after.substr(1);
            }
        } else if (const std::size_t colon = host.rfind(':'); colon != std::string_view::npos) {
            has_port = true;
            port = host.substr(colon + 1);
        }
        if (has_port) {
            bool ok = !port.empty() && port.size() <= 5;
            std::uint32_t n = 0;
            for (const char c : port) {
                if (!is_digit(c)) {
                    ok = false;
                    break;
                }
                n = n * 10 + static_cast<std::uint32_t>(c - '0');
            }
            if (!ok || n < 1 || n > 65535) {
                fail(original, "port '" + printable(port) + "' is not a number from 1 to 65535");
            }
            if (first) out.port = n;
        }
        if (first) {
            std::string_view name = has_port ? host.substr(0, host.size() - port.size() - 1) : host;
            if (!name.empty() && name.front() == '[') name = name.substr(1, name.size() - 2);
            out.host = std::string(name);
            first = false;
        }
        if (comma == std::string_view::npos) break;
        hosts.remove_prefix(comma + 1);
    }
}

void parse_sqlite(std::string_view url, std::string_view original, DbUrl& out) {
    out.backend = Backend::sqlite;
    std::string_view rest = url.substr(std::string_view("sqlite:").size());
    const auto take_query = [&](std::string_view body) {
        const std::size_t q = body.find('?');
        if (q != std::string_view::npos) {
            parse_query(body.substr(q + 1), original, out.params);
            return body.substr(0, q);
        }
        return body;
    };
    if (istarts_with(rest, ":memory:")) {
        if (!take_query(rest.substr(std::string_view(":memory:").size())).empty()) {
            fail(original, "unexpected text after sqlite::memory: (options go after '?')");
        }
        out.memory = true;
        return;
    }
    if (rest.substr(0, 2) != "//") {
        fail(original, "a SQLite URL needs '//' after 'sqlite:' or is exactly sqlite::memory:");
    }
    const std::string_view path = take_query(rest.substr(2));
    if (path == ":memory:") {  // sqlite://:memory: — an alias people type
        out.memory = true;
        return;
    }
    if (path.empty()) fail(original, "the SQLite file path is empty");
    if (path.back() == '/') fail(original, "the SQLite path '" + printable(path) + "' names a directory, not a file");
    out.path = std::string(path);
}

/// A URL whose user name or password holds an unencoded delimiter: where the password ends
/// is unknowable, so nothing before the last '@' is shown. `which` lists the characters.
[[noreturn]] void unencoded_credentials(std::string_view url, std::size_t scheme_len, std::string_view which) {
    const std::size_t at = url.rfind('@');
    const std::size_t end = url.find_first_of("?#", at);
    throw ConfigError("invalid database URL '" +
                      printable(std::string(url.substr(0, scheme_len + 3)) + "***" +
                                std::string(url.substr(at, end == std::string_view::npos ? end : end - at))) +
                      "': the user name or password contains an unencoded " + std::string(which) +
                      ": percent-encode them (%40, %2F, %3F, %23" +
                      (which.find('%') != std::string_view::npos ? ", %25)" : ")"));
}

void parse_postgres_parts(std::string_view rest, std::string_view original, DbUrl& out);

void parse_postgres(std::string_view url, std::string_view original, std::size_t scheme_len, DbUrl& out) {
    out.backend = Backend::postgresql;
    // libpq accepts only the lowercase scheme; normalise it and keep the rest as given.
    out.conninfo = (scheme_len == std::string_view("postgresql").size() ? "postgresql" : "postgres");
    out.conninfo += url.substr(scheme_len);
    const std::string_view rest = url.substr(scheme_len + 3);
    // A password with an unencoded '@', '/', '?' or '#' splits differently for libpq than
    // for the redaction, and an error about the pieces (ours or libpq's) would then quote
    // part of it: refuse such URLs first. libpq ends the authority at the first '/' or '?'
    // ('#' is no delimiter to it: "u:p@h#x@host" names the host "h#x@host"), so two '@'
    // in it, or one in the database name, mean such a password. An '@' in the options may
    // be a value's (application_name=me@work), so there only options that do not parse
    // are taken as such a password (u:p@h?x@host/db: "option 'x@host/db' has no value").
    constexpr std::string_view which = "'@', '/', '?' or '#'";
    const std::size_t authority_end = rest.find_first_of("/?");
    const std::string_view authority = rest.substr(0, authority_end);
    if (std::count(authority.begin(), authority.end(), '@') > 1) unencoded_credentials(url, scheme_len, which);
    if (authority_end == std::string_view::npos || rest.find('@', authority_end) == std::string_view::npos) {
        parse_postgres_parts(rest, original, out);
        return;
    }
    if (rest[authority_end] == '/' &&
        rest.substr(authority_end, rest.find('?', authority_end) - authority_end).find('@') != std::string_view::npos) {
        unencoded_credentials(url, scheme_len, which);
    }
    try {
        parse_postgres_parts(rest, original, out);
    } catch (const ConfigError&) {
        unencoded_credentials(url, scheme_len, which);
    }
}

/// The part after "postgresql://", with no '@' that makes the password's end ambiguous.
void parse_postgres_parts(std::string_view rest, std::string_view original, DbUrl& out) {
    // Like libpq: user credentials end at the first '@' before any '/'.
    std::size_t p = 0;
    while (p < rest.size() && rest[p] != '@' && rest[p] != '/') ++p;
    if (p < rest.size() && rest[p] == '@') rest.remove_prefix(p + 1);
    const std::size_t host_end = rest.find_first_of("/?");
    check_pg_hosts(rest.substr(0, host_end), original, out);
    if (host_end == std::string_view::npos) return;
    rest.remove_prefix(host_end);
    const std::size_t q = rest.find('?');
    if (q != std::string_view::npos) parse_query(rest.substr(q + 1), original, out.params);
}

void parse_mariadb_parts(std::string_view url, std::string_view original, std::size_t scheme_len, DbUrl& out);

/// mariadb:// and mysql://: [user[:password]@]host[:port][/database][?options], one host.
void parse_mariadb(std::string_view url, std::string_view original, std::size_t scheme_len, DbUrl& out) {
    // A password with an unencoded '/', '?' or '#' moves the host, database or options into
    // it, and an error about those would then quote part of the password. An '@' in the
    // database name means that; an '@' in the options may be a value's (reset_query=SELECT @a),
    // so there only a URL that does not parse is taken as such a password.
    const std::string_view rest = url.substr(scheme_len + 3);
    const std::size_t authority_end = rest.find_first_of("/?#");
    if (authority_end == std::string_view::npos || rest.find('@', authority_end) == std::string_view::npos) {
        parse_mariadb_parts(url, original, scheme_len, out);
        return;
    }
    if (rest[authority_end] == '/') {
        const std::string_view path = rest.substr(authority_end, rest.find_first_of("?#", authority_end) - authority_end);
        if (path.find('@') != std::string_view::npos) unencoded_credentials(url, scheme_len, "'@', '/', '?', '#' or '%'");
    }
    try {
        parse_mariadb_parts(url, original, scheme_len, out);
    } catch (const ConfigError&) {
        unencoded_credentials(url, scheme_len, "'@', '/', '?', '#' or '%'");
    }
}

void parse_mariadb_parts(std::string_view url, std::string_view original, std::size_t scheme_len, DbUrl& out) {
    out.backend = Backend::mariadb;
    std::string_view rest = url.substr(scheme_len + 3);
    const std::size_t q = rest.find('?');
    if (q != std::string_view::npos) {
        parse_query(rest.substr(q + 1), original, out.params);
        rest = rest.substr(0, q);
    }
    if (rest.find('#') != std::string_view::npos) {
        fail(original, "a '#' in the user name, password or database must be percent-encoded (%23)");
    }
    const std::size_t slash_before_at = rest.find('/');
    const std::size_t at = rest.rfind('@', slash_before_at);
    if (at != std::string_view::npos && rest.substr(0, at).find('@') != std::string_view::npos) {
        unencoded_credentials(url, scheme_len, "'@', '/', '?', '#' or '%'");
    }
    if (at != std::string_view::npos) {
        const std::string_view userinfo = rest.substr(0, at);
        const std::size_t colon = userinfo.find(':');
        if (!percent_decode(userinfo.substr(0, colon), out.user)) {
            fail(original, "the user name has a malformed %-escape (use %XX with two hex digits)");
        }
        if (colon != std::string_view::npos && !percent_decode(userinfo.substr(colon + 1), out.password)) {
            fail(original, "the password has a malformed %-escape (use %XX with two hex digits)");
        }
        rest.remove_prefix(at + 1);
    }
    const std::size_t slash = rest.find('/');
    std::string_view host = rest.substr(0, slash);
    if (slash != std::string_view::npos) {
        const std::string_view db = rest.substr(slash + 1);
        if (db.find('/') != std::string_view::npos) {
            fail(original, "the database name '" + printable(db) + "' contains '/' (percent-encode it as %2F)");
        }
        if (!percent_decode(db, out.database)) {
            fail(original, "the database name has a malformed %-escape (use %XX with two hex digits)");
        }
    }
    if (host.find(',') != std::string_view::npos) {
        fail(original, "a MariaDB URL names one host (host:port); for failover put a proxy in front");
    }
    check_pg_hosts(host, original, out);  // one host: the same [v6]:port checks, and its parts
    const std::string raw = out.host;
    if (!percent_decode(raw, out.host)) {
        fail(original, "the host has a malformed %-escape (use %XX with two hex digits)");
    }
}

}  // namespace

DbUrl parse_db_url(std::string_view original) {
    std::string_view url = original;
    while (!url.empty() && is_space(url.front())) url.remove_prefix(1);
    while (!url.empty() && is_space(url.back())) url.remove_suffix(1);
    if (url.empty()) {
        throw ConfigError(std::string("empty database URL — ") + std::string(valid_forms));
    }

    DbUrl out;
    out.original = std::string(original);
    out.redacted = redact_url(original);

    if (istarts_with(url, "sqlite:")) {
        parse_sqlite(url, original, out);
    } else if (istarts_with(url, "postgresql://")) {
        parse_postgres(url, original, std::string_view("postgresql").size(), out);
    } else if (istarts_with(url, "postgres://")) {
        parse_postgres(url, original, std::string_view("postgres").size(), out);
    } else if (istarts_with(url, "mariadb://")) {
        parse_mariadb(url, original, std::string_view("mariadb").size(), out);
    } else if (istarts_with(url, "mysql://")) {
        parse_mariadb(url, original, std::string_view("mysql").size(), out);
    } else if (istarts_with(url, "null:")) {
        std::string_view rest = url.substr(std::string_view("null:").size());
        if (rest.substr(0, 2) != "//") fail(original, "the null backend is written null://");
        rest.remove_prefix(2);
        const std::size_t q = rest.find('?');
        if (!rest.substr(0, q).empty()) fail(original, "null:// takes no host or path");
        if (q != std::string_view::npos) parse_query(rest.substr(q + 1), original, out.params);
        out.backend = Backend::null;
    } else {
        throw ConfigError("unsupported database URL '" + printable(out.redacted) + "' — " + std::string(valid_forms));
    }
    return out;
}

namespace {

/// Key names whose values are secrets in key=value strings and URL query strings.
bool is_password_key(std::string_view raw_key) {
    std::string key;
    if (!percent_decode(raw_key, key)) key.assign(raw_key);
    // key, hexkey, rekey, hexrekey: SQLCipher's (and SEE's) encryption keys.
    static constexpr std::array<std::string_view, 9> names{"password", "passwd", "pwd",    "pass",    "sslpassword",
                                                           "key",      "hexkey", "rekey", "hexrekey"};
    for (const auto n : names) {
        if (iequals(key, n)) return true;
    }
    return false;
}

bool is_key_boundary(char c) noexcept { return is_space(c) || c == '?' || c == '&' || c == ';' || c == ','; }

/// Replaces the password in scheme://user:password@host by "***".
void redact_userinfo(std::string& s) {
    const std::size_t scheme_end = s.find("://");
    if (scheme_end == std::string::npos) return;
    const std::size_t start = scheme_end + 3;
    const std::size_t slash = s.find('/', start);
    const std::size_t region_end = slash == std::string::npos ? s.size() : slash;
    // The last '@' before the path: a password may contain an unencoded '@'.
    std::size_t at = std::string::npos;
    for (std::size_t i = region_end; i > start; --i) {
        if (s[i - 1] == '@') {
            at = i - 1;
            break;
        }
    }
    std::size_t colon = s.find(':', start);
    if (at != std::string::npos) {
        if (colon == std::string::npos || colon > at) return;  // user without password
    } else {
        // No '@' before the first '/': the password itself may contain '/'. Redact up to
        // the last '@' if a ':' precedes the '/' and what follows it is not just a port.
        if (slash == std::string::npos || colon == std::string::npos || colon > slash) return;
        const std::size_t last_at = s.rfind('@');
        if (last_at == std::string::npos || last_at < slash) return;
        bool port_only = slash - colon - 1 > 0;
        for (std::size_t i = colon + 1; i < slash; ++i) {
            if (!is_digit(s[i])) port_only = false;
        }
        if (port_only) return;
        at = last_at;
    }
    s.replace(colon + 1, at - colon - 1, "***");
}

}  // namespace

std::string redact_url(std::string_view url) {
    std::string s(url);
    redact_userinfo(s);
    const bool is_url = s.find("://") != std::string::npos;

    // key=value passwords: "password=secret", "password = 'se cret'", "?password=secret&...".
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        if (i != 0 && !is_key_boundary(s[i - 1])) {
            out.push_back(s[i++]);
            continue;
        }
        std::size_t k = i;
        while (k < s.size() && s[k] != '=' && !is_key_boundary(s[k])) ++k;
        std::size_t eq = k;
        while (eq < s.size() && (s[eq] == ' ' || s[eq] == '\t')) ++eq;
        if (k == i || eq >= s.size() || s[eq] != '=' || !is_password_key(std::string_view(s).substr(i, k - i))) {
            out.push_back(s[i++]);
            continue;
        }
        std::size_t v = eq + 1;
        while (v < s.size() && (s[v] == ' ' || s[v] == '\t')) ++v;
        out.append(s, i, v - i);  // the key, '=' and surrounding spaces
        std::size_t end = v;
        if (end < s.size() && s[end] == '\'') {  // libpq quoted value, backslash escapes
            ++end;
            while (end < s.size() && s[end] != '\'') {
                if (s[end] == '\\' && end + 1 < s.size()) ++end;
                ++end;
            }
            if (end < s.size()) ++end;
        } else if (is_url) {
            while (end < s.size() && s[end] != '&' && s[end] != '#') ++end;
        } else {
            while (end < s.size() && !is_space(s[end])) ++end;
        }
        if (end > v) out += "***";
        i = end;
    }
    return out;
}

}  // namespace poolbench
