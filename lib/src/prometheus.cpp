// prometheus.cpp — PoolStats in the Prometheus text exposition format 0.0.4
// (prometheus.hpp lists the families and the histogram boundaries).
#include "poolbench/prometheus.hpp"

#include <array>
#include <charconv>
#include <cmath>

namespace poolbench::prometheus {

namespace {

/// The round figures the boundaries stand for: 1-2-5 from 1 µs to 10 s, in ns.
constexpr std::array<std::uint64_t, 22> round_figures_ns{
    1'000,       2'000,       5'000,       10'000,        20'000,        50'000,        100'000,      200'000,
    500'000,     1'000'000,   2'000'000,   5'000'000,     10'000'000,    20'000'000,    50'000'000,   100'000'000,
    200'000'000, 500'000'000, 1'000'000'000, 2'000'000'000, 5'000'000'000, 10'000'000'000};

std::array<std::uint64_t, round_figures_ns.size()> make_bounds() {
    std::array<std::uint64_t, round_figures_ns.size()> out{};
    for (std::size_t i = 0; i < out.size(); ++i) {
        // The bucket holding T starts at or below T: the one before it ends just below T.
        out[i] = Histogram::bucket_low(Histogram::bucket_of(round_figures_ns[i])) - 1;
    }
    return out;
}

void append_u64(std::string& out, std::uint64_t v) {
    std::array<char, 24> buffer{};
    const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), v);
    (void)ec;  // 24 characters hold any uint64
    out.append(buffer.data(), end);
}

/// `name{pool="P"[,extra]} value\n`
void append_sample(std::string& out, std::string_view name, std::string_view pool, std::string_view extra,
                   std::string_view value) {
    out += name;
    out += "{pool=\"";
    out += escape_label_value(pool);
    out += '"';
    if (!extra.empty()) {
        out += ',';
        out += extra;
    }
    out += "} ";
    out += value;
    out += '\n';
}

std::string u64_text(std::uint64_t v) {
    std::string s;
    append_u64(s, v);
    return s;
}

void append_gauges(std::string& out, std::span<const NamedStats> pools) {
    struct Gauge {
        std::string_view name, help;
        std::size_t PoolStats::*field;
    };
    static constexpr std::array<Gauge, 6> gauges{{
        {"poolbench_connections", "Open connections plus those being opened", &PoolStats::total},
        {"poolbench_connections_active", "Connections leased", &PoolStats::active},
        {"poolbench_connections_idle", "Open connections not leased", &PoolStats::idle},
        {"poolbench_connections_pending", "Threads waiting for a connection", &PoolStats::waiting},
        {"poolbench_connections_max", "The pool's maximum size", &PoolStats::max_size},
        {"poolbench_connections_min", "Idle connections the pool keeps open (min_idle)", &PoolStats::min_idle},
    }};
    for (const auto& g : gauges) {
        append_family(out, g.name, "gauge", g.help);
        for (const auto& p : pools) append_sample(out, g.name, p.name, {}, u64_text(p.stats.*g.field));
    }
}

void append_counters(std::string& out, std::span<const NamedStats> pools) {
    append_family(out, "poolbench_connections_timeout_total", "counter",
                  "Acquires that gave up at their deadline");
    for (const auto& p : pools) append_sample(out, "poolbench_connections_timeout_total", p.name, {}, u64_text(p.stats.timeouts));
    append_family(out, "poolbench_connections_created_total", "counter", "Connections opened");
    for (const auto& p : pools) append_sample(out, "poolbench_connections_created_total", p.name, {}, u64_text(p.stats.created));
    append_family(out, "poolbench_connections_destroyed_total", "counter", "Connections closed, by reason");
    for (const auto& p : pools) {
        for (std::size_t r = 0; r < destroy_reason_count; ++r) {
            const std::string reason =
                "reason=\"" + escape_label_value(to_string(static_cast<DestroyReason>(r))) + "\"";
            append_sample(out, "poolbench_connections_destroyed_total", p.name, reason,
                          u64_text(p.stats.destroyed_by_reason[r]));
        }
    }
}

void append_histogram(std::string& out, std::string_view name, std::string_view help,
                      std::span<const NamedStats> pools, const Histogram PoolStats::*field) {
    append_family(out, name, "histogram", help);
    const auto bounds = bucket_bounds_ns();
    const std::string bucket = std::string(name) + "_bucket";
    for (const auto& p : pools) {
        const Histogram& h = p.stats.*field;
        std::uint64_t cumulative = 0;
        std::size_t next_bucket = 0;
        for (const std::uint64_t bound : bounds) {
            const std::size_t last = Histogram::bucket_of(bound);  // bound is this bucket's last value
            for (; next_bucket <= last; ++next_bucket) cumulative += h.count_in(next_bucket);
            append_sample(out, bucket, p.name, "le=\"" + seconds_text(bound) + "\"", u64_text(cumulative));
        }
        append_sample(out, bucket, p.name, "le=\"+Inf\"", u64_text(h.count()));
        append_sample(out, std::string(name) + "_sum", p.name, {}, format_value(h.sum() / 1e9));
        append_sample(out, std::string(name) + "_count", p.name, {}, u64_text(h.count()));
    }
}

}  // namespace

std::span<const std::uint64_t> bucket_bounds_ns() noexcept {
    static const auto bounds = make_bounds();
    return bounds;
}

void append_family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    for (const char c : help) {  // HELP text escapes backslash and line feed only
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string format_value(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    std::array<char, 32> buffer{};
    const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
    (void)ec;  // 32 characters hold any double's shortest form
    return {buffer.data(), end};
}

std::string seconds_text(std::uint64_t ns) {
    std::string out;
    append_u64(out, ns / 1'000'000'000);
    std::uint64_t frac = ns % 1'000'000'000;
    if (frac == 0) return out;
    std::array<char, 10> digits{};
    for (int i = 8; i >= 0; --i) {
        digits[static_cast<std::size_t>(i)] = static_cast<char>('0' + frac % 10);
        frac /= 10;
    }
    std::size_t n = 9;
    while (digits[n - 1] == '0') --n;
    out += '.';
    out.append(digits.data(), n);
    return out;
}

void append_pools(std::string& out, std::span<const NamedStats> pools) {
    append_gauges(out, pools);
    append_counters(out, pools);
    append_histogram(out, "poolbench_connections_acquire_seconds",
                     "Time from acquire() to a lease in hand, in seconds", pools, &PoolStats::acquire_wait);
    append_histogram(out, "poolbench_connections_usage_seconds", "Time a lease was held, in seconds", pools,
                     &PoolStats::usage);
    append_histogram(out, "poolbench_connections_creation_seconds", "Time to open one connection, in seconds",
                     pools, &PoolStats::connect);
}

std::string render(const PoolStats& stats, std::string_view pool_name) {
    std::string out;
    const NamedStats one{pool_name, stats};
    append_pools(out, std::span<const NamedStats>(&one, 1));
    return out;
}

}  // namespace poolbench::prometheus
