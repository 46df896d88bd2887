// diagnose_sizing.cpp — the pool-size recommendation and the ladder's knee: pure
// arithmetic, unit-tested in cli_tests (test_diagnose_sizing.cpp).
//
// The rule is HikariCP's "About Pool Sizing" starting point (from the PostgreSQL wiki):
// connections = (core_count * 2) + effective_spindle_count, for the whole server. Here it
// is shared by the application instances (--app-instances: each pool gets its part,
// rounded up), bounded by the connections the server still has free (divided among the
// instances, rounded down), and the assumption it rests on is said: one effective
// spindle (an SSD; 0 when the data fits in memory). Unlike the wiki's formula alone, the
// answer also says what a new connection costs against a round trip (which sets min_idle)
// and, on SQLite, that writers take turns whatever the size.
#include "diagnose.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace poolbench::cli {

Sizing recommend_pool_size(const SizingInput& in) {
    Sizing s;
    const std::int64_t instances = std::max<std::int64_t>(in.app_instances, 1);
    if (in.server_cores && *in.server_cores > 0) {
        const std::int64_t cores = *in.server_cores;
        s.formula = cores * 2 + in.spindles;
        s.reasoning.push_back(fmt::format(
            "{} core{} ({}) x 2 + {} effective spindle{} (assumed: an SSD counts as 1, data that fits in memory as 0) "
            "= {} connections busy at once keep the server saturated (HikariCP's starting point)",
            cores, cores == 1 ? "" : "s", in.cores_source, in.spindles, in.spindles == 1 ? "" : "s", *s.formula));
        s.per_instance = (*s.formula + instances - 1) / instances;
        if (instances > 1) {
            s.reasoning.push_back(fmt::format("shared by {} application instances: {} each (rounded up)", instances,
                                              *s.per_instance));
        }
        s.max_size = s.per_instance;
    } else {
        s.reasoning.push_back(
            "the server's core count is unknown (it is not on this machine and the server does not expose it): pass "
            "--server-cores N for a recommendation");
    }
    if (in.free_connections) {
        s.cap = *in.free_connections / instances;
        if (instances > 1) {
            s.reasoning.push_back(fmt::format("{} free connection{} / {} instances = at most {} per pool",
                                              *in.free_connections, *in.free_connections == 1 ? "" : "s", instances,
                                              *s.cap));
        } else {
            s.reasoning.push_back(fmt::format("{} free connection{} on the server: at most {} for the pool",
                                              *in.free_connections, *in.free_connections == 1 ? "" : "s", *s.cap));
        }
        if (*in.free_connections > 0 && *s.cap == 0) {
            // Never a silent max_size 0: the instances need more than the server has free.
            s.instances_exceed_free = true;
            s.max_size.reset();
            s.reasoning.push_back(fmt::format(
                "{} instances need at least one connection each, but the server has only {} free: no pool size "
                "works for all of them",
                instances, *in.free_connections));
        } else if (s.max_size && *s.cap < *s.max_size) {
            s.reasoning.push_back(fmt::format("bounded by the free connections: {} instead of {}", *s.cap, *s.max_size));
            s.max_size = s.cap;
        }
        if (s.max_size && *s.max_size == 0) {
            s.reasoning.push_back("no connection is free for the pool: free some before sizing it");
        }
    }
    if (in.single_writer && s.max_size) {
        s.reasoning.push_back(
            "SQLite runs one writer at a time: for writes, connections beyond a few only queue on the write lock; the "
            "size serves readers");
    }
    if (!in.pooler.empty() && s.max_size) {
        const std::string name = in.pooler == "pgbouncer" ? "PgBouncer" : "the pooler";
        s.reasoning.push_back(fmt::format(
            "{} is in front of the server: this is the size of its server-side pool ({}'s pool_size{}), not the "
            "client pool's max_size, which may be larger: clients beyond it wait inside {}",
            name, name, in.pooler_pool_size ? fmt::format(", now {}", *in.pooler_pool_size) : std::string(), name));
    }
    if (s.max_size && in.round_trip_us > 0 && in.connect_ms > 0) {
        const double ratio = in.connect_ms * 1000.0 / in.round_trip_us;
        if (ratio >= 10) {
            s.min_idle = s.max_size;
            s.reasoning.push_back(fmt::format(
                "a new connection costs {:.3f} ms, {:.0f}x a {:.1f} us round trip: keep min_idle = max_size so a burst "
                "does not pay it",
                in.connect_ms, ratio, in.round_trip_us));
        } else {
            s.min_idle = std::min<std::int64_t>(*s.max_size, 1);
            s.reasoning.push_back(fmt::format(
                "a new connection costs {:.3f} ms, only {:.0f}x a round trip: idle connections can be let go "
                "(min_idle {})",
                in.connect_ms, ratio, *s.min_idle));
        }
    }
    return s;
}

std::optional<std::int64_t> ladder_knee(const std::vector<LadderStep>& steps) {
    for (std::size_t i = 1; i < steps.size(); ++i) {
        if (steps[i].ops_s < steps[i - 1].ops_s * 1.10) return steps[i - 1].connections;
    }
    return std::nullopt;
}

}  // namespace poolbench::cli
