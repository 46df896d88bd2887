// scenario_check.cpp — what is checked before anything runs (the backend, each fault
// against the database chosen, every expectation's path on the report's shape), and the
// rules of a scenario the engine's other files share.
#include "scenario_run.hpp"

#include "cli.hpp"
#include "expectation.hpp"
#include "report_json.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace poolbench::cli {

namespace scenario_detail {

/// The table a *.lock_table fault locks when it names none: the phase's workload table.
std::string default_table(const PhaseSpec& p) {
    switch (p.workload.kind) {
        case WorkloadKind::write:
        case WorkloadKind::mixed:
        case WorkloadKind::read_write: return "poolbench_writes";
        case WorkloadKind::read: return "poolbench_accounts";
        case WorkloadKind::select1: break;
    }
    return {};
}

double write_ratio(const PhaseSpec& p) {
    switch (p.workload.kind) {
        case WorkloadKind::write:
        case WorkloadKind::read_write: return 1.0;
        case WorkloadKind::mixed: return p.workload.write_ratio;
        case WorkloadKind::select1:
        case WorkloadKind::read: break;
    }
    return 0.0;
}

std::string fault_scope(const FaultRecord& f) {
    return fmt::format("fault {} ({}) in phase {}", f.index, f.kind, f.phase);
}

bool any_writes(const ScenarioSpec& spec) {
    return std::any_of(spec.phases.begin(), spec.phases.end(), [](const PhaseSpec& p) {
        return p.workload.kind == WorkloadKind::write || p.workload.kind == WorkloadKind::read_write ||
               (p.workload.kind == WorkloadKind::mixed && p.workload.write_ratio > 0);
    });
}

std::chrono::milliseconds sample_interval(const PhaseSpec& p) {
    using std::chrono::milliseconds;
    if (p.sample_interval) return *p.sample_interval;
    if (!p.faults.empty()) return milliseconds{100};
    // Bounded by ops, the length is unknown: 50 ms gives a short run's charts 20 points
    // from 1 s on, and costs the sampler under 1% of a core at 100 threads.
    if (!p.duration) return milliseconds{50};
    return std::clamp(*p.duration / 20, milliseconds{10}, milliseconds{1000});
}

}  // namespace scenario_detail

using scenario_detail::any_writes;
using scenario_detail::default_table;
using Json = nlohmann::ordered_json;

namespace {

std::string backend_list(const std::vector<Backend>& backends) {
    std::string out;
    for (auto b : backends) out += (out.empty() ? "" : ", ") + std::string(to_string(b));
    return out;
}

bool plain_identifier(const std::string& name) {
    if (name.empty() || name.size() > 63) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_' ||
               c == '.';
    });
}

/// A replica fault names a replica the run has ("replica-1" .. "replica-N").
void check_replica_node(const ScenarioSpec& spec, const FaultSpec& f) {
    const std::size_t n = spec.topology.replicas.size();
    if (n == 0) {
        throw UsageFailure(fmt::format("{}: {} needs a run with replicas: pass --primary URL --replica URL (or set "
                                       "[database] replicas)",
                                       f.where.text, to_string(f.kind)));
    }
    const std::string node = replica_fault_node(f);
    for (std::size_t i = 1; i <= n; ++i) {
        if (node == fmt::format("replica-{}", i)) return;
    }
    throw UsageFailure(fmt::format("{}: {} names node '{}', but this run's replicas are replica-1{}", f.place_of({"node"}).text,
                                   to_string(f.kind), node, n == 1 ? std::string() : fmt::format(" .. replica-{}", n)));
}

