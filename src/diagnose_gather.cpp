// diagnose_gather.cpp — what diagnose measures and reads: the driver's Diagnosis, read-only
// connect and round-trip timings, the privileges poolbench's workloads need (PostgreSQL),
// and the --measure ladder. Every connection here comes from Driver::connect_read_only.
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

bool truthy(const Value& v) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) return *i != 0;
    return false;
}

/// The tables the workloads use (src/workload.cpp): read and mixed need SELECT on
/// poolbench_accounts, write and mixed SELECT and INSERT on poolbench_writes; a missing
/// table is created, which needs CREATE on the schema.
void workload_privileges(Connection& c, Diagnosis& d) {
    const Rows schema = c.query(
        "SELECT coalesce(current_schema(), ''), coalesce(has_schema_privilege(current_schema(), 'CREATE'), false), "
        "current_user");
    const std::string name = std::get_if<std::string>(&schema.rows.at(0).at(0)) != nullptr
                                 ? std::get<std::string>(schema.rows[0][0])
                                 : std::string();
    const bool can_create = truthy(schema.rows[0][1]);
    const std::string role = std::get_if<std::string>(&schema.rows[0][2]) != nullptr ? std::get<std::string>(schema.rows[0][2]) : "";
    d.add("schema", name.empty() ? FactValue{} : FactValue{name});
    d.add("can_create_tables", can_create);
    struct Need {
        const char* table;
        bool insert;
        const char* workloads;
    };
    std::vector<std::string> missing_grants;
    std::vector<std::string> absent;
    for (const Need& n : {Need{"poolbench_accounts", false, "read and mixed"}, Need{"poolbench_writes", true, "write and mixed"}}) {
        const Rows r = c.query(
            "SELECT has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT') FROM "
            "pg_catalog.pg_class c WHERE c.relname = $1 AND c.relkind IN ('r', 'p', 'v') AND "
            "pg_catalog.pg_table_is_visible(c.oid)",
            {Value{std::string(n.table)}});
        std::string state;
        if (r.empty()) {
            state = "absent";
            absent.emplace_back(n.table);
        } else {
            const bool sel = truthy(r.rows[0][0]);
            const bool ins = truthy(r.rows[0][1]);
            state = sel && (ins || !n.insert) ? "usable" : "no privilege";
            if (state != "usable") {
                missing_grants.push_back(fmt::format("GRANT {} ON {} TO {} ({} workloads)", n.insert ? "SELECT, INSERT" : "SELECT",
                                                     n.table, role, n.workloads));
            }
        }
        d.add(std::string(n.table), state);
    }
    if (!absent.empty() && !can_create) {
        d.add(FindingLevel::warn, "workload_cannot_create_tables",
              fmt::format("role {} cannot create tables in schema {} and {} {} not exist: poolbench's read, write "
                          "and mixed workloads cannot set up (select1 runs)",
                          role, name.empty() ? "(none on the search_path)" : name, fmt::join(absent, " and "),
                          absent.size() == 1 ? "does" : "do"),
              fmt::format("GRANT CREATE ON SCHEMA {} TO {}, or have a DBA create the tables (poolbench stress "
                          "--workload mixed prints the statements)",
                          name.empty() ? "public" : name, role));
    }
    if (!missing_grants.empty()) {
        d.add(FindingLevel::warn, "workload_table_privileges",
              fmt::format("role {} lacks privileges on poolbench's tables", role),
              fmt::format("{}", fmt::join(missing_grants, "; ")));
    }
    if (missing_grants.empty() && (absent.empty() || can_create)) {
        d.add(FindingLevel::ok, "workload_privileges",
              "the workloads can run: their tables exist with the privileges they need, or can be created");
    }
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
    if (driver.backend() == Backend::postgresql) workload_privileges(*conn, out.diagnosis);
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
