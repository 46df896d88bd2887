// The Prometheus exposition of PoolStats: names, labels, escaping, and histogram buckets
// that count exactly what the pool's histogram holds.
#include <poolbench/prometheus.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace prom = poolbench::prometheus;
using poolbench::Histogram;
using poolbench::PoolStats;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

/// The value of the one sample line that starts with `series` followed by a space.
std::string value_of(const std::string& text, const std::string& series) {
    std::string found;
    int hits = 0;
    for (const auto& line : lines_of(text)) {
        if (line.rfind(series + " ", 0) == 0) {
            found = line.substr(series.size() + 1);
            ++hits;
        }
    }
    INFO("series " << series);
    REQUIRE(hits == 1);
    return found;
}

}  // namespace

TEST_CASE("prometheus: the le boundaries are bucket ends just below 1-2-5 figures from 1us to 10s", "[unit]") {
    const auto bounds = prom::bucket_bounds_ns();
    REQUIRE(bounds.size() == 22);
    CHECK(std::is_sorted(bounds.begin(), bounds.end()));
    std::uint64_t figure = 1'000;
    for (std::size_t i = 0; i < bounds.size(); ++i) {
        const std::uint64_t target = (i % 3 == 0 ? 1 : i % 3 == 1 ? 2 : 5) * figure;
        if (i % 3 == 2) figure *= 10;
        INFO("bound " << i << " = " << bounds[i] << " ns, figure " << target);
        // The last value of a bucket (so a cumulative count is exact), below the figure by
        // less than one bucket's width (0.8%).
        CHECK(Histogram::bucket_high(Histogram::bucket_of(bounds[i])) == bounds[i]);
        CHECK(bounds[i] < target);
        CHECK(Histogram::bucket_of(bounds[i] + 1) == Histogram::bucket_of(target));
        CHECK(static_cast<double>(target - bounds[i]) <= 0.004 * static_cast<double>(target) + 1);
    }
    CHECK(bounds.front() == 999);
    CHECK(bounds.back() == 9'999'220'735);
    // The table in prometheus.hpp.
    CHECK(prom::seconds_text(bounds[2]) == "0.000004991");
    CHECK(prom::seconds_text(bounds[9]) == "0.000999423");
    CHECK(prom::seconds_text(bounds[18]) == "0.998244351");
    CHECK(prom::seconds_text(bounds[21]) == "9.999220735");
}

TEST_CASE("prometheus: numbers and label values are written as the format says", "[unit]") {
    CHECK(prom::seconds_text(0) == "0");
    CHECK(prom::seconds_text(1'500'000'000) == "1.5");
    CHECK(prom::seconds_text(999) == "0.000000999");
    CHECK(prom::format_value(0.25) == "0.25");
    CHECK(prom::format_value(3) == "3");
    CHECK(prom::format_value(1e-7) == "1e-07");
    CHECK(prom::format_value(std::numeric_limits<double>::quiet_NaN()) == "NaN");
    CHECK(prom::format_value(std::numeric_limits<double>::infinity()) == "+Inf");
    CHECK(prom::format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
    CHECK(prom::escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
    std::string out;
    prom::append_family(out, "x_total", "counter", "a \\ b\nc \"q\"");
    CHECK(out == "# HELP x_total a \\\\ b\\nc \"q\"\n# TYPE x_total counter\n");
}

TEST_CASE("prometheus: a pool's gauges and counters under HikariCP's names", "[unit]") {
    PoolStats s;
    s.total = 7;
    s.active = 4;
    s.idle = 2;
    s.pending = 1;  // a connection being opened: not HikariCP's pending
    s.waiting = 9;  // threads waiting: HikariCP's pending
    s.max_size = 10;
    s.min_idle = 2;
    s.timeouts = 3;
    s.created = 12;
    s.destroyed_by_reason[static_cast<std::size_t>(poolbench::DestroyReason::broken)] = 4;
    s.destroyed_by_reason[static_cast<std::size_t>(poolbench::DestroyReason::shutdown)] = 1;
    s.destroyed = 5;
    const std::string text = prom::render(s, "main \"db\"");
    INFO(text);
    const std::string pool = "{pool=\"main \\\"db\\\"\"}";
    CHECK(value_of(text, "poolbench_connections" + pool) == "7");
    CHECK(value_of(text, "poolbench_connections_active" + pool) == "4");
    CHECK(value_of(text, "poolbench_connections_idle" + pool) == "2");
    CHECK(value_of(text, "poolbench_connections_pending" + pool) == "9");
    CHECK(value_of(text, "poolbench_connections_max" + pool) == "10");
    CHECK(value_of(text, "poolbench_connections_min" + pool) == "2");
    CHECK(value_of(text, "poolbench_connections_timeout_total" + pool) == "3");
    CHECK(value_of(text, "poolbench_connections_created_total" + pool) == "12");
    const std::string p = "{pool=\"main \\\"db\\\"\",";
    CHECK(value_of(text, "poolbench_connections_destroyed_total" + p + "reason=\"broken\"}") == "4");
    CHECK(value_of(text, "poolbench_connections_destroyed_total" + p + "reason=\"shutdown\"}") == "1");
    CHECK(value_of(text, "poolbench_connections_destroyed_total" + p + "reason=\"revoked\"}") == "0");

    // Each family once, HELP then TYPE, before its samples; counters end in _total.
    std::map<std::string, int> types;
    std::string last_help;
    for (const auto& line : lines_of(text)) {
        if (line.rfind("# HELP ", 0) == 0) {
            last_help = line.substr(7, line.find(' ', 7) - 7);
        } else if (line.rfind("# TYPE ", 0) == 0) {
            const std::string name = line.substr(7, line.find(' ', 7) - 7);
            const std::string type = line.substr(line.rfind(' ') + 1);
            CHECK(name == last_help);
            CHECK(++types[name] == 1);
            if (type == "counter") CHECK(name.size() > 6);
            if (type == "counter") CHECK(name.substr(name.size() - 6) == "_total");
        } else {
            CHECK(line.find("{pool=\"") != std::string::npos);
        }
    }
    CHECK(types.size() == 12);
}

TEST_CASE("prometheus: histogram buckets count exactly the values at or below each le", "[unit]") {
    std::mt19937_64 rng(7);
    std::lognormal_distribution<double> dist(13.0, 3.0);  // ns from tens to billions
    std::vector<std::uint64_t> values;
    PoolStats s;
    for (int i = 0; i < 100'000; ++i) values.push_back(static_cast<std::uint64_t>(dist(rng)));
    // Values on each side of every boundary, where an inexact bucket would miscount.
    for (const auto b : prom::bucket_bounds_ns()) {
        values.push_back(b);
        values.push_back(b + 1);
    }
    for (const auto v : values) s.acquire_wait.record(v);
    s.usage.record(1'500'000);
    const std::string text = prom::render(s, "p");
    INFO(text.substr(0, 2000));

    for (const auto b : prom::bucket_bounds_ns()) {
        const auto expected = std::count_if(values.begin(), values.end(), [b](std::uint64_t v) { return v <= b; });
        const std::string series =
            "poolbench_connections_acquire_seconds_bucket{pool=\"p\",le=\"" + prom::seconds_text(b) + "\"}";
        CHECK(value_of(text, series) == std::to_string(expected));
    }
    const std::string count = std::to_string(values.size());
    CHECK(value_of(text, "poolbench_connections_acquire_seconds_bucket{pool=\"p\",le=\"+Inf\"}") == count);
    CHECK(value_of(text, "poolbench_connections_acquire_seconds_count{pool=\"p\"}") == count);
    double sum = 0;
    for (const auto v : values) sum += static_cast<double>(v);
    CHECK(std::strtod(value_of(text, "poolbench_connections_acquire_seconds_sum{pool=\"p\"}").c_str(), nullptr) ==
          Approx(sum / 1e9).epsilon(1e-9));

    CHECK(value_of(text, "poolbench_connections_usage_seconds_sum{pool=\"p\"}") == "0.0015");
    CHECK(value_of(text, "poolbench_connections_usage_seconds_bucket{pool=\"p\",le=\"0.001998847\"}") == "1");
    CHECK(value_of(text, "poolbench_connections_usage_seconds_bucket{pool=\"p\",le=\"0.000999423\"}") == "0");
    CHECK(value_of(text, "poolbench_connections_creation_seconds_count{pool=\"p\"}") == "0");
    CHECK(value_of(text, "poolbench_connections_creation_seconds_bucket{pool=\"p\",le=\"+Inf\"}") == "0");
}

TEST_CASE("prometheus: several pools share each family's HELP and TYPE", "[unit]") {
    PoolStats a, b;
    a.active = 1;
    b.active = 2;
    const prom::NamedStats pools[] = {{"primary", a}, {"replica", b}};
    std::string text;
    prom::append_pools(text, pools);
    INFO(text);
    CHECK(value_of(text, "poolbench_connections_active{pool=\"primary\"}") == "1");
    CHECK(value_of(text, "poolbench_connections_active{pool=\"replica\"}") == "2");
    const auto lines = lines_of(text);
    CHECK(std::count(lines.begin(), lines.end(), "# TYPE poolbench_connections_active gauge") == 1);
    // Both pools' samples directly after the family's TYPE line.
    const auto at = std::find(lines.begin(), lines.end(), "# TYPE poolbench_connections_active gauge");
    REQUIRE(std::distance(at, lines.end()) > 2);
    CHECK(at[1].rfind("poolbench_connections_active{pool=\"primary\"}", 0) == 0);
    CHECK(at[2].rfind("poolbench_connections_active{pool=\"replica\"}", 0) == 0);
}
