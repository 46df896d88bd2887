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
    if (r.sizing.max_size) {
        d.add(*r.sizing.max_size == 0 ? FindingLevel::problem : FindingLevel::ok, "pool_size",
              fmt::format("recommended pool max_size {}{}", *r.sizing.max_size,
                          r.sizing.min_idle ? fmt::format(", min_idle {}", *r.sizing.min_idle) : std::string()),
              *r.sizing.max_size == 0 ? "free connections on the server first (see the connection findings)"
                                      : "start there and measure under your load (poolbench stress --pool-size N)");
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
    r.problems = r.warnings = 0;
    for (const auto& f : d.findings) {
        r.problems += f.level == FindingLevel::problem ? 1 : 0;
        r.warnings += f.level == FindingLevel::warn ? 1 : 0;
    }
}

}  // namespace poolbench::cli
