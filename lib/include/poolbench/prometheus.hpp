// poolbench/prometheus.hpp — a pool's statistics (Pool::stats()) in the Prometheus text
// exposition format, version 0.0.4, under the names HikariCP's Prometheus tracker uses
// (hikaricp_connections_active → poolbench_connections_active), so an existing dashboard
// needs only its prefix changed. Every series is labelled pool="NAME".
//
//   poolbench_connections                   gauge      open connections plus those being opened (total)
//   poolbench_connections_active            gauge      leased
//   poolbench_connections_idle              gauge      open and not leased
//   poolbench_connections_pending           gauge      threads waiting in acquire() (PoolStats::waiting;
//                                                      HikariCP's "pending", not connections being opened)
//   poolbench_connections_max               gauge      max_size
//   poolbench_connections_min               gauge      min_idle
//   poolbench_connections_timeout_total     counter    acquires that gave up at their deadline
//   poolbench_connections_created_total     counter    connections opened
//   poolbench_connections_destroyed_total   counter    connections closed, by reason="broken|validation|
//                                                      reset|idle|lifetime|shutdown|surplus|evicted|revoked"
//                                                      (every reason present, 0 included)
//   poolbench_connections_acquire_seconds   histogram  acquire() call to lease in hand
//   poolbench_connections_usage_seconds     histogram  lease in hand to its return
//   poolbench_connections_creation_seconds  histogram  opening one connection
//
// Histogram boundaries (bucket_bounds_ns): 22 `le` values on a 1-2-5 series from 1 µs to
// 10 s. The pool's histograms (histogram.hpp) count integer nanoseconds in log-linear
// buckets whose edges are not round decimal figures, so each `le` is the last value of
// the pool's bucket that ends just below the round figure T: the count at that `le` is
// exactly the number of values under T, with no interpolation. In seconds:
//
//   T      1µs          2µs          5µs          10µs         20µs         50µs
//   le     0.000000999  0.000001999  0.000004991  0.000009983  0.000019967  0.000049919
//   T      100µs        200µs        500µs        1ms          2ms          5ms
//   le     0.000099839  0.000199679  0.000499711  0.000999423  0.001998847  0.004980735
//   T      10ms         20ms         50ms         100ms        200ms        500ms
//   le     0.009961471  0.019922943  0.049807359  0.099614719  0.199229439  0.499122175
//   T      1s           2s           5s           10s
//   le     0.998244351  1.996488703  4.999610367  9.999220735
//
// (each within 0.4% below T), then le="+Inf", which equals _count. _sum is in seconds.
//
// Thread-safety: every function here is pure; it reads the PoolStats value it is given
// (a snapshot: call Pool::stats(), which is thread-safe, from any thread, then render the
// copy). Under load a snapshot's figures may be a moment apart (see Pool::stats), but a
// histogram's buckets and its _count come from one copy, so +Inf always equals _count.
#pragma once

#include "poolbench/stats.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace poolbench::prometheus {

/// The Content-Type of a response carrying this text.
inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

/// The histograms' `le` boundaries in nanoseconds, ascending: inclusive upper bounds, each
/// the last value of one of the pool's histogram buckets (see the table above).
[[nodiscard]] std::span<const std::uint64_t> bucket_bounds_ns() noexcept;

/// One pool to render: its name (the `pool` label) and a snapshot of its statistics.
struct NamedStats {
    std::string_view name;
    const PoolStats& stats;
};

/// Appends every family above for `pools`, each family's HELP and TYPE once with one series
/// per pool (the format wants a family's series together).
void append_pools(std::string& out, std::span<const NamedStats> pools);

/// The exposition of one pool (append_pools with one entry).
[[nodiscard]] std::string render(const PoolStats& stats, std::string_view pool_name);

// The format's pieces, for an application that adds series of its own beside the pool's.

/// Appends "# HELP name help" and "# TYPE name type" (help escaped as the format says).
void append_family(std::string& out, std::string_view name, std::string_view type, std::string_view help);
/// A label value escaped for the format: backslash, double quote and line feed.
[[nodiscard]] std::string escape_label_value(std::string_view value);
/// A sample value: integers as written, others in the shortest form that reads back
/// exactly, and NaN, +Inf, -Inf as the format spells them.
[[nodiscard]] std::string format_value(double value);
/// Seconds from integer nanoseconds, in decimal without rounding (999 → "0.000000999").
[[nodiscard]] std::string seconds_text(std::uint64_t ns);

}  // namespace poolbench::prometheus
