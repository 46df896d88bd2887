// pg_text.hpp — text helpers of the PostgreSQL driver (not installed): libpq messages on
// one line, substring replacement and search, quoted names in libpq messages, and the
// scrubbing of passwords out of every message.
//
// Thread-safety: pure functions; reentrant.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace poolbench::internal::pg {

/// Passwords shorter than this are not scrubbed from messages character runs: doing so
/// would mangle ordinary words, and such a password is guessable anyway.
inline constexpr std::size_t min_scrubbed_password = 3;

/// libpq messages span lines ("...failed: FATAL:  x\n\tHINT..."); make them one line.
[[nodiscard]] std::string one_line(std::string_view s);

/// Replaces every `what` in `s` with `with` (nothing when `what` is empty).
void replace_all(std::string& s, std::string_view what, std::string_view with);

[[nodiscard]] bool contains(std::string_view s, std::string_view what);

/// The quoted text after `prefix` in `s` (prefix ends with the opening quote), or nullopt.
[[nodiscard]] std::optional<std::string> quoted_after(std::string_view s, std::string_view prefix);

/// `message` with every password in `secrets` (those of at least min_scrubbed_password
/// characters) replaced by "***".
[[nodiscard]] std::string scrub_secrets(std::string message, const std::vector<std::string>& secrets);

}  // namespace poolbench::internal::pg
