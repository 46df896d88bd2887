// sqlite_options.cpp — the checks of an SQLite URL's options (see sqlite_options.hpp).
#include "sqlite_options.hpp"

#include "driver_text.hpp"
#include "sqlite_connection.hpp"
#include "poolbench/error.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>
#include <functional>
#include <set>
#include <string_view>
#include <utility>

namespace poolbench::internal::sqlite {

namespace {

bool is_identifier(std::string_view s) noexcept {
    if (s.empty()) return false;
    const auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
    if (!alpha(s.front())) return false;
    return std::all_of(s.begin(), s.end(), [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); });
}

bool is_pragma_value(std::string_view s) noexcept {
    if (s.empty()) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == '-';
    });
}

/// The names SQLite accepts after PRAGMA, or an empty set if it cannot list them.
std::set<std::string, std::less<>> known_pragmas() {
    std::set<std::string, std::less<>> names;
    int rc = SQLITE_OK;
    std::string message;
    DbPtr db = open_db(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, rc, message);
    if (rc != SQLITE_OK) return names;
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db.get(), "PRAGMA pragma_list", -1, &raw, nullptr) != SQLITE_OK) return names;
    const StmtPtr stmt(raw);
    while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
        if (text != nullptr) names.emplace(text);
    }
    return names;
}

}  // namespace

SqliteOptions parse_sqlite_options(const DbUrl& url, const std::string& describe) {
    SqliteOptions out;
    std::set<std::string, std::less<>> known;
    for (const auto& [name, value] : url.params) {
        const std::string key = lower(name);
        if (key == "busy_timeout") {
            int ms = -1;
            const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
            if (value.empty() || ec != std::errc() || ptr != value.data() + value.size() || ms < 0) {
                throw ConfigError("SQLite option busy_timeout='" + value + "' in '" + describe +
                                  "' must be a whole number of milliseconds from 0 to " +
                                  std::to_string(INT_MAX));
            }
            out.busy_timeout_ms = ms;
            continue;
        }
        if (key == "mode") {
            if (lower(value) != "ro" && lower(value) != "rw") {
                throw ConfigError("SQLite option mode='" + value + "' in '" + describe +
                                  "' must be ro (read-only) or rw");
            }
            out.read_only = lower(value) == "ro";
            continue;
        }
        if (key == "immutable") {
            if (value != "0" && value != "1") {
                throw ConfigError("SQLite option immutable='" + value + "' in '" + describe + "' must be 0 or 1");
            }
            out.immutable = value == "1";
            continue;
        }
        if (!is_identifier(name)) {
            throw ConfigError("SQLite option '" + name + "' in '" + describe +
                              "' is not a PRAGMA name (letters, digits and '_', not starting with a digit)");
        }
        if (known.empty()) known = known_pragmas();
        if (!known.empty() && known.find(key) == known.end()) {
            throw ConfigError("SQLite option '" + name + "' in '" + describe +
                              "' is not a PRAGMA this SQLite knows (see https://sqlite.org/pragma.html)");
        }
        if (!is_pragma_value(value)) {
            throw ConfigError("SQLite option " + name + "='" + value + "' in '" + describe +
                              "' has a value SQLite options cannot take (allowed: letters, digits, '_', '.', '-')");
        }
        // SQLite ignores a value it does not know for these (journal_mode=bogus leaves the
        // mode as it was), so the URL would silently not mean what it says.
        static const std::array<std::pair<std::string_view, std::string_view>, 4> choices{{
            {"journal_mode", "delete truncate persist memory wal off"},
            {"synchronous", "off normal full extra 0 1 2 3"},
            {"locking_mode", "normal exclusive"},
            {"temp_store", "default file memory 0 1 2"},
        }};
        for (const auto& [pragma, values] : choices) {
            if (key != pragma || one_of(lower(value), values)) continue;
            throw ConfigError("SQLite option " + name + "='" + value + "' in '" + describe + "' is not one of " +
                              comma_list(values));
        }
        if (key == "journal_mode") {
            out.journal_from_url = true;
            out.journal_asked = lower(value);
        }
        out.pragmas.push_back("PRAGMA " + name + "=" + value);
    }
    return out;
}

}  // namespace poolbench::internal::sqlite
