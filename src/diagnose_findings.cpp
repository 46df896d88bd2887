// diagnose_findings.cpp — what the CLI adds to the backend's findings (what a pool saves
// per operation, the pool size, the ladder's knee) and the problem and warning counts.
#include "diagnose.hpp"

#include <fmt/format.h>

namespace poolbench::cli {

void add_cli_findings(DiagnoseResult& r) {
    Diagnosis& d = r.diagnosis;
    if (r.round_trip_p50_us > 0 && r.db.backend != Backend::null) {
        d.add(FindingLevel::ok, "connect_cost",
              fmt::format("a new connection costs {:.3f} ms, {:.0f}x a SELECT 1 round trip ({:.1f} us): what a pool "
                          "saves per operation",
                          r.connect_p50_ms, r.connect_p50_ms * 1000.0 / r.round_trip_p50_us, r.round_trip_p50_us));
    }
    if (r.sizing.max_size && !r.sizing_input.pooler.empty() && *r.sizing.max_size > 0) {
        // Behind PgBouncer the recommendation sizes its server-side pool.
        const std::string name = r.sizing_input.pooler == "pgbouncer" ? "PgBouncer" : "the pooler";
        d.add(FindingLevel::ok, "pool_size",
              fmt::format("recommended server-side pool: {} connections, as {}'s pool_size{} (the client pool's "
                          "max_size may be larger: its extra connections wait inside {})",
                          *r.sizing.max_size, name,
                          r.sizing_input.pooler_pool_size ? fmt::format(", now {}", *r.sizing_input.pooler_pool_size)
                                                          : std::string(),
                          name),
              fmt::format("set {}'s pool_size (default_pool_size) there and measure under your load (poolbench stress "
                          "--pool-size N through it)",
                          name));
    } else if (r.sizing.max_size) {
        d.add(*r.sizing.max_size == 0 ? FindingLevel::problem : FindingLevel::ok, "pool_size",
              fmt::format("recommended pool max_size {}{}", *r.sizing.max_size,
                          r.sizing.min_idle ? fmt::format(", min_idle {}", *r.sizing.min_idle) : std::string()),
              *r.sizing.max_size == 0 ? "free connections on the server first (see the connection findings)"
                                      : "start there and measure under your load (poolbench stress --pool-size N)");
    } else if (r.sizing.instances_exceed_free) {
        const std::int64_t free = r.sizing_input.free_connections.value_or(0);
        d.add(FindingLevel::problem, "instances_exceed_free_connections",
              fmt::format("{} application instances need more connections than the server has free ({}): even one "
                          "connection per pool does not fit",
                          r.sizing_input.app_instances, free),
              fmt::format("put {} between the instances and the server, or raise max_connections (or the {}'s "
                          "connection limit) to at least {} more, or run fewer instances",
                          r.db.backend == Backend::mariadb ? "a connection multiplexer (ProxySQL, MaxScale)"
                                                           : "PgBouncer (transaction pooling)",
                          r.db.backend == Backend::mariadb ? "user" : "role's or database",
                          r.sizing_input.app_instances - free));
    } else if (r.db.backend != Backend::null) {
        d.add(FindingLevel::warn, "pool_size_unknown", "no pool-size recommendation: the server's core count is unknown",
              "pass --server-cores N (the database server's physical cores), or --measure to find it by load");
    }
    if (r.ladder && r.ladder->knee) {
        const auto& steps = r.ladder->steps;
        d.add(FindingLevel::ok, "ladder_knee",
              fmt::format("measured: SELECT 1 throughput stopped rising at {} connections ({:.0f} ops/s; {} gave "
                          "{:.0f} ops/s)",
                          *r.ladder->knee, steps[steps.size() - 2].ops_s, steps.back().connections, steps.back().ops_s),
              r.sizing.max_size && *r.sizing.max_size > *r.ladder->knee * 2
                  ? fmt::format("beyond {} connections this server gave no more throughput here: a smaller pool "
                                "may serve as well",
                                *r.ladder->knee)
                  : std::string());
    }
    if (r.ladder && !r.ladder->steps.empty() && r.ladder->steps.front().connections == 1 && r.round_trip_p50_us > 0) {
        // One client and its server process wake each other for every statement; when the
        // scheduler puts them on different CPUs, each wake-up of an idle CPU costs tens of
        // microseconds (more on a VM): measured here as 15k against 60k ops/s, the same
        // with bare libpq, pinned one way or the other. More connections keep CPUs busy.
        const double one = r.ladder->steps.front().ops_s;
        const double expected = 1e6 / r.round_trip_p50_us;
        if (one * 2 < expected) {
            d.add(FindingLevel::ok, "ladder_single_connection_slow",
                  fmt::format("the 1-connection step ran {:.0f} ops/s where a {:.1f} us round trip allows {:.0f}: the "
                              "client and the server process were woken on different CPUs (an idle CPU's wake-up "
                              "costs tens of microseconds, more on a VM); from 2 connections on the CPUs stay busy",
                              one, r.round_trip_p50_us, expected));
        }
    }
    r.problems = r.warnings = 0;
    for (const auto& f : d.findings) {
        r.problems += f.level == FindingLevel::problem ? 1 : 0;
        r.warnings += f.level == FindingLevel::warn ? 1 : 0;
    }
}

}  // namespace poolbench::cli
