// pg_text.cpp — text helpers of the PostgreSQL driver (see pg_text.hpp).
#include "pg_text.hpp"

namespace poolbench::internal::pg {

std::string one_line(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    bool space = false;
    for (const char c : s) {
        if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
            space = true;
            continue;
        }
        if (space && !out.empty()) out.push_back(' ');
        space = false;
        out.push_back(c);
    }
    return out;
}

void replace_all(std::string& s, std::string_view what, std::string_view with) {
    if (what.empty()) return;
    for (std::size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + with.size())) {
        s.replace(pos, what.size(), with);
    }
}

bool contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

/// The quoted text after `prefix` in `s` (prefix ends with the opening quote), or nullopt.
std::optional<std::string> quoted_after(std::string_view s, std::string_view prefix) {
    const std::size_t at = s.find(prefix);
    if (at == std::string_view::npos) return std::nullopt;
    const std::size_t start = at + prefix.size();
    const std::size_t end = s.find('"', start);
    if (end == std::string_view::npos) return std::nullopt;
    return std::string(s.substr(start, end - start));
}

std::string scrub_secrets(std::string message, const std::vector<std::string>& secrets) {
    for (const auto& s : secrets) {
        if (s.size() >= min_scrubbed_password) replace_all(message, s, "***");
    }
    return message;
}

}  // namespace poolbench::internal::pg
