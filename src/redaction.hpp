// redaction.hpp — one place that keeps passwords out of output. URLs are printed as
// DbUrl::redacted (lib's redact_url); any other text that may echo a password (a backend's
// error message, a command line) is scrubbed of the URL's secrets here.
//
// Thread-safety: pure functions; reentrant.
#pragma once

#include <poolbench/url.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace poolbench::cli {

/// The secrets of a URL (password as written and percent-decoded) to scrub from any
/// text that may echo it, such as a backend's error message.
[[nodiscard]] std::vector<std::string> url_secrets(std::string_view url);
[[nodiscard]] std::string scrub(std::string text, const std::vector<std::string>& secrets);

/// "cannot use database URL: WHAT", redacted and scrubbed, naming the URL once: when the
/// backend's message already names it, it is not repeated in front.
[[nodiscard]] std::string unusable_message(const DbUrl& db, std::string_view what);

}  // namespace poolbench::cli
