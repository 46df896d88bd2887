// scenario_verdict.cpp — the verdict on a finished scenario report: the engine's built-in
// checks (writes, pool limits, pacing, stalls, leaks, faults run and reverted, a leak
// fault's findings) and the scenario's own expectations, each with its actual value, in
// one list.
#include "scenario_run.hpp"

#include "expectation.hpp"
#include "report_json.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace poolbench::cli {

namespace scenario_detail {

using Json = nlohmann::ordered_json;

namespace {

/// A leak fault's findings: every leaked lease reported once, traced to the injector, no
/// other lease reported, each returned late; with reclaim, each revoked (and refusing use)
/// and, when the fault awaited it, the phase's load on the reclaimed capacity clean. Each is
/// named by its path in `scope` (the fault's record, or `poolbench leak`'s report, which
/// has the same leak_check), so it can be copied into an `expect` as it is.
void leak_checks(std::vector<Expectation>& ex, const LeakCheckSection& c, bool awaited, const Json& scope,
                 const std::string& scope_name) {
    const std::uint64_t n = c.injected;
    std::vector<std::string> texts{fmt::format("leak_check.reported == {}", n),
                                   fmt::format("leak_check.traced_to_injector == {}", n),
                                   "leak_check.false_positives == 0"};
    if (c.reclaim_after_ms) {
        texts.push_back(fmt::format("leak_check.reclaimed == {}", n));
        texts.emplace_back("leak_check.revoked_use_threw == 1");
    }
    if (awaited && c.reclaim_after_ms) {
        // The load after the reclaim; none (the wait failed) fails both.
        texts.emplace_back("leak_check.second_phase.ops.failed == 0");
        texts.emplace_back("leak_check.second_phase.ops.timed_out == 0");
    }
    texts.push_back(fmt::format("leak_check.returned_late == {}", n));
    for (const auto& text : texts) {
        std::string error;
        const auto parsed = parse_expectation(text, error);
        if (parsed) ex.push_back(evaluate_expectation(*parsed, scope, scope_name));
    }
}

}  // namespace

void ScenarioRun::evaluate(Report& report) const {
    auto& ex = report.expectations;
    if (report.writes) {
        if (report.writes->checked) {
            ex.push_back({"writes.lost == 0", "== 0", static_cast<double>(report.writes->lost), report.writes->lost == 0});
        } else if (db_.backend != Backend::null) {
            ex.push_back({"writes verified", "count query succeeds", 0, false});
            ex.back().note = report.writes->error.empty() ? "no count" : "failed: " + report.writes->error;
        }
    }
    ex.push_back({"pool.peak_total <= pool.max_size", fmt::format("<= {}", report.pool.max_size),
                  static_cast<double>(report.pool.peak_total),
                  report.pool.peak_total <= report.pool.max_size && !limit_violated_});
    ex.push_back({"pool.active_at_end == 0", "== 0", static_cast<double>(report.pool.active_at_end),
                  report.pool.active_at_end == 0});
    const bool flat = options_.command != "run";  // stress, soak: names as they always were
    for (std::size_t i = 0; i < report.phases.size(); ++i) {
        const PhaseRecord& p = report.phases[i];
        const std::string scope = flat ? std::string() : "phase " + p.name;
        // A paced phase keeps its rate, unless a fault in it is meant to stop it.
        if (p.rate_ops_s > 0 && !p.cancelled && spec_.phases[i].faults.empty()) {
            // A paced phase must keep up with its target rate.
            Expectation e{"throughput_ops_s >= 95% of the target rate", fmt::format(">= {:.1f}", p.rate_ops_s * 0.95),
                          p.throughput_ops_s, p.throughput_ops_s >= p.rate_ops_s * 0.95};
            e.scope = scope;
            ex.push_back(std::move(e));
        }
        // A phase in which every operation failed measured nothing (a user's phase whose
        // every write MariaDB refused passed with no expectation of its own).
        if (p.ops.total > 0 && p.ops.ok == 0) {
            Expectation e{"ops.ok > 0", "> 0", 0, false};
            e.scope = scope;
            e.note = fmt::format("every one of the phase's {} operations failed (errors_by_class says how)", p.ops.total);
            ex.push_back(std::move(e));
        }
        if (p.stalled_intervals) {
            Expectation e{"timeline intervals without a completed operation == 0", "== 0",
                          static_cast<double>(*p.stalled_intervals), *p.stalled_intervals == 0};
            e.scope = scope;
            ex.push_back(std::move(e));
        }
    }
    const bool leak_faults = std::any_of(report.faults.begin(), report.faults.end(),
                                         [](const FaultRecord& f) { return f.kind == "leak"; });
    if (report.leaks_tracked && !leak_faults) {
        ex.push_back({"pool.leaks_detected == 0", "== 0", static_cast<double>(report.pool.leaks_detected),
                      report.pool.leaks_detected == 0});
    }
    std::vector<const FaultSpec*> fault_specs;  // in the report's order
    for (const auto& p : spec_.phases) {
        for (const auto& f : p.faults) fault_specs.push_back(&f);
    }
    const Json records = report_to_json(report);  // the paths the leak checks are named by
    for (std::size_t i = 0; i < report.faults.size(); ++i) {
        const FaultRecord& f = report.faults[i];
        if (f.leak_check) {
            leak_checks(ex, *f.leak_check, fault_specs[i]->await_detection,
                        flat && report.leak_check ? records : records.at("faults").at(i),
                        flat ? std::string() : fault_scope(f));
        }
        const bool ran = f.started_s.has_value() && f.error.empty();
        // A restart or a promotion is not undone: it is over when what it ran is done.
        const bool ends = ends_by_itself(fault_specs[i]->kind);
        Expectation e{ends ? "fault ran and ended" : "fault ran and was reverted",
                      ends ? "started, ended, no error" : "started, reverted, no error", ran && f.reverted ? 1.0 : 0.0,
                      ran && f.reverted};
        e.scope = fault_scope(f);
        if (!f.error.empty()) e.note = f.error;
        ex.push_back(std::move(e));
    }

    const Json json = report_to_json(report);
    auto add = [&](const std::vector<ExpectText>& list, const Json& scope, const std::string& name) {
        for (const auto& e : list) {
            std::string error;
            if (const auto parsed = parse_expectation(e.text, error)) ex.push_back(evaluate_expectation(*parsed, scope, name));
        }
    };
    add(spec_.expect, json, {});
    add(spec_.abort_on_fail, json, {});
    std::size_t fault_index = 0;
    for (std::size_t i = 0; i < spec_.phases.size(); ++i) {
        add(spec_.phases[i].expect, json.at("phases").at(i), "phase " + spec_.phases[i].name);
        for (const auto& f : spec_.phases[i].faults) {
            add(f.expect, json.at("faults").at(fault_index), fault_scope(report.faults[fault_index]));
            ++fault_index;
        }
    }
    // An expectation written in the file that a built-in already states is listed once.
    std::vector<Expectation> unique;
    for (auto& e : ex) {
        const bool seen = std::any_of(unique.begin(), unique.end(), [&](const Expectation& u) {
            return u.name == e.name && u.scope == e.scope;
        });
        if (!seen) unique.push_back(std::move(e));
    }
    ex = std::move(unique);
    if (report.aborted) ex.push_back({"run not aborted", "abort_on_fail held", 0, false});
    // An interrupted run is not judged by an expectation: its RunError (exit 130) says so.
}

}  // namespace scenario_detail

std::vector<double> stalled_intervals(const std::vector<TimelinePoint>& timeline, double interval_s,
                                      double expected_ops_s) {
    std::vector<double> stalled;
    if (expected_ops_s * interval_s < 2) return stalled;
    double previous_t = 0;
    for (const auto& p : timeline) {
        const bool full = p.t_s - previous_t >= interval_s * 0.9;
        if (full && p.ops_s <= 0) stalled.push_back(p.t_s);
        previous_t = p.t_s;
    }
    return stalled;
}

}  // namespace poolbench::cli
