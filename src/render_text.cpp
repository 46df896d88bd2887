// render_text.cpp — the human report, in the order of pgbench's printResults:
// parameters, counts with percentages, latency, throughput (saying what it includes),
// then pool, leaks, writes, baseline, errors, failed expectations and the verdict.
// Sections that do not apply are omitted.
#include "human.hpp"
#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <string>

namespace poolbench::cli {

namespace {

std::string human_ms(std::int64_t ms) {
    if (ms % 3'600'000 == 0) return fmt::format("{} h", ms / 3'600'000);
    if (ms % 60'000 == 0) return fmt::format("{} min", ms / 60'000);
    if (ms % 1000 == 0) return fmt::format("{} s", ms / 1000);
    return fmt::format("{} ms", ms);
}

// Right-aligns to `width` display columns ("µ" is two bytes but one column).
std::string rpad(const std::string& s, std::size_t width) {
    std::size_t columns = 0;
    for (const char c : s) {
        if ((static_cast<unsigned char>(c) & 0xC0U) != 0x80U) ++columns;
    }
    return columns >= width ? s : std::string(width - columns, ' ') + s;
}

double pct(std::uint64_t part, std::uint64_t total) {
    return total ? 100.0 * static_cast<double>(part) / static_cast<double>(total) : 0.0;
}

void append_counts(std::string& out, const OpCounts& o, const char* indent) {
    auto it = std::back_inserter(out);
    fmt::format_to(it, "{}ops total: {}\n", indent, o.total);
    fmt::format_to(it, "{}ops ok: {} ({:.3f}%)\n", indent, o.ok, pct(o.ok, o.total));
    fmt::format_to(it, "{}ops failed: {} ({:.3f}%)\n", indent, o.failed, pct(o.failed, o.total));
    fmt::format_to(it, "{}ops timed out: {} ({:.3f}%)\n", indent, o.timed_out, pct(o.timed_out, o.total));
    if (o.statement_timeouts > 0) {
        fmt::format_to(it, "{}statements cancelled by a statement timeout: {} ({:.3f}%)\n", indent, o.statement_timeouts,
                       pct(o.statement_timeouts, o.total));
    }
}

void append_latency(std::string& out, const LatencySet& l, const char* acquire_label) {
    auto it = std::back_inserter(out);
    fmt::format_to(it, "latency:   {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}\n", "p50", "p90", "p99", "p999", "max",
                   "mean");
    auto row = [&](const char* name, const LatencySummary& s) {
        if (s.count == 0) return;
        fmt::format_to(it, "  {:<8}", name);
        for (const double v : {s.p50, s.p90, s.p99, s.p999, s.max, s.mean}) out += " " + rpad(human_us(v), 11);
        out += '\n';
    };
    row(acquire_label, l.acquire);
    row("query", l.query);
    row("op", l.op);
    row("failed", l.failed);  // start to error, of the operations that did not succeed
}

std::string classes(const ErrorCounts& counts) {
    std::string out;
    for (std::size_t k = 0; k < counts.size(); ++k) {
        if (counts[k] == 0) continue;
        out += fmt::format("{}{} {}", out.empty() ? "" : ", ", to_string(static_cast<ErrorKind>(k)), counts[k]);
    }
    return out;
}

std::string ms_or(const std::optional<double>& v, const char* none) {
    return v ? fmt::format("{:.0f} ms", *v) : std::string(none);
}

void append_phases_and_faults(std::string& out, const Report& r) {
    auto it = std::back_inserter(out);
    if (!r.phases.empty()) {
        fmt::format_to(it, "phases:\n  {:<14} {:>7} {:>9} {:>9} {:>12} {:>9} {:>11} {:>11}\n", "name", "threads",
                       "workload", "time", "ok", "failed", "ops/s", "op p99");
        for (const auto& p : r.phases) {
            std::string stalls;
            for (const double t : p.stalled_at_s) stalls += fmt::format("{}{:.1f} s", stalls.empty() ? "" : ", ", t);
            if (!stalls.empty()) stalls = "  (stalled: intervals ending at " + stalls + ")";
            fmt::format_to(it, "  {:<14} {:>7} {:>9} {:>9} {:>12} {:>9} {:>11.1f} {:>11}{}{}{}\n", p.name, p.threads,
                           p.workload, fmt::format("{:.2f} s", p.duration_s), p.ops.ok, p.ops.failed + p.ops.timed_out,
                           p.throughput_ops_s, p.latency_us.op.count ? human_us(p.latency_us.op.p99) : "-",
                           p.rate_ops_s > 0 ? fmt::format("  (paced at {:g}/s: {} late, {} skipped)", p.rate_ops_s,
                                                          p.late, p.skipped)
                                            : "",
                           p.cancelled ? "  (stopped early)" : "", stalls);
        }
    }
    if (!r.faults.empty()) {
        out += "faults (times from the start of the run):\n";
        for (const auto& f : r.faults) {
            fmt::format_to(it, "  {}{}{} in phase {}: ", f.kind, f.node.empty() ? "" : " on ", f.node, f.phase);
            if (f.started_s) {
                fmt::format_to(it, "{:.2f} s to {:.2f} s", *f.started_s, f.ended_s.value_or(*f.started_s));
            } else {
                out += "did not run";
            }
            if (f.started_s && f.error.rfind("did not start", 0) != 0 && f.recovery_basis.empty()) {
                out += "; no load ran in its phase";
            } else if (f.started_s && f.error.rfind("did not start", 0) != 0) {
                fmt::format_to(it, "; recovery {}{}, outage {}, stalled {:.0f} ms, {} failed",
                               ms_or(f.recovery_ms, "not within the phase"),
                               f.recovery_basis == "after" ? " (against the level after it)" : "",
                               ms_or(f.outage_ms, "until the phase ended"), f.stalled_ms, f.failed);
                if (const auto c = classes(f.errors_by_class); !c.empty()) fmt::format_to(it, " ({})", c);
            }
            out += '\n';
            if (f.replica_fault() && f.started_s && f.error.rfind("did not start", 0) != 0) {
                fmt::format_to(it, "    router: took it out of rotation {}",
                               f.failover_ms ? fmt::format("{:.0f} ms after the fault began", *f.failover_ms) : "never");
                if (f.kind == "replica.stop") {
                    fmt::format_to(it, ", back in rotation {}",
                                   f.rejoin_ms ? fmt::format("{:.0f} ms after it ended", *f.rejoin_ms) : "not within the phase");
                }
                out += '\n';
            }
            if (!f.detail.empty()) fmt::format_to(it, "    {}\n", f.detail);
            if (f.leak_check && !r.leak_check) {  // `poolbench leak` has its own block below
                const auto& c = *f.leak_check;
                fmt::format_to(it, "    leak check: injected {}, reported {}, traced to {} {}, false positives {}, "
                                   "late returns {}",
                               c.injected, c.reported, c.injector, c.traced_to_injector, c.false_positives,
                               c.returned_late);
                if (c.reclaim_after_ms) fmt::format_to(it, ", reclaimed {}", c.reclaimed);
                out += '\n';
            }
            if (!f.error.empty()) fmt::format_to(it, "    error: {}\n", f.error);
        }
    }
    if (r.aborted) fmt::format_to(it, "aborted: {}\n", r.abort_reason);
}

class TextRenderer final : public Renderer {
public:
    [[nodiscard]] std::string render(const Report& r) const override {
        std::string out;
        auto it = std::back_inserter(out);

        // Parameters.
        fmt::format_to(it, "command: {}\n", r.command);
        if (r.scenario) fmt::format_to(it, "scenario: {}\n", *r.scenario);
        const std::string nodes = nodes_note(r);
        fmt::format_to(it, "database: {} (backend {}{}{})\n", r.url_redacted, r.backend, nodes.empty() ? "" : "; ", nodes);
        if (r.prepared_statements == "unnamed") {
            fmt::format_to(it, "prepared statements: unnamed (each statement parsed with every call: prepare=off, or a "
                               "pooler such as PgBouncer found in front of the server)\n");
        } else if (!r.prepared_statements.empty()) {
            fmt::format_to(it, "prepared statements: {}\n", r.prepared_statements);
        }
        if (!r.merged_from.empty()) {
            fmt::format_to(it, "merged from {} agents (threads, ops and pool sizes below are their sums):\n",
                           r.merged_from.size());
            for (const auto& m : r.merged_from) {
                fmt::format_to(it, "  {}  started {} (+{:.3f} s)  {} ok  {:.1f} ops/s  {}\n", m.path, m.started_at,
                               m.offset_s, m.ops.ok, m.throughput_ops_s, m.verdict);
            }
        }
        fmt::format_to(it, "workload: {}", r.config.workload);
        if (r.config.workload == "mixed") fmt::format_to(it, " (write ratio {:.2f})", r.config.write_ratio);
        if (r.config.workload == "read" || r.config.workload == "mixed") fmt::format_to(it, ", {} rows", r.config.rows);
        out += '\n';
        fmt::format_to(it, "threads: {}\n", r.config.threads);
        fmt::format_to(it, "pool: max {}, min idle {}, acquire timeout {}\n", r.config.pool_max,
                       r.config.pool_min_idle, human_ms(r.config.acquire_timeout_ms));
        if (r.config.ops) {
            // `poolbench leak --reclaim` runs its workload in two phases, each this many.
            const std::size_t loads = static_cast<std::size_t>(std::count_if(
                r.phases.begin(), r.phases.end(), [](const PhaseRecord& p) { return p.ops_requested.value_or(0) > 0; }));
            fmt::format_to(it, "operations requested: {}{}\n", *r.config.ops,
                           r.command != "run" && loads > 1 ? fmt::format(" per phase ({} phases)", loads) : "");
        }
        if (r.config.duration_s) fmt::format_to(it, "duration requested: {:.3f} s\n", *r.config.duration_s);
        if (r.config.rate_ops_s > 0) fmt::format_to(it, "target rate: {:g} ops/s\n", r.config.rate_ops_s);
        fmt::format_to(it, "duration: {:.3f} s{}\n", r.duration_s, r.interrupted ? " (interrupted)" : "");

        // Counts.
        append_counts(out, r.ops, "");

        // Latency and throughput.
        append_latency(out, r.latency_us, "acquire");
        fmt::format_to(it,
                       "throughput: {} (successful operations per second of the time the load ran; each includes "
                       "acquire, the workload statements and release)\n",
                       human_rate(r.throughput_ops_s));

        // The outage as time, beside the counts: what an operator asks first.
        for (const auto& p : r.phases) {
            // A phase with faults has no outage of its own (null): each fault's is in its line.
            const bool has_faults = std::any_of(r.faults.begin(), r.faults.end(),
                                                [&](const FaultRecord& f) { return f.phase == p.name; });
            if (has_faults) continue;
            if (!p.outage_ms || *p.outage_ms <= 0) {
                if (!p.outage_ms && p.ops.failed + p.ops.timed_out + p.ops.statement_timeouts > 0) {
                    fmt::format_to(it, "outage{}: still failing when the phase ended\n",
                                   r.phases.size() > 1 ? " in phase " + p.name : std::string());
                }
                continue;
            }
            fmt::format_to(it, "outage{}: {} from the first failure to steady success (20 operations in a row)\n",
                           r.phases.size() > 1 ? " in phase " + p.name : std::string(), human_us(*p.outage_ms * 1000.0));
        }
        append_phases_and_faults(out, r);

        // Pool.
        const auto& p = r.pool;
        out += "pool:\n";
        fmt::format_to(it, "  connections created: {}, destroyed: {}", p.created, p.destroyed);
        std::string reasons;
        for (std::size_t i = 0; i < destroy_reason_count; ++i) {
            if (p.destroyed_by_reason[i] == 0) continue;
            if (!reasons.empty()) reasons += ", ";
            reasons += fmt::format("{} {}", to_string(static_cast<DestroyReason>(i)), p.destroyed_by_reason[i]);
        }
        if (!reasons.empty()) fmt::format_to(it, " ({})", reasons);
        out += '\n';
        fmt::format_to(it, "  hits: {}, misses: {}, hit ratio: {:.2f}%\n", p.hits, p.misses, 100.0 * p.hit_ratio);
        fmt::format_to(it, "  waits: {}, timeouts: {}\n", p.waits, p.timeouts);
        if (p.connect_us.count > 0) {
            fmt::format_to(it, "  opening a connection took: p50 {}, p99 {}, max {} ({} opened)\n",
                           human_us(p.connect_us.p50), human_us(p.connect_us.p99), human_us(p.connect_us.max),
                           p.connect_us.count);
        }
        if (p.min_idle > 0)
            fmt::format_to(it, "  opening min_idle {} before the load took: {}\n", p.min_idle, human_us(p.warmup_ms * 1000));
        fmt::format_to(it, "  peak active: {} of max {}, peak total: {} of max {}{}\n", p.peak_active, p.max_size,
                       p.peak_total, p.max_size,
                       r.pools.size() > 1 ? fmt::format(" (each the sum of the {} pools' own peaks)", r.pools.size())
                                          : std::string());
        if (p.validation_failures || p.connect_failures) {
            fmt::format_to(it, "  validation failures: {}, connect failures: {}\n", p.validation_failures,
                           p.connect_failures);
        }
        if (p.reconnects) fmt::format_to(it, "  reconnects: {}\n", p.reconnects);
        if (p.overloaded || p.circuit_rejections) {
            fmt::format_to(it, "  refused: {} overloaded (max waiting), {} by the open circuit breaker\n", p.overloaded,
                           p.circuit_rejections);
        }
        if (p.transaction_retries) fmt::format_to(it, "  transaction retries: {}\n", p.transaction_retries);
        if (p.breaker.transitions > 0) {
            fmt::format_to(it, "  breaker: {} at the end, {} transitions", p.breaker.state, p.breaker.transitions);
            if (!p.breaker.history.empty()) {
                const auto& last = p.breaker.history.back();
                fmt::format_to(it, " (last: to {} at {}{}{})", last.to, format_utc(last.at),
                               last.reason.empty() ? "" : ": ", last.reason);
            }
            out += '\n';
        }
        if (p.active_at_end) fmt::format_to(it, "  leases still out after the run: {}\n", p.active_at_end);
        if (!p.shutdown_clean) out += "  shutdown: connections still open at the end of the grace period\n";
        if (const auto table = pools_table(r); !table.empty()) {
            // Several pools: the figures above are their sums; each one here.
            out += "pools:\n";
            std::vector<std::size_t> width(table.front().size(), 0);
            for (const auto& row : table) {
                for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
            }
            for (const auto& row : table) {
                std::string line = " ";
                for (std::size_t c = 0; c < row.size(); ++c) line += " " + rpad(row[c], width[c]);
                while (!line.empty() && line.back() == ' ') line.pop_back();
                out += line + '\n';
            }
            if (r.router) out += "  " + router_line(r) + '\n';
        }

        // Leaks.
        if (!r.leaks_tracked) {
            out += "leaks: tracking not enabled\n";
        } else if (r.leaks.empty() && leaks_not_listed(r) == 0) {
            fmt::format_to(it, "leaks: none (threshold {})\n", human_ms(r.config.leak_threshold_ms));
        } else {
            fmt::format_to(it, "leaks: {} reports (threshold {}", r.leaks.size(), human_ms(r.config.leak_threshold_ms));
            if (r.config.leak_reclaim_after_ms > 0) {
                fmt::format_to(it, ", reclaim after {}", human_ms(r.config.leak_reclaim_after_ms));
            }
            out += ")\n";
            // Grouped by stack: one entry per place that leaked, with how often.
            for (const auto& g : group_leaks(r.leaks)) {
                const char* note = !g.stack.empty()          ? ""
                                   : g.kind == "reclaimed" ? " (trace in its first report)"
                                                           : " (no trace: this acquire was not sampled)";
                fmt::format_to(it, "  {} x {}: held up to {:.0f} ms (first by thread {}){}\n", g.count, g.kind,
                               g.longest_held_ms, g.first_thread, note);
                for (const auto& frame : g.stack) fmt::format_to(it, "      at {}\n", frame);
            }
            if (const auto hidden = leaks_not_listed(r); hidden > 0) {
                fmt::format_to(it, "  ({} more detected, not listed: {})\n", hidden, r.leaks_list_rule);
            }
        }
        if (r.leak_check) {
            const auto& c = *r.leak_check;
            fmt::format_to(it, "leak check: injected {}, reported {}, traced to {} {}, false positives {}\n",
                           c.injected, c.reported, c.injector, c.traced_to_injector, c.false_positives);
            fmt::format_to(it, "  legitimate holds (returned at half the threshold): {}; late returns reported: {}\n",
                           c.legitimate_holds, c.returned_late);
            if (c.detection_wait_ms) {
                fmt::format_to(it, "  detected within {:.0f} ms of the injection\n", *c.detection_wait_ms);
            }
            if (c.reclaim_after_ms) {
                fmt::format_to(it, "  reclaimed: {} of {}", c.reclaimed, c.injected);
                if (c.reclaimed_before_report > 0) {
                    fmt::format_to(it, " ({} first reported by the reclaim itself)", c.reclaimed_before_report);
                }
                fmt::format_to(it, "; using a revoked lease {}\n",
                               c.revoked_use_threw ? "threw LeaseRevoked" : "did NOT throw LeaseRevoked");
            }
            if (c.second_phase) {
                const auto& o = *c.second_phase;
                fmt::format_to(it, "  after reclaim: ops total {}, ok {}, failed {}, timed out {}\n", o.total, o.ok,
                               o.failed, o.timed_out);
            }
        }

        // Writes.
        if (r.writes) {
            const auto& w = *r.writes;
            if (w.checked && w.in_doubt > 0) {
                fmt::format_to(it,
                               "writes: acknowledged {}, verified {}, lost {}; in doubt {} (the connection broke during "
                               "COMMIT), {} of them committed\n",
                               w.acknowledged, w.verified, w.lost, w.in_doubt, w.in_doubt_committed);
            } else if (w.checked) {
                fmt::format_to(it, "writes: acknowledged {}, verified {}, lost {}\n", w.acknowledged, w.verified,
                               w.lost);
            } else if (!w.error.empty()) {
                fmt::format_to(it, "writes: acknowledged {}, NOT verified: counting this run's rows failed: {}\n",
                               w.acknowledged, w.error);
            } else {
                fmt::format_to(it, "writes: acknowledged {} (not verified: the {} backend keeps no rows)\n",
                               w.acknowledged, r.backend);
            }
            // Where the rows are (a user with only this text could not find them).
            if (!r.run_id.empty() && r.backend != "null") {
                fmt::format_to(it, "  rows: poolbench_writes where run_id = '{}-PHASE'\n", r.run_id);
            }
        }

        // Baseline.
        if (r.baseline) {
            const auto& b = *r.baseline;
            out += "baseline (no pool: each operation connects, runs and closes";
            if (b.ops_requested) fmt::format_to(it, "; {} ops", b.ops_requested);
            if (b.duration_limit_s > 0) fmt::format_to(it, "; {:.3f} s", b.duration_limit_s);
            out += "):\n";
            fmt::format_to(it, "  duration: {:.3f} s\n", b.duration_s);
            append_counts(out, b.ops, "  ");
            std::string lat;
            append_latency(lat, b.latency_us, "connect");
            for (std::size_t start = 0; start < lat.size();) {
                const auto end = lat.find('\n', start);
                out += "  " + lat.substr(start, end - start + 1);
                start = end + 1;
            }
            fmt::format_to(it, "  throughput: {:.1f} ops/s (each includes connect, the statements and close)\n",
                           b.throughput_ops_s);
            if (b.speedup > 0) {
                fmt::format_to(it, "  speedup: {:.2f}x (pooled throughput / baseline throughput)\n", b.speedup);
            }
        }

        // Errors.
        if (!r.errors.empty()) {
            fmt::format_to(it, "errors ({} {}, most frequent first; one example message each):\n", r.errors.size(),
                           r.errors.size() == 1 ? "class" : "classes");
            for (const auto& e : r.errors) {
                fmt::format_to(it, "  {} x {}{}: {}\n", e.count, e.kind.empty() ? "error" : e.kind,
                               e.code.empty() ? "" : " " + e.code, e.message);
            }
            if (r.errors_other) fmt::format_to(it, "  {} other errors\n", r.errors_other);
        }

        for (const auto& n : r.notes) fmt::format_to(it, "note: {}\n", n);

        // Expectations (each with its actual value, as k6 prints thresholds) and the verdict.
        if (!r.expectations.empty()) {
            std::size_t failed = 0;
            for (const auto& e : r.expectations) failed += e.passed ? 0 : 1;
            fmt::format_to(it, "expectations ({} held, {} failed):\n", r.expectations.size() - failed, failed);
            for (const auto& e : r.expectations) {
                const std::string actual = e.note.empty() ? human_number(e.actual) : e.note;
                fmt::format_to(it, "  {} {}{}: actual {} (expected {})\n", e.passed ? "ok  " : "FAIL",
                               e.scope.empty() ? "" : e.scope + ": ", e.name, actual, e.expected);
            }
        }
        if (r.error) {
            fmt::format_to(it, "verdict: ERROR (exit {}): {}\n", r.error->exit_code, r.error->message);
        } else {
            fmt::format_to(it, "verdict: {}\n", r.passed() ? "PASS" : "FAIL");
        }
        return out;
    }
};

}  // namespace

std::unique_ptr<Renderer> make_text_renderer() { return std::make_unique<TextRenderer>(); }

}  // namespace poolbench::cli
