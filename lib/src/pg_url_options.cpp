// pg_url_options.cpp — the checks of a PostgreSQL URL's parameters (see pg_url_options.hpp).
#include "pg_url_options.hpp"

#include "driver_text.hpp"
#include "poolbench/error.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace poolbench::internal::pg {

void check_libpq_value(const std::string& name, const std::string& value, const std::string& redacted) {
    struct Choice {
        std::string_view name;
        std::string_view values;  // space-separated
    };
    static constexpr std::array<Choice, 4> choices{{
        {"sslmode", "disable allow prefer require verify-ca verify-full"},
        {"gssencmode", "disable prefer require"},
        {"channel_binding", "disable prefer require"},
        {"target_session_attrs", "any read-write read-only primary standby prefer-standby"},
    }};
    for (const auto& c : choices) {
        if (name != c.name) continue;
        if (one_of(value, c.values)) return;
        throw ConfigError("invalid " + name + " '" + value + "' in PostgreSQL URL '" + redacted + "': use one of " +
                          comma_list(c.values));
    }
    static constexpr std::array<std::string_view, 6> integers{
        "connect_timeout", "port", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"};
    if (std::find(integers.begin(), integers.end(), name) == integers.end()) return;
    // port may list one port per host: 5432,5433.
    std::string_view rest = value;
    bool ok = !rest.empty();
    while (ok && !rest.empty()) {
        const auto comma = name == "port" ? rest.find(',') : std::string_view::npos;
        const std::string_view item = rest.substr(0, comma);
        long long n = -1;
        const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), n);
        ok = !item.empty() && ec == std::errc() && ptr == item.data() + item.size() && n >= 0 &&
             (name != "port" || (n >= 1 && n <= 65535));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
    if (!ok) {
        throw ConfigError("invalid " + name + " '" + value + "' in PostgreSQL URL '" + redacted + "': " +
                          (name == "port" ? "use a port number from 1 to 65535"
                                          : "use a whole number (connect_timeout and keepalives_* are seconds)"));
    }
}

bool matches_sqlstate(std::string_view code, const std::vector<std::string>& rule) noexcept {
    for (const auto& r : rule) {
        if (r.size() == 2 ? code.substr(0, 2) == r : code == r) return true;
    }
    return false;
}

std::vector<std::string> parse_sqlstate_rule(std::string_view text, const std::string& redacted) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = text.find(',', start);
        const std::string_view item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        const bool ok = (item.size() == 2 || item.size() == 5) &&
                        std::all_of(item.begin(), item.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
        if (!ok) {
            throw ConfigError("invalid broken_sqlstates entry '" + std::string(item) + "' in PostgreSQL URL '" + redacted +
                              "': use a comma-separated list of SQLSTATE classes (08) and codes (57P01)");
        }
        out.emplace_back(item);
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
}

PrepareMode parse_prepare_mode(std::string_view value, const std::string& redacted) {
    if (value == "on") return PrepareMode::on;
    if (value == "off") return PrepareMode::off;
    if (value == "auto") return PrepareMode::automatic;
    throw ConfigError("invalid prepare '" + std::string(value) + "' in PostgreSQL URL '" + redacted +
                      "': use on (named prepared statements, reused per connection), off (unnamed: parsed with every "
                      "call, as PgBouncer's transaction pooling needs) or auto (off when a pooler is found, the "
                      "default)");
}

std::string base_url(std::string_view conninfo) {
    const std::size_t scheme_end = conninfo.find("://");
    if (scheme_end == std::string_view::npos) return std::string(conninfo);
    std::size_t p = scheme_end + 3;
    std::size_t q = p;
    while (q < conninfo.size() && conninfo[q] != '@' && conninfo[q] != '/') ++q;
    if (q < conninfo.size() && conninfo[q] == '@') p = q + 1;
    const std::size_t query = conninfo.find('?', p);
    return std::string(conninfo.substr(0, query));
}

std::string raw_password(std::string_view conninfo) {
    const std::size_t scheme_end = conninfo.find("://");
    if (scheme_end == std::string_view::npos) return {};
    const std::size_t p = scheme_end + 3;
    std::size_t q = p;
    while (q < conninfo.size() && conninfo[q] != '@' && conninfo[q] != '/') ++q;
    if (q >= conninfo.size() || conninfo[q] != '@') return {};
    const std::string_view userinfo = conninfo.substr(p, q - p);
    const std::size_t colon = userinfo.find(':');
    return colon == std::string_view::npos ? std::string() : std::string(userinfo.substr(colon + 1));
}

std::set<std::string, std::less<>> libpq_keywords() {
    std::set<std::string, std::less<>> names;
    const ConninfoPtr defaults(PQconndefaults());
    if (!defaults) return names;
    for (const PQconninfoOption* o = defaults.get(); o->keyword != nullptr; ++o) names.emplace(o->keyword);
    return names;
}

}  // namespace poolbench::internal::pg
