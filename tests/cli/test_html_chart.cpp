// test_html_chart.cpp — the HTML report's axis math and labels (src/html_chart.cpp and the
// axis formatters in src/human.cpp), tested directly.
#include "../../src/html_chart.hpp"
#include "../../src/human.hpp"

#include <catch2/catch.hpp>

#include <poolbench/histogram.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

using namespace poolbench::cli;

namespace {

std::vector<std::string> labels(const chart::Axis& a, chart::Format f) {
    std::vector<std::string> out;
    for (double t : a.ticks) out.push_back(chart::tick_label(t, a, f));
    return out;
}

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
    return n;
}

}  // namespace

TEST_CASE("html chart: nice steps are 1, 2 or 5 times a power of ten, at least span / target", "[html][chart]") {
    CHECK(chart::nice_step(10, 5) == Approx(2));
    CHECK(chart::nice_step(3.002, 8) == Approx(0.5));
    CHECK(chart::nice_step(46'800, 5) == Approx(10'000));
    CHECK(chart::nice_step(0.004, 4) == Approx(0.001));
    CHECK(chart::nice_step(1, 1) == Approx(1));
    CHECK(chart::nice_step(0, 5) == 1);  // no span: a step that still draws
    CHECK(chart::nice_step(std::nan(""), 5) == 1);
    for (double span : {0.0123, 0.7, 3.3, 17.0, 999.0, 1.25e6}) {
        const double step = chart::nice_step(span, 5);
        const double mantissa = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
        INFO(span << " -> " << step);
        CHECK((std::fabs(mantissa - 1) < 1e-9 || std::fabs(mantissa - 2) < 1e-9 || std::fabs(mantissa - 5) < 1e-9));
        CHECK(step * 5 >= span * (1 - 1e-9));
        CHECK(step / 2.5 * 5 < span * 1.0000001);  // the next smaller 1-2-5 step would not do
    }
}

