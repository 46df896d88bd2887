// The one duration grammar (poolbench/internal/duration.hpp), shared by the CLI and the
// PostgreSQL driver's statement_timeout=.
#include <poolbench/internal/duration.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

using namespace std::chrono_literals;
using poolbench::internal::DurationRules;
using poolbench::internal::read_duration;

namespace {

/// The milliseconds `text` reads as, or -1 with `why` set.
long long ms_of(const std::string& text, DurationRules rules, std::string* why = nullptr) {
    std::chrono::milliseconds out{-1};
    const std::string reason = read_duration(text, out, rules);
    if (why != nullptr) *why = reason;
    return reason.empty() ? out.count() : -1;
}

constexpr DurationRules cli{.allow_zero = false, .bare_number_is_ms = false};
constexpr DurationRules pg{.allow_zero = true, .bare_number_is_ms = true};

}  // namespace

TEST_CASE("durations: units in any case, fractions rounded to milliseconds", "[unit][duration]") {
    CHECK(ms_of("250ms", cli) == 250);
    CHECK(ms_of("30s", cli) == 30'000);
    CHECK(ms_of("10m", cli) == 600'000);
    CHECK(ms_of("2min", cli) == 120'000);
    CHECK(ms_of("1h", cli) == 3'600'000);
    CHECK(ms_of("1H", cli) == 3'600'000);
    CHECK(ms_of("5S", pg) == 5'000);
    CHECK(ms_of("2MIN", pg) == 120'000);
    CHECK(ms_of("1.5s", cli) == 1'500);
    CHECK(ms_of("0.25m", cli) == 15'000);
    CHECK(ms_of("1.0005s", cli) == 1'001);  // rounded to nearest
    CHECK(ms_of("720h", cli) == 2'592'000'000);  // exactly 30 days
}

TEST_CASE("durations: a bare number is milliseconds only where the rules say so", "[unit][duration]") {
    std::string why;
    CHECK(ms_of("250", pg) == 250);
    CHECK(ms_of("0", pg) == 0);
    CHECK(ms_of("250", cli, &why) == -1);
    CHECK(why == "missing unit: use ms, s, m or h");
}

TEST_CASE("durations: zero only where allowed", "[unit][duration]") {
    std::string why;
    CHECK(ms_of("0s", cli, &why) == -1);
    CHECK(why == "must be greater than zero");
    CHECK(ms_of("0s", {.allow_zero = true, .bare_number_is_ms = false}) == 0);
    CHECK(ms_of("0.0001s", cli, &why) == -1);  // rounds to 0 ms
    CHECK(why == "must be greater than zero");
}

TEST_CASE("durations: what is not a duration, and why", "[unit][duration]") {
    std::string why;
    for (const char* bad : {"", "ms", "-1s", "fast", ".5s"}) {
        INFO(bad);
        CHECK(ms_of(bad, pg, &why) == -1);
        CHECK(why == "expected a number followed by ms, s, m or h");
    }
    CHECK(ms_of("5x", pg, &why) == -1);
    CHECK(why == "unknown unit 'x': use ms, s, m or h");
    CHECK(ms_of("1d", pg, &why) == -1);
    CHECK(why == "unknown unit 'd': use ms, s, m or h");
    CHECK(ms_of("5parsecs", pg, &why) == -1);
    CHECK(ms_of("1.s", pg, &why) == -1);
    CHECK(why == "expected digits after the decimal point");
    for (const char* big : {"721h", "99999999999999h", "2592000001ms", "720.5h", "99999999999999999999999ms"}) {
        INFO(big);
        CHECK(ms_of(big, pg, &why) == -1);
        CHECK(why == "longer than the 30-day maximum");
    }
    std::chrono::milliseconds untouched{7};
    CHECK_FALSE(read_duration("bad", untouched, pg).empty());
    CHECK(untouched == 7ms);
}