/// The report's shape before the run: what expectations may name.
Report skeleton(const ScenarioSpec& spec) {
    Report r;
    r.command = "run";
    r.scenario = spec.name;
    if (any_writes(spec)) r.writes = WritesSection{};
    skeleton_nodes(spec.topology, r);
    if (spec.phases.size() >= 2) r.drift = DriftSection{};
    for (const auto& p : spec.phases) {
        PhaseRecord rec;
        rec.name = p.name;
        r.phases.push_back(rec);
        std::size_t index = 0;
        for (const auto& f : p.faults) {
            FaultRecord fr;
            fr.index = ++index;
            fr.kind = std::string(to_string(f.kind));
            fr.phase = p.name;
            if (f.kind == FaultKind::leak) {
                fr.leaks_reported = 0;
                LeakCheckSection c;
                if (spec.pool.leak_reclaim_after.count() > 0) {
                    c.reclaim_after_ms = spec.pool.leak_reclaim_after.count();
                    if (f.await_detection) c.second_phase = OpCounts{};
                }
                fr.leak_check = c;
            }
            if (is_replica_fault(f.kind)) fr.failover_ms = fr.rejoin_ms = 0.0;
            r.faults.push_back(fr);
        }
    }
    return r;
}

/// A leak fault needs leak tracking with a trace on every acquire, time for the pool to see
/// the leaks, and a connection left for the load (unless the pool reclaims them). Each error
/// names the key it is about (or the --set that set it).
void check_leak_fault(const ScenarioSpec& spec, const PhaseSpec& phase, const FaultSpec& f) {
    const PoolConfig& pool = spec.pool;
    if (pool.leak_threshold.count() == 0 || pool.leak_trace_every != 1) {
        throw UsageFailure(fmt::format("{}: a leak fault needs [pool] leak_threshold set and leak_trace_every = 1, so "
                                       "every leaked lease is reported with its stack",
                                       f.where.text));
    }
    if (f.await_detection) {
        if (f.at.count() != 0) throw UsageFailure(fmt::format("{}: a leak fault that awaits detection starts at 0", f.where.text));
    } else {
        // Its checks need the whole window: a phase that ends when its operations are done
        // may end before the pool could see a leak.
        if (!phase.duration) {
            throw UsageFailure(fmt::format("{}: a leak fault needs a phase bounded by duration, not ops: phase '{}' may "
                                           "finish its {} operations before the pool can see the leaks (give it "
                                           "duration = \"...\" longer than the fault's at + for)",
                                           f.where.text, phase.name, phase.ops.value_or(0)));
        }
        // The housekeeper looks for leaks every housekeeping_interval: a lease must be held
        // past the threshold (and the reclaim) by at least that much to be seen for sure.
        const auto seen_after = std::max(pool.leak_threshold, pool.leak_reclaim_after);
        if (seen_after + pool.housekeeping_interval >= f.duration) {
            throw UsageFailure(fmt::format("{}: a leak fault's 'for' ({} ms) must exceed [pool] {} ({} ms) plus "
                                           "housekeeping_interval ({} ms), so the pool can see the leaks",
                                           f.place_of({"for"}).text, f.duration.count(),
                                           pool.leak_reclaim_after > pool.leak_threshold ? "leak_reclaim_after"
                                                                                         : "leak_threshold",
                                           seen_after.count(), pool.housekeeping_interval.count()));
        }
    }
    const bool reclaims = pool.leak_reclaim_after.count() > 0;
    if (f.leaks > pool.max_size || (f.leaks == pool.max_size && !reclaims)) {
        throw UsageFailure(fmt::format("{}: leaking {} leases from a pool of {} leaves the load nothing",
                                       f.place_of({"leaks"}).text, f.leaks, pool.max_size));
    }
    if (f.holds > 0 && f.leaks + f.holds > pool.max_size) {
        throw UsageFailure(fmt::format("{}: {} leaks and {} legitimate holds need {} connections at once; the pool has "
                                       "{}",
                                       f.place_of({"holds", "leaks"}).text, f.leaks, f.holds, f.leaks + f.holds,
                                       pool.max_size));
    }
    const auto hold = f.hold_for.count() > 0 ? f.hold_for : pool.leak_threshold / 2;
    if (f.holds > 0 && hold >= pool.leak_threshold) {
        throw UsageFailure(fmt::format("{}: hold_for ({} ms) must be under [pool] leak_threshold ({} ms): a "
                                       "legitimate hold is one the pool must not report",
                                       f.place_of({"hold_for"}).text, hold.count(), pool.leak_threshold.count()));
    }
}

