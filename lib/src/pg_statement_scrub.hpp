// pg_statement_scrub.hpp — statement texts from pg_stat_activity made safe to print:
// when a statement mentions a password anywhere, nothing quoted in it is kept.
//
// Thread-safety: pure functions (no shared state).
#pragma once

#include <cstddef>
#include <string>

namespace poolbench::internal {

/// `sql` unchanged when it does not contain "password" (any case). Otherwise every string
/// constant ('..' with '' doubled, E'..' with backslash escapes, U&'..'), every
/// dollar-quoted body ($$..$$, $tag$..$tag$) and every comment (-- and nested /* */) is
/// replaced by '***' (a comment by /***/), and every password=VALUE / password:VALUE
/// token left outside them is cut to password=***. An unterminated constant or comment
/// (the server cuts statements at track_activity_query_size) is replaced to the end.
[[nodiscard]] std::string scrub_statement(const std::string& sql);

/// `s` cut to at most `chars` bytes on a UTF-8 character boundary, with "..." when cut.
[[nodiscard]] std::string cut_statement(const std::string& s, std::size_t chars);

}  // namespace poolbench::internal
