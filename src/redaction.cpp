// redaction.cpp — passwords out of every text poolbench prints: the URL's secrets found
// once, and scrubbed from any message that may echo them (a backend's error, CLI11's).
#include "redaction.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

namespace poolbench::cli {

namespace {

std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            const std::string hex(s.substr(i + 1, 2));
            char* end = nullptr;
            const long v = std::strtol(hex.c_str(), &end, 16);
            if (end == hex.c_str() + 2) {
                out.push_back(static_cast<char>(v));
                i += 2;
                continue;
            }
        }
        out.push_back(s[i]);
    }
    return out;
}

}  // namespace

std::vector<std::string> url_secrets(std::string_view url) {
    std::vector<std::string> out;
    auto add = [&](std::string_view secret) {
        if (secret.size() < 3) return;  // scrubbing one or two characters would mangle text
        for (std::string s : {std::string(secret), percent_decode(secret)}) {
            if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
        }
    };
    if (const auto scheme = url.find("://"); scheme != std::string_view::npos) {
        const std::string_view rest = url.substr(scheme + 3);
        const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
        if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
            const std::string_view userinfo = authority.substr(0, at);
            if (const auto colon = userinfo.find(':'); colon != std::string_view::npos) add(userinfo.substr(colon + 1));
        }
    }
    for (std::size_t pos = url.find("password="); pos != std::string_view::npos;
         pos = url.find("password=", pos + 1)) {
        const std::string_view value = url.substr(pos + 9);
        add(value.substr(0, value.find_first_of("& ")));
    }
    // SQLCipher's encryption keys: ?key=..., &hexkey=..., rekey, hexrekey.
    for (const std::string_view name : {"key=", "hexkey=", "rekey=", "hexrekey="}) {
        for (std::size_t pos = url.find(name); pos != std::string_view::npos; pos = url.find(name, pos + 1)) {
            if (pos == 0 || (url[pos - 1] != '?' && url[pos - 1] != '&')) continue;
            const std::string_view value = url.substr(pos + name.size());
            add(value.substr(0, value.find_first_of("& ")));
        }
    }
    return out;
}

std::string unusable_message(const DbUrl& db, std::string_view what) {
    const bool named = what.find(db.redacted) != std::string_view::npos;
    return scrub(named ? fmt::format("cannot use the database: {}", what)
                       : fmt::format("cannot use database {}: {}", db.redacted, what),
                 url_secrets(db.original));
}

std::string scrub(std::string text, const std::vector<std::string>& secrets) {
    for (const auto& secret : secrets) {
        for (std::size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3)) {
            text.replace(pos, secret.size(), "***");
        }
    }
    return text;
}

}  // namespace poolbench::cli
