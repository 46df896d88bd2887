// duration.cpp — the one duration grammar (poolbench/internal/duration.hpp).
#include "poolbench/internal/duration.hpp"

#include <charconv>
#include <cmath>
#include <cstddef>
#include <system_error>

namespace poolbench::internal {

namespace {

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

/// Milliseconds in one `unit` (any letter case); 0 for an unknown unit.
std::int64_t unit_ms(std::string_view unit) noexcept {
    std::string lowered;
    for (const char c : unit) lowered.push_back(ascii_lower(c));
    if (lowered == "ms") return 1;
    if (lowered == "s") return 1000;
    if (lowered == "m" || lowered == "min") return 60'000;
    if (lowered == "h") return 3'600'000;
    return 0;
}

}  // namespace

std::string read_duration(std::string_view text, std::chrono::milliseconds& out, DurationRules rules) {
    std::size_t digits = 0;
    while (digits < text.size() && is_digit(text[digits])) ++digits;
    if (digits == 0) return "expected a number followed by ms, s, m or h";
    // An optional fraction: 1.5s, 0.25m (rounded to whole milliseconds).
    std::size_t end = digits;
    if (end < text.size() && text[end] == '.') {
        ++end;
        const std::size_t frac_start = end;
        while (end < text.size() && is_digit(text[end])) ++end;
        if (end == frac_start) return "expected digits after the decimal point";
    }
    const std::string_view unit = text.substr(end);
    std::int64_t scale = 0;
    if (unit.empty()) {
        if (!rules.bare_number_is_ms) return "missing unit: use ms, s, m or h";
        scale = 1;
    } else {
        scale = unit_ms(unit);
        if (scale == 0) return "unknown unit '" + std::string(unit) + "': use ms, s, m or h";
    }
    const std::int64_t max_ms = max_duration.count();
    std::int64_t value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, value);
    if (ec != std::errc{} || ptr != text.data() + digits || value > max_ms / scale) {
        return "longer than the 30-day maximum";
    }
    std::int64_t ms = value * scale;
    if (end > digits) {
        double fraction = 0;
        double place = 0.1;
        for (std::size_t i = digits + 1; i < end; ++i, place /= 10) fraction += (text[i] - '0') * place;
        ms += static_cast<std::int64_t>(std::llround(fraction * static_cast<double>(scale)));
        if (ms > max_ms) return "longer than the 30-day maximum";
    }
    if (ms == 0 && !rules.allow_zero) return "must be greater than zero";
    out = std::chrono::milliseconds{ms};
    return {};
}

}  // namespace poolbench::internal