TEST_CASE("html chart: a linear axis covers the data in whole steps, and labels say k and M", "[html][chart]") {
    const auto a = chart::linear_axis(0, 46'800, 5);
    CHECK(a.lo == 0);
    CHECK(a.hi == Approx(50'000));
    CHECK(a.step == Approx(10'000));
    CHECK(labels(a, chart::Format::number) == std::vector<std::string>{"0", "10k", "20k", "30k", "40k", "50k"});

    const auto b = chart::linear_axis(0, 1'700'000, 4);
    CHECK(labels(b, chart::Format::number) == std::vector<std::string>{"0", "500k", "1M", "1.5M", "2M"});

    const auto flat = chart::linear_axis(0, 0, 5);  // a chart of zeros still has an axis
    CHECK(flat.hi > flat.lo);
    CHECK(flat.ticks.size() >= 2);

    const auto small = chart::linear_axis(0, 0.034, 4);
    CHECK(labels(small, chart::Format::micros) ==
          std::vector<std::string>{"0", "10 ns", "20 ns", "30 ns", "40 ns"});
}

TEST_CASE("html chart: latency labels change unit at a thousand and never print noise", "[html][chart]") {
    const auto a = chart::linear_axis(0, 1'800, 4);  // µs
    CHECK(labels(a, chart::Format::micros) == std::vector<std::string>{"0", "500 µs", "1 ms", "1.5 ms", "2 ms"});
    CHECK(human_axis_us(1'200, 100) == "1.2 ms");
    CHECK(human_axis_us(0.05, 0.05) == "50 ns");
    CHECK(human_us(0.081) == "81 ns");
    CHECK(human_axis_us(2'500'000, 500'000) == "2.5 s");
    CHECK(human_axis_number(46'800, 100) == "46.8k");
    CHECK(human_axis_number(0.30000000000000004, 0.1) == "0.3");
    CHECK(human_axis_number(-0.0, 1) == "0");
}

TEST_CASE("html chart: time ticks are 1-2-5 seconds, then clock steps, and end with the run", "[html][chart]") {
    const auto short_run = chart::time_axis(3.002);
    CHECK(short_run.step == Approx(0.5));
    CHECK(short_run.hi == Approx(3.002));  // no empty stretch after the run
    CHECK(labels(short_run, chart::Format::seconds) ==
          std::vector<std::string>{"0", "0.5 s", "1 s", "1.5 s", "2 s", "2.5 s", "3 s"});

    CHECK(chart::time_axis(0.4).step == Approx(0.05));
    CHECK(chart::time_axis(90).step == Approx(20));

    const auto soak = chart::time_axis(3'600);
    CHECK(soak.step == Approx(600));
    CHECK(labels(soak, chart::Format::seconds) ==
          std::vector<std::string>{"0", "10 min", "20 min", "30 min", "40 min", "50 min", "1 h"});
    const auto day = chart::time_axis(5.5 * 3600);
    CHECK(day.step == Approx(3'600));
    CHECK(chart::tick_label(5'400, chart::time_axis(3 * 3600, 2), chart::Format::seconds) == "1 h 30 min");
    CHECK(chart::time_axis(0).hi > 0);
}

TEST_CASE("html chart: a log axis runs from 1-2-5 values around the data, decades only when wide", "[html][chart]") {
    const auto a = chart::log_axis(0.07, 3'000);  // µs: 70 ns to 3 ms
    CHECK(a.log);
    CHECK(a.lo == Approx(0.05));
    CHECK(a.hi == Approx(5'000));
    CHECK(labels(a, chart::Format::micros) ==
          std::vector<std::string>{"100 ns", "1 µs", "10 µs", "100 µs", "1 ms"});

    const auto narrow = chart::log_axis(30, 700);
    CHECK(labels(narrow, chart::Format::micros) ==
          std::vector<std::string>{"20 µs", "50 µs", "100 µs", "200 µs", "500 µs", "1 ms"});
    CHECK(narrow.lo == Approx(20));
}

TEST_CASE("html chart: a line chart draws every series, gaps for NaN, bands, and its frame", "[html][chart]") {
    chart::LineChart c{"chart-x", "Throughput <ops/s>", chart::Format::number, false, 10, {}, {}};
    c.series.push_back(chart::Series{"ok", "#0969da", {{1, 10}, {2, 20}, {3, std::nan("")}, {4, 40}}, false});
    c.bands.push_back(chart::Band{2, 5, "sqlite.lock", true});
    const std::string svg = chart::line_chart(c);
    CHECK(svg.rfind("<svg class=\"chart\" id=\"chart-x\"", 0) == 0);
    CHECK(svg.find("Throughput &lt;ops/s&gt;") != std::string::npos);  // escaped
    CHECK(count_of(svg, "<path class=\"series\"") == 1);
    CHECK(svg.find(" M") != std::string::npos);  // the NaN broke the line
    CHECK(count_of(svg, "<rect class=\"fault\"") == 1);
    CHECK(svg.find(std::string("fill=\"") + chart::plot_fill + "\"") != std::string::npos);
    CHECK(svg.find(std::string("stroke=\"") + chart::plot_frame + "\" shape-rendering=\"crispEdges\"/></svg>") !=
          std::string::npos);
    CHECK(svg.find("<script") == std::string::npos);

    chart::LineChart empty{"chart-e", "nothing", chart::Format::number, false, 1, {}, {}};
    empty.series.push_back(chart::Series{"p99", "#000", {{1, std::nan("")}}, false});
    CHECK(chart::line_chart(empty).empty());

    // Values spanning more than 100x go on a log scale when the chart allows it.
    chart::LineChart lat{"chart-l", "latency", chart::Format::micros, true, 3, {}, {}};
    lat.series.push_back(chart::Series{"p99", "#000", {{1, 50}, {2, 2'000'000}, {3, 60}}, false});
    CHECK(chart::line_chart(lat).find("log scale") != std::string::npos);
    lat.y_log_allowed = false;
    CHECK(chart::line_chart(lat).find("log scale") == std::string::npos);
}

TEST_CASE("html chart: a histogram draws one bar per non-empty bin", "[html][chart]") {
    chart::HistogramChart h{"chart-h", "latency", {}};
    h.sets.push_back(chart::Distribution{"op", "#0969da", {{1, 2, 5}, {2, 4, 0}, {4, 8, 7}}});
    const std::string svg = chart::histogram_chart(h);
    CHECK(count_of(svg, "fill-opacity=\"0.3\"") == 2);
    CHECK(svg.find("log scale") == std::string::npos);
    chart::HistogramChart none{"chart-n", "latency", {}};
    CHECK(chart::histogram_chart(none).empty());
}

TEST_CASE("html chart: the report's histogram bins count every value exactly, four per power of two",
          "[html][chart]") {
    poolbench::Histogram h;
    std::vector<std::uint64_t> values{0, 1, 2, 3, 4, 5, 7, 127, 128, 159, 160, 161, 1'000, 49'999, 50'000, 1'000'000'000};
    std::mt19937_64 rng(12);
    for (int i = 0; i < 2000; ++i) values.push_back(rng() % 50'000'000);
    for (auto v : values) h.record(v);
    const auto bins = histogram_bins_us(h);
    REQUIRE_FALSE(bins.empty());
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < bins.size(); ++i) {
        const auto& b = bins[i];
        INFO("bin " << b.lo_us << " - " << b.hi_us);
        CHECK(b.hi_us > b.lo_us);
        if (i > 0) CHECK(b.lo_us == bins[i - 1].hi_us);  // contiguous, empty bins kept
        if (b.lo_us >= 0.004) CHECK(b.hi_us / b.lo_us <= 1.25 + 1e-9);  // four per power of two
        std::uint64_t expected = 0;
        for (auto v : values) {
            const double us = static_cast<double>(v) / 1000.0;
            expected += us >= b.lo_us - 1e-12 && us < b.hi_us - 1e-12 ? 1 : 0;
        }
        CHECK(b.count == expected);
        total += b.count;
    }
    CHECK(total == values.size());
    CHECK(bins.front().count > 0);
    CHECK(bins.back().count > 0);
    CHECK(histogram_bins_us(poolbench::Histogram{}).empty());
}