/// Leak faults of one phase whose windows overlap hold their leases at the same time: at
/// every moment the leases they hold (leaks + holds) must leave the load a connection. The
/// busiest moment is the start of one of them.
void check_leak_overlap(const ScenarioSpec& spec, const PhaseSpec& phase) {
    struct Window {
        std::size_t index;
        const FaultSpec* f;
        std::chrono::milliseconds from, to;
    };
    std::vector<Window> windows;
    for (std::size_t i = 0; i < phase.faults.size(); ++i) {
        const FaultSpec& f = phase.faults[i];
        if (f.kind != FaultKind::leak) continue;
        // An awaiting fault lasts until its phase ends.
        const auto to = f.await_detection ? std::chrono::milliseconds::max() : f.at + f.duration;
        windows.push_back({i + 1, &f, f.at, to});
    }
    if (windows.size() < 2) return;  // one fault alone: check_leak_fault's rule
    for (const auto& w : windows) {
        std::uint64_t held = 0;
        std::vector<const Window*> at_once;
        for (const auto& o : windows) {
            if (o.from <= w.from && w.from < o.to) {
                held += std::uint64_t{o.f->leaks} + o.f->holds;
                at_once.push_back(&o);
            }
        }
        if (at_once.size() < 2 || held < spec.pool.max_size) continue;
        std::string which, sum;
        for (const auto* o : at_once) {
            which += fmt::format("{}{}", which.empty() ? "" : o == at_once.back() ? " and " : ", ", o->index);
            sum += fmt::format("{}{}", sum.empty() ? "" : " + ", std::uint64_t{o->f->leaks} + o->f->holds);
        }
        throw UsageFailure(fmt::format("{}: leak faults {} of phase '{}' overlap at {} ms and hold {} leases at once "
                                       "(leaks + holds: {}); the pool has {}, and the load needs at least one: "
                                       "lower leaks or holds, or move a fault so their windows do not overlap",
                                       w.f->place_of({"at", "leaks", "holds"}).text, which, phase.name,
                                       w.from.count(), held, sum, spec.pool.max_size));
    }
}

/// Two in-process faults of one kind (on one node) whose windows overlap: each sets the
/// fault driver's one setting for its kind, so the first to end would end both while the
/// report says the other ran on (found in a user test). Refused; Toxiproxy's answer (toxics
/// that stack) has no meaning for two probabilities of a lost reply.
void check_process_fault_overlap(const PhaseSpec& phase) {
    for (std::size_t i = 0; i < phase.faults.size(); ++i) {
        const FaultSpec& a = phase.faults[i];
        if (!is_process_fault(a.kind)) continue;
        for (std::size_t j = i + 1; j < phase.faults.size(); ++j) {
            const FaultSpec& b = phase.faults[j];
            if (b.kind != a.kind || b.node != a.node) continue;
            if (a.at < b.at + b.duration && b.at < a.at + a.duration) {
                throw UsageFailure(fmt::format(
                    "{}: {} faults {} and {} of phase '{}' overlap ({}-{} ms and {}-{} ms), and the first to end would "
                    "end both: move one so their windows do not overlap, or make them one fault",
                    b.place_of({"at", "for"}).text, to_string(a.kind), i + 1, j + 1, phase.name, a.at.count(),
                    (a.at + a.duration).count(), b.at.count(), (b.at + b.duration).count()));
            }
        }
    }
}

const std::vector<std::string_view> live_paths{"ops.ok", "ops.failed", "ops.timed_out", "ops.total"};

}  // namespace

