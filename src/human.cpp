// human.cpp — the one number formatter.
#include "human.hpp"

#include <fmt/format.h>

#include <algorithm>
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

/// `v` with as many decimals as `step` needs (both in the same unit), trailing zeros dropped.
std::string to_step(double v, double step) {
    int decimals = 0;
    if (step > 0 && std::isfinite(step)) {
        decimals = std::clamp(static_cast<int>(std::ceil(-std::log10(step) - 1e-9)), 0, 6);
    }
    std::string text = fmt::format("{:.{}f}", v, decimals);
    if (text.find('.') != std::string::npos) {
        while (text.back() == '0') text.pop_back();
        if (text.back() == '.') text.pop_back();
    }
    return text == "-0" ? "0" : text;
}

}  // namespace

std::string human_axis_number(double v, double step) {
    if (!std::isfinite(v)) return "-";
    if (v == 0) return "0";
    const double a = std::fabs(v);
    if (a >= 1e9) return to_step(v / 1e9, step / 1e9) + "G";
    if (a >= 1e6) return to_step(v / 1e6, step / 1e6) + "M";
    if (a >= 1e3) return to_step(v / 1e3, step / 1e3) + "k";
    return to_step(v, step);
}

std::string human_axis_us(double us, double step) {
    if (!std::isfinite(us)) return "-";
    if (us == 0) return "0";
    const double a = std::fabs(us);
    if (a >= 1e6) return to_step(us / 1e6, step / 1e6) + " s";
    if (a >= 1e3) return to_step(us / 1e3, step / 1e3) + " ms";
    if (a < 1) return to_step(us * 1e3, step * 1e3) + " ns";
    return to_step(us, step) + " µs";
}

std::string human_axis_seconds(double s, double step) {
    if (!std::isfinite(s)) return "-";
    if (s == 0) return "0";
    if (step < 60 || std::fabs(s) < 60) return to_step(s, step) + " s";
    const auto minutes = static_cast<long long>(std::llround(s / 60));
    if (minutes % 60 == 0) return fmt::format("{} h", minutes / 60);
    if (minutes > 60) return fmt::format("{} h {} min", minutes / 60, minutes % 60);
    return fmt::format("{} min", minutes);
}

std::string human_us(double us) {
    if (us > 0 && us < 1.0) return fmt::format("{:.0f} ns", us * 1000.0);
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
