// human.hpp — numbers for people, one way for every renderer (text, HTML, JUnit messages,
// compare): "1.78 M ops/s", "30.8 M", "3.14 s", "+4,470,000%". The JSON keeps raw numbers.
//
// Thread-safety: pure functions; reentrant.
#pragma once

#include <cstdint>
#include <string>

namespace poolbench::cli {

/// A duration given in microseconds: "80 ns", "812.0 µs", "1.234 ms", "3.140 s".
[[nodiscard]] std::string human_us(double us);
/// A rate: "950.0 ops/s", "46.8 k ops/s", "1.78 M ops/s" (the unit is appended).
[[nodiscard]] std::string human_rate(double per_s, const char* unit = "ops/s");
/// A count: exact with thousands separators up to 100,000 ("27,890"), then "1.25 M".
[[nodiscard]] std::string human_count(double n);
/// A plain number for a value or a limit: "0.25", "1,500", "4.7 M" (no exponents).
[[nodiscard]] std::string human_number(double v);
/// A change in percent: "+12.5%", "-3.0%", "+4,470,000%".
[[nodiscard]] std::string human_change_pct(double pct);

// Axis labels (html_chart): short, and exactly as precise as the axis' tick step, so that
// neighbouring ticks never print alike and never print noise ("1.5k", not "1.500e+03").
/// A number with an SI suffix: "0", "500", "1.5k", "46.8k", "1.2M", "0.25".
[[nodiscard]] std::string human_axis_number(double v, double step);
/// A duration given in microseconds: "0", "20 ns", "500 µs", "1.5 ms", "2 s".
[[nodiscard]] std::string human_axis_us(double us, double step);
/// A time since the start given in seconds: "0", "0.5 s", "20 s", "5 min", "1 h 30 min".
[[nodiscard]] std::string human_axis_seconds(double s, double step);

}  // namespace poolbench::cli