void check_scenario(const ScenarioSpec& spec, const DbUrl& db, const ScenarioRunOptions& options) {
    if (std::find(spec.backends.begin(), spec.backends.end(), db.backend) == spec.backends.end()) {
        throw UsageFailure(fmt::format("scenario '{}' runs on {}, not on {} ({}); pass --db with one of those",
                                       spec.name, backend_list(spec.backends), to_string(db.backend), db.redacted));
    }
    if (db.backend == Backend::sqlite && any_writes(spec)) {
        for (const auto& [name, value] : db.params) {
            if ((name == "mode" && value == "ro") || (name == "immutable" && value == "1")) {
                throw UsageFailure(fmt::format("{} opens the database read-only ({}={}), and this run writes: use a "
                                               "read workload (select1, read), or drop {} from the URL",
                                               db.redacted, name, value, name));
            }
        }
    }
    const Json shape = report_to_json(skeleton(spec));
    auto check_paths = [&](const std::vector<ExpectText>& list, const Json& scope, const std::string& where) {
        for (const auto& e : list) {
            std::string error;
            const auto parsed = parse_expectation(e.text, error);
            if (!parsed) throw UsageFailure(fmt::format("{}: {}", e.where.text, error));
            if (auto why = check_expectation_path(*parsed, scope); !why.empty()) {
                throw UsageFailure(fmt::format("{}: expectation '{}' ({}): {}", e.where.text, e.text, where, why));
            }
        }
    };
    check_paths(spec.expect, shape, "run scope");
    for (const auto& e : spec.abort_on_fail) {
        std::string error;
        const auto parsed = parse_expectation(e.text, error);
        if (!parsed) throw UsageFailure(fmt::format("{}: {}", e.where.text, error));
        if (std::find(live_paths.begin(), live_paths.end(), parsed->path) == live_paths.end()) {
            throw UsageFailure(fmt::format("{}: abort_on_fail '{}': only ops.ok, ops.failed, ops.timed_out and ops.total "
                                           "are known while the run goes on",
                                           e.where.text, e.text));
        }
    }
    std::size_t fault_index = 0;
    for (std::size_t i = 0; i < spec.phases.size(); ++i) {
        const auto& p = spec.phases[i];
        check_paths(p.expect, shape.at("phases").at(i), "phase " + p.name);
        for (const auto& f : p.faults) {
            const Json& scope = shape.at("faults").at(fault_index++);
            check_paths(f.expect, scope, fmt::format("a {} fault of phase {}", to_string(f.kind), p.name));
            const auto can = fault_backends(f.kind);
            if (std::find(can.begin(), can.end(), db.backend) == can.end()) {
                throw UsageFailure(fmt::format("{}: a {} fault runs on {}, not on {} ({})", f.where.text,
                                               to_string(f.kind), backend_list(can), to_string(db.backend),
                                               db.redacted));
            }
            if (f.kind == FaultKind::sqlite_lock && db.memory) {
                throw UsageFailure(fmt::format("{}: sqlite.lock needs a database file another process can open, not "
                                               "an in-memory database",
                                               f.where.text));
            }
            if (is_restart(f.kind) && options.restart_command.empty()) {
                throw UsageFailure(fmt::format("{}: this scenario restarts the server: pass --restart-command CMD (for "
                                               "the throwaway server, scripts/{}_sandbox.sh restart-command prints one)",
                                               f.where.text, db.backend == Backend::mariadb ? "mariadb" : "pg"));
            }
            // --check alone cannot know the replicas; given (flags or the file), it checks the node.
            if (is_replica_fault(f.kind) && (!options.file_only || !spec.topology.replicas.empty())) {
                check_replica_node(spec, f);
            }
            if (f.kind == FaultKind::replica_stop &&
                (options.node_commands.stop.empty() || options.node_commands.start.empty())) {
                throw UsageFailure(fmt::format("{}: this scenario stops a replica: pass --replica-stop-command CMD and "
                                               "--replica-start-command CMD (for the throwaway standby: "
                                               "scripts/pg_sandbox.sh halt DIR and scripts/pg_sandbox.sh resume DIR)",
                                               f.where.text));
            }
            if (is_lock_table(f.kind)) {
                const std::string table = f.table.empty() ? default_table(p) : f.table;
                if (table.empty()) {
                    throw UsageFailure(fmt::format("{}: {} needs a table: phase '{}' runs select1, which "
                                                   "uses none (set table = \"...\")",
                                                   f.where.text, to_string(f.kind), p.name));
                }
                if (!plain_identifier(table)) {
                    throw UsageFailure(fmt::format("{}: table '{}' must be a plain lower-case name (schema.table "
                                                   "allowed)",
                                                   f.where.text, table));
                }
            }
            if (f.kind == FaultKind::leak) check_leak_fault(spec, p, f);
        }
        check_leak_overlap(spec, p);
        check_process_fault_overlap(p);
    }
}

}  // namespace poolbench::cli
