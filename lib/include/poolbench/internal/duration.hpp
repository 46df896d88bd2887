// poolbench/internal/duration.hpp — the one duration grammar (internal: not a stable API),
// shared by the CLI (options, scenario files) and the PostgreSQL driver (statement_timeout=
// in a URL).
//
//   duration := digits [ "." digits ] unit
//   unit     := "ms" | "s" | "m" | "min" | "h"        (any letter case: 5S, 2MIN)
// e.g. 250ms, 1.5s, 10m, 2min, 1h. A fraction is rounded to whole milliseconds. At most
// 30 days. A bare number ("5000") is milliseconds where DurationRules::bare_number_is_ms
// says so (the PostgreSQL driver: as PostgreSQL reads statement_timeout), else an error.
//
// Thread-safety: a pure function; reentrant.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace poolbench::internal {

/// The longest duration the grammar accepts.
inline constexpr std::chrono::milliseconds max_duration{30LL * 24 * 3'600'000};

struct DurationRules {
    bool allow_zero = false;         ///< "0s" (or "0" with bare_number_is_ms) is accepted
    bool bare_number_is_ms = false;  ///< "250" means 250 ms; otherwise a unit is required
};

/// Parses `text` into `out` and returns "", or returns why it is not a duration (e.g.
/// "unknown unit 'x': use ms, s, m or h") and leaves `out` alone.
[[nodiscard]] std::string read_duration(std::string_view text, std::chrono::milliseconds& out, DurationRules rules);

}  // namespace poolbench::internal
