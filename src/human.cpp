// human.cpp — the one number formatter.
#include "human.hpp"

#include <fmt/format.h>

#include <cmath>

namespace poolbench::cli {

namespace {

/// "1,234,567" for a whole number.
std::string grouped(double v) {
    const bool negative = v < 0;
    std::string digits = fmt::format("{:.0f}", std::fabs(v));
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
        out.push_back(digits[i]);
    }
    return negative ? "-" + out : out;
}

}  // namespace

std::string human_us(double us) {
    if (us < 1000.0) return fmt::format("{:.1f} µs", us);
    if (us < 1'000'000.0) return fmt::format("{:.3f} ms", us / 1000.0);
    return fmt::format("{:.3f} s", us / 1'000'000.0);
}

std::string human_rate(double per_s, const char* unit) {
    if (per_s >= 1e9) return fmt::format("{:.3g} G {}", per_s / 1e9, unit);
    if (per_s >= 1e6) return fmt::format("{:.3g} M {}", per_s / 1e6, unit);
    if (per_s >= 1e4) return fmt::format("{:.3g} k {}", per_s / 1e3, unit);
    return fmt::format("{:.1f} {}", per_s, unit);
}

std::string human_count(double n) {
    if (!std::isfinite(n)) return "-";
    if (std::fabs(n) < 100'000) return grouped(n);
    if (std::fabs(n) < 1e9) return fmt::format("{:.3g} M", n / 1e6);
    return fmt::format("{:.3g} G", n / 1e9);
}

std::string human_number(double v) {
    if (!std::isfinite(v)) return "-";
    if (v == std::floor(v) && std::fabs(v) < 1e7) return grouped(v);
    if (std::fabs(v) >= 1e7) return human_count(v);
    if (std::fabs(v) >= 100) return fmt::format("{:.1f}", v);
    return fmt::format("{:.3g}", v);
}

std::string human_change_pct(double pct) {
    if (!std::isfinite(pct)) return "-";
    if (std::fabs(pct) >= 1000) return (pct > 0 ? "+" : "-") + grouped(std::fabs(pct)) + "%";
    return fmt::format("{:+.1f}%", pct);
}

}  // namespace poolbench::cli
