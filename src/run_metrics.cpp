// run_metrics.cpp — the run's live figures and their exposition (run_metrics.hpp).
#include "run_metrics.hpp"

#include <poolbench/prometheus.hpp>

#include <fmt/format.h>

namespace poolbench::cli {

namespace prom = poolbench::prometheus;

void RunMetrics::run_started(const ScenarioSpec& spec) {
    std::lock_guard lock(mu_);
    scenario_ = spec.name;
    phases_.clear();
    faults_.clear();
    for (std::size_t i = 0; i < spec.phases.size(); ++i) {
        const PhaseSpec& p = spec.phases[i];
        phases_.push_back(p.name);
        for (std::size_t k = 0; k < p.faults.size(); ++k) {
            faults_.push_back({p.name, std::string(to_string(p.faults[k].kind)), i, k + 1, false});
        }
    }
}

void RunMetrics::pool_opened(const Pool& pool) {
    std::lock_guard lock(mu_);
    for (auto& e : pools_) {
        if (e.name != pool.config().name) continue;
        e = {pool.config().name, &pool, std::nullopt};  // a pool of the same name again
        return;
    }
    pools_.push_back({pool.config().name, &pool, std::nullopt});
}

void RunMetrics::phase_started(std::size_t index) {
    std::lock_guard lock(mu_);
    phase_ = index;
    current_ = {};
}

void RunMetrics::phase_sample(const ProgressSample& sample) {
    std::lock_guard lock(mu_);
    // ProgressSample::failed counts every operation that did not succeed.
    current_.ok = sample.ok;
    current_.timed_out = sample.timed_out;
    current_.statement_timeouts = sample.statement_timeouts;
    current_.failed = sample.failed - sample.timed_out - sample.statement_timeouts;
}

void RunMetrics::phase_ended(const OpCounts& ops) {
    std::lock_guard lock(mu_);
    done_.ok += ops.ok;
    done_.failed += ops.failed;
    done_.timed_out += ops.timed_out;
    done_.statement_timeouts += ops.statement_timeouts;
    current_ = {};
    phase_.reset();
}

void RunMetrics::fault_changed(std::size_t phase, std::size_t fault, bool active) {
    std::lock_guard lock(mu_);
    for (auto& f : faults_) {
        if (f.phase_index == phase && f.number == fault + 1) f.active = active;
    }
}

void RunMetrics::pool_closed(const Pool& pool, const PoolStats& final_stats) {
    std::lock_guard lock(mu_);
    for (auto& e : pools_) {
        if (e.pool != &pool) continue;
        e.pool = nullptr;
        e.final_stats = final_stats;
    }
}

void RunMetrics::finish() {
    std::lock_guard lock(mu_);
    finished_ = true;
    phase_.reset();
    for (auto& f : faults_) f.active = false;
}

std::string RunMetrics::render() const {
    std::string out;
    std::lock_guard lock(mu_);
    std::vector<PoolStats> stats;
    stats.reserve(pools_.size());
    std::vector<prom::NamedStats> named;
    for (const auto& e : pools_) {
        if (e.pool == nullptr && !e.final_stats) continue;
        stats.push_back(e.pool != nullptr ? e.pool->stats() : *e.final_stats);
    }
    std::size_t k = 0;
    for (const auto& e : pools_) {
        if (e.pool == nullptr && !e.final_stats) continue;
        named.push_back({e.name, stats[k++]});
    }
    if (!named.empty()) prom::append_pools(out, named);  // no families without a pool to fill them
    const std::string scenario = "scenario=\"" + prom::escape_label_value(scenario_) + "\"";

    prom::append_family(out, "poolbench_run_operations_total", "counter",
                        "Workload operations finished, by result (the report's ops figures)");
    const std::pair<const char*, std::uint64_t> results[] = {
        {"ok", done_.ok + current_.ok},
        {"failed", done_.failed + current_.failed},
        {"timed_out", done_.timed_out + current_.timed_out},
        {"statement_timeouts", done_.statement_timeouts + current_.statement_timeouts},
    };
    for (const auto& [result, n] : results) {
        out += fmt::format("poolbench_run_operations_total{{{},result=\"{}\"}} {}\n", scenario, result, n);
    }

    prom::append_family(out, "poolbench_run_phase", "gauge", "1 for the phase running, 0 for the others");
    for (std::size_t i = 0; i < phases_.size(); ++i) {
        out += fmt::format("poolbench_run_phase{{{},phase=\"{}\"}} {}\n", scenario,
                           prom::escape_label_value(phases_[i]), phase_ == i ? 1 : 0);
    }

    if (!faults_.empty()) {
        prom::append_family(out, "poolbench_run_fault_active", "gauge",
                            "1 while the fault is in effect (fault: its number in its phase, from 1)");
        for (const auto& f : faults_) {
            out += fmt::format("poolbench_run_fault_active{{{},phase=\"{}\",fault=\"{}\",kind=\"{}\"}} {}\n", scenario,
                               prom::escape_label_value(f.phase), f.number, prom::escape_label_value(f.kind),
                               f.active ? 1 : 0);
        }
    }

    prom::append_family(out, "poolbench_run_finished", "gauge", "1 once the run is over and every figure is final");
    out += fmt::format("poolbench_run_finished{{{}}} {}\n", scenario, finished_ ? 1 : 0);
    return out;
}

}  // namespace poolbench::cli
