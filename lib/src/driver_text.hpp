// driver_text.hpp — small text helpers every built-in driver uses (not installed):
// SQL excerpts for error messages, ASCII lower-casing, a transparent string hash, and
// the check of a URL option against its accepted values.
//
// Thread-safety: pure functions; reentrant.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace poolbench::internal {

/// How much of a statement an error message quotes.
inline constexpr std::size_t sql_excerpt_chars = 120;

/// The first sql_excerpt_chars bytes of `sql` on one line (newlines and tabs become
/// spaces), with "..." when cut; never cuts a UTF-8 sequence in half.
inline std::string sql_excerpt(std::string_view sql) {
    std::size_t n = std::min(sql.size(), sql_excerpt_chars);
    while (n < sql.size() && n > 0 && (static_cast<unsigned char>(sql[n]) & 0xC0) == 0x80) --n;
    std::string out(sql.substr(0, n));
    for (char& c : out) {
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    }
    if (n < sql.size()) out += "...";
    return out;
}

/// `s` with ASCII A-Z lowered (other bytes, including UTF-8, unchanged; no locale).
inline std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

/// Hashes std::string and std::string_view alike, so an unordered_map keyed by
/// std::string (with std::equal_to<>) is looked up by string_view without a copy.
struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

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

}  // namespace poolbench::internal
