// diagnose_gather.cpp — what diagnose measures and reads: the driver's Diagnosis, read-only
// connect and round-trip timings, the privileges poolbench's workloads need
// (diagnose_privileges.cpp), and the --measure ladder. Every connection here comes from Driver::connect_read_only.
#include "diagnose.hpp"

#include <poolbench/error.hpp>
#include <poolbench/histogram.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <string_view>
#include <mutex>
#include <thread>

namespace poolbench::cli {

namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t ns_since(Clock::time_point t0) {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
}

/// A read-only connection; `attempt_ns` (when given) gets the time of the attempt that
/// succeeded.
std::unique_ptr<Connection> connect_one(Driver& driver, std::chrono::milliseconds timeout,
                                        std::uint64_t* attempt_ns = nullptr) {
    // A connection closed just before may still hold its server slot for a moment (the
    // backend exits after the client hangs up): with one free slot, "too many
    // connections" then means "not yet". Poll for the slot within the timeout.
    const auto until = Clock::now() + timeout;
    for (;;) {
        const auto t0 = Clock::now();
        try {
            auto c = driver.connect_read_only(until);
            if (attempt_ns != nullptr) *attempt_ns = ns_since(t0);
            return c;
        } catch (const ConnectError& e) {
            if (std::string_view(e.what()).find("too many connections") == std::string_view::npos || Clock::now() >= until) throw;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

}  // namespace

void gather(Driver& driver, const GatherOptions& o, DiagnoseResult& out) {
    out.diagnosis = driver.diagnose(o.diagnose);
    out.samples = o.samples;
    Histogram connect_ns, round_trip_ns;
    // One connection at a time, never two: diagnose must work with a single free slot.
    for (std::size_t i = 0; i < o.samples; ++i) {
        std::uint64_t ns = 0;
        auto c = connect_one(driver, o.timeout, &ns);
        connect_ns.record(ns);
        c.reset();  // closed before the next one opens
    }
    auto conn = connect_one(driver, o.timeout);
    (void)conn->query("SELECT 1");  // prepares it: time the round trips after
    for (std::size_t i = 0; i < o.samples; ++i) {
        const auto t0 = Clock::now();
        (void)conn->query("SELECT 1");
        round_trip_ns.record(ns_since(t0));
    }
    out.connect_p50_ms = static_cast<double>(connect_ns.percentile(0.5)) / 1e6;
    out.connect_min_ms = static_cast<double>(connect_ns.min()) / 1e6;
    out.connect_max_ms = static_cast<double>(connect_ns.max()) / 1e6;
    out.round_trip_p50_us = static_cast<double>(round_trip_ns.percentile(0.5)) / 1e3;
    out.round_trip_p99_us = static_cast<double>(round_trip_ns.percentile(0.99)) / 1e3;
    workload_privileges(driver.backend(), *conn, out.diagnosis);
    conn.reset();
}

Ladder measure_ladder(Driver& driver, std::int64_t max_connections, std::chrono::milliseconds step,
                      std::chrono::milliseconds timeout) {
    Ladder ladder;
    std::vector<std::unique_ptr<Connection>> conns;
    for (std::int64_t n = 1; n <= max_connections; n *= 2) {
        while (static_cast<std::int64_t>(conns.size()) < n) conns.push_back(connect_one(driver, timeout));
        std::atomic<bool> stop{false};
        std::atomic<std::uint64_t> ops{0};
        std::vector<std::thread> workers;
        std::atomic<bool> failed{false};
        std::string error;
        std::mutex error_mutex;
        for (std::int64_t i = 0; i < n; ++i) {
            workers.emplace_back([&, c = conns[static_cast<std::size_t>(i)].get()] {
                try {
                    while (!stop.load(std::memory_order_relaxed)) {
                        (void)c->query("SELECT 1");
                        ops.fetch_add(1, std::memory_order_relaxed);
                    }
                } catch (const std::exception& e) {
                    std::lock_guard lock(error_mutex);
                    if (!failed.exchange(true)) error = e.what();
                }
            });
        }
        // The step's first fifth is a warm-up, not counted: thread start, a new backend's
        // first statement (its catalog caches, the prepare) and the scheduler settling.
        // The rest is four windows; the step's figure is their median, so a window in
        // which the scheduler moved the client or server does not decide it.
        const auto window = std::max(step / 5, std::chrono::milliseconds(1));
        std::this_thread::sleep_for(window);
        std::vector<double> rates;
        for (int w = 0; w < 4 && !failed; ++w) {
            const auto t0 = Clock::now();
            const std::uint64_t before = ops.load(std::memory_order_relaxed);
            std::this_thread::sleep_for(window);
            const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
            rates.push_back(static_cast<double>(ops.load(std::memory_order_relaxed) - before) / seconds);
        }
        stop = true;
        for (auto& w : workers) w.join();
        if (failed) throw QueryError("the --measure ladder failed at " + std::to_string(n) + " connections: " + error,
                                     "", 0, false, ErrorKind::other);
        std::sort(rates.begin(), rates.end());
        ladder.steps.push_back(LadderStep{n, (rates[1] + rates[2]) / 2});
        if (ladder_knee(ladder.steps)) {
            ladder.stopped_because = "throughput stopped rising";
            break;
        }
    }
    if (ladder.stopped_because.empty()) {
        ladder.stopped_because = fmt::format("reached the limit of {} connections", max_connections);
    }
    ladder.knee = ladder_knee(ladder.steps);
    return ladder;
}

}  // namespace poolbench::cli
