// render_html.cpp — the report as one self-contained HTML page (--html FILE): the verdict
// and the figures a reader looks for first, expectations, the charts (render_html_charts.cpp:
// throughput, latency percentiles and pool occupancy over time, the latency histogram,
// phases and faults shaded), then the tables: phases, faults, latency, the pool, writes,
// leaks grouped by stack, the baseline, errors. No scripts, no fonts, no external files:
// it opens from a CI artifact store as it is.
#include "html_chart.hpp"
#include "human.hpp"
#include "markup.hpp"
#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace poolbench::cli {

namespace {

std::string esc(std::string_view text) { return markup_escape(text); }

std::string us(double v) { return human_us(v); }

/// The page's style sheet: system fonts only, light colours, charts styled by class.
constexpr const char* style =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2328;background:#fff;margin:0}"
    "main{max-width:1000px;margin:0 auto;padding:20px 20px 48px}"
    "h1{font-size:22px;margin:0 0 4px}h1 span{display:inline-block;font-size:14px;padding:2px 12px;border-radius:14px;"
    "vertical-align:4px}h1 span.pass{background:#dafbe1}h1 span.fail{background:#ffebe9}"
    "h2{font-size:17px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid #d1d9e0}"
    ".meta,.note,.hint{color:#59636e}.meta code{background:#f6f8fa;padding:1px 4px;border-radius:4px}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:10px;margin:16px 0}"
    ".card{background:#f6f8fa;border:1px solid #d1d9e0;border-radius:8px;padding:8px 12px}"
    ".card b{display:block;font-size:19px;font-weight:600;white-space:nowrap}.card span{color:#59636e;font-size:12px}"
    ".card.bad b{color:#cf222e}"
    "table{border-collapse:collapse;margin:.5em 0 1em;font-variant-numeric:tabular-nums}"
    "td,th{border-bottom:1px solid #d1d9e0;padding:4px 10px;text-align:right}th{background:#f6f8fa;font-weight:600}"
    "th:first-child,td:first-child{text-align:left}.pass{color:#1a7f37}.fail{color:#cf222e;font-weight:600}"
    "pre{background:#f6f8fa;padding:.6em;overflow-x:auto;border-radius:6px;font-size:12px}"
    "svg.chart{display:block;max-width:100%;height:auto;margin:6px 0 18px}"
    "svg.chart text{font:12px system-ui,sans-serif;fill:#59636e}svg.chart text.title{font-size:13px;font-weight:600;"
    "fill:#1f2328}svg.chart text.legend{fill:#1f2328}svg.chart text.band{font-size:11px;fill:#57606a}"
    "svg.chart text.fault-label{fill:#bc4c00;font-weight:600}";

/// One figure of the summary row.
std::string card(const std::string& value, const char* label, bool bad = false) {
    return fmt::format("<div class=\"card{}\"><b>{}</b><span>{}</span></div>", bad ? " bad" : "", esc(value), label);
}

/// The figures a reader looks for first.
std::string summary_cards(const Report& r) {
    std::string o = "<div class=\"cards\">";
    o += card(human_rate(r.throughput_ops_s), "throughput");
    o += card(human_count(static_cast<double>(r.ops.ok)), "operations ok");
    const std::uint64_t bad = r.ops.failed + r.ops.timed_out + r.ops.statement_timeouts;
    o += card(human_count(static_cast<double>(bad)), "failed or timed out", bad > 0);
    o += card(us(r.latency_us.op.p50), "operation p50");
    o += card(us(r.latency_us.op.p99), "operation p99");
    o += card(us(r.latency_us.acquire.p99), "acquire p99");
    o += card(fmt::format("{} / {}", r.pool.peak_active, r.pool.max_size), "peak active / pool max");
    o += card(human_count(static_cast<double>(r.pool.created)), "connections opened");
    if (r.leaks_tracked || r.pool.leaks_detected > 0) {
        o += card(human_count(static_cast<double>(r.pool.leaks_detected)), "leaks detected", r.pool.leaks_detected > 0);
    }
    if (r.writes && !r.writes->error.empty()) {
        o += card("not verified", "writes", true);  // counting failed: no lost count to show
    } else if (r.writes) {
        o += card(human_count(static_cast<double>(r.writes->lost)), "writes lost", r.writes->lost > 0);
    }
    if (r.baseline) o += card(fmt::format("{:.1f}x", r.baseline->speedup), "faster than no pool");
    return o + "</div>\n";
}

std::string phases_table(const Report& r) {
    std::string o = "<h2>Phases</h2>\n<table><tr><th>phase</th><th>threads</th><th>workload</th><th>from</th><th>time</th>"
                    "<th>ok</th><th>failed</th><th>ops/s</th><th>op p50</th><th>op p99</th></tr>\n";
    for (const auto& ph : r.phases) {
        fmt::format_to(std::back_inserter(o),
                       "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2f} s</td><td>{:.2f} s</td><td>{}</td><td>{}</td>"
                       "<td>{}</td><td>{}</td><td>{}</td></tr>\n",
                       esc(ph.name), ph.threads, esc(ph.workload), ph.started_s, ph.duration_s,
                       human_count(static_cast<double>(ph.ops.ok)),
                       human_count(static_cast<double>(ph.ops.failed + ph.ops.timed_out)),
                       esc(human_rate(ph.throughput_ops_s, "")), us(ph.latency_us.op.p50), us(ph.latency_us.op.p99));
    }
    return o + "</table>\n";
}

std::string faults_table(const Report& r) {
    std::string o = "<h2>Faults</h2>\n<table><tr><th>fault</th><th>phase</th><th>from</th><th>to</th><th>recovery</th>"
                    "<th>outage</th><th>stalled</th><th>failed</th><th>what it did</th></tr>\n";
    auto ms = [](const std::optional<double>& v) {
        return !v ? std::string("—") : *v == 0 ? std::string("0 ms") : us(*v * 1000.0);
    };
    for (const auto& f : r.faults) {
        fmt::format_to(std::back_inserter(o),
                       "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                       "<td>{}</td><td>{}{}</td></tr>\n",
                       esc(f.node.empty() ? f.kind : f.kind + " on " + f.node), esc(f.phase),
                       f.started_s ? fmt::format("{:.2f} s", *f.started_s) : "—",
                       f.ended_s ? fmt::format("{:.2f} s", *f.ended_s) : "—", ms(f.recovery_ms), ms(f.outage_ms),
                       ms(f.stalled_ms), human_count(static_cast<double>(f.failed)), esc(f.detail),
                       f.error.empty() ? "" : " — error: " + esc(f.error));
    }
    return o + "</table>\n";
}

std::string latency_table(const Report& r) {
    std::string o = "<table><tr><th>latency</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th>"
                    "<th>mean</th><th>count</th></tr>\n";
    for (const auto& [name, l] : {std::pair<const char*, const LatencySummary*>{"acquire", &r.latency_us.acquire},
                                  {"query", &r.latency_us.query},
                                  {"operation", &r.latency_us.op},
                                  {"failed operations", &r.latency_us.failed}}) {
        if (l->count == 0 && std::string_view(name) == "failed operations") continue;
        fmt::format_to(std::back_inserter(o),
                       "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                       "</tr>\n",
                       name, us(l->p50), us(l->p90), us(l->p99), us(l->p999), us(l->max), us(l->mean),
                       human_count(static_cast<double>(l->count)));
    }
    return o + "</table>\n";
}

std::string pool_table(const Report& r) {
    const auto& p = r.pool;
    return fmt::format(
        "<h2>Pool</h2>\n<table><tr><th>connections opened</th><td>{}</td></tr><tr><th>closed</th><td>{}</td></tr>"
        "<tr><th>hit ratio</th><td>{:.2f}%</td></tr><tr><th>queued acquires</th><td>{}</td></tr><tr><th>timeouts</th>"
        "<td>{}</td></tr><tr><th>peak active / total / max</th><td>{} / {} / {}</td></tr><tr><th>validation failures"
        "</th><td>{}</td></tr><tr><th>reconnects</th><td>{}</td></tr><tr><th>connect time p50 / p99</th><td>{} / {}"
        "</td></tr></table>\n",
        human_count(static_cast<double>(p.created)), human_count(static_cast<double>(p.destroyed)), p.hit_ratio * 100,
        human_count(static_cast<double>(p.waits)), human_count(static_cast<double>(p.timeouts)), p.peak_active,
        p.peak_total, p.max_size, p.validation_failures, p.reconnects, us(p.connect_us.p50), us(p.connect_us.p99));
}

class HtmlRenderer final : public Renderer {
public:
    [[nodiscard]] std::string render(const Report& r) const override {
        std::string o;
        auto it = std::back_inserter(o);
        const bool pass = r.passed() && !r.error;
        const char* word = r.error ? "ERROR" : pass ? "PASS" : "FAIL";
        fmt::format_to(it,
                       "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
                       "content=\"width=device-width,initial-scale=1\"><title>poolbench {}{} — {}</title>\n<style>{}"
                       "</style></head><body><main>\n",
                       esc(r.command), r.scenario ? " " + esc(*r.scenario) : "", word, style);
        fmt::format_to(it, "<h1>poolbench {}{} — <span class=\"{}\">{}</span></h1>\n", esc(r.command),
                       r.scenario ? " " + esc(*r.scenario) : "", pass ? "pass" : "fail", word);
        if (r.error) {
            fmt::format_to(it, "<p class=\"fail\">The run did not complete (exit {}): {}</p>\n", r.error->exit_code,
                           esc(r.error->message));
        }
        if (!r.ran) {
            fmt::format_to(it, "<p class=\"meta\">database <code>{}</code></p>\n</main></body></html>\n",
                           esc(r.url_redacted));
            return o;
        }
        fmt::format_to(it,
                       "<p class=\"meta\">database <code>{}</code> ({}{}{}) · workload {} · {} threads · pool max {}, "
                       "min idle {} · {:.3f} s{}{}</p>\n",
                       esc(r.url_redacted), esc(r.backend), nodes_note(r).empty() ? "" : "; " + esc(nodes_note(r)),
                       r.prepared_statements.empty() ? std::string() : ", " + esc(r.prepared_statements) + " prepared statements",
                       esc(r.config.workload), r.config.threads,
                       r.config.pool_max, r.config.pool_min_idle, r.duration_s, r.interrupted ? " (interrupted)" : "",
                       r.started_at.time_since_epoch().count() != 0 ? " · started " + format_utc(r.started_at) : "");
        for (const auto& n : r.notes) fmt::format_to(it, "<p class=\"note\">note: {}</p>\n", esc(n));
        o += summary_cards(r);

        o += "<h2>Expectations</h2>\n<table><tr><th>expectation</th><th>expected</th><th>actual</th><th></th></tr>\n";
        for (const auto& e : r.expectations) {
            fmt::format_to(it, "<tr><td>{}{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>\n",
                           e.scope.empty() ? "" : esc(e.scope) + ": ", esc(e.name), esc(e.expected),
                           e.note.empty() ? human_number(e.actual) : esc(e.note), e.passed ? "pass" : "fail",
                           e.passed ? "pass" : "FAIL");
        }
        o += "</table>\n";

        if (const std::string charts = report_charts(r); !charts.empty()) {
            o += "<h2>Over time</h2>\n";
            if (!r.timeline.empty()) {
                // The phases' own intervals (the sampling rule is per phase).
                std::vector<double> intervals;
                for (const auto& ph : r.phases) {
                    if (ph.sample_interval_s > 0 &&
                        std::find(intervals.begin(), intervals.end(), ph.sample_interval_s) == intervals.end()) {
                        intervals.push_back(ph.sample_interval_s);
                    }
                }
                if (intervals.empty()) intervals.push_back(r.config.sample_interval_s);
                std::string every;
                for (double v : intervals) {
                    every += (every.empty() ? "" : ", ") + human_axis_us(v * 1e6, v * 1e3);
                }
                fmt::format_to(it, "<p class=\"hint\">{} samples, one every {}{}{}.</p>\n", r.timeline.size(), every,
                               intervals.size() > 1 ? " (by phase)" : "",
                               r.faults.empty() ? "" : "; shaded orange: the fault windows");
            }
            o += charts;
        }
        if (!r.phases.empty() && (r.phases.size() > 1 || !r.faults.empty())) o += phases_table(r);
        if (!r.faults.empty()) o += faults_table(r);

        fmt::format_to(it, "<h2>Latency</h2>\n<p>{} · {} operations: {} ok, {} failed, {} timed out</p>\n",
                       human_rate(r.throughput_ops_s), human_count(static_cast<double>(r.ops.total)),
                       human_count(static_cast<double>(r.ops.ok)), human_count(static_cast<double>(r.ops.failed)),
                       human_count(static_cast<double>(r.ops.timed_out)));
        o += latency_table(r);
        o += pool_table(r);
        if (const auto table = pools_table(r); !table.empty()) {
            o += "<h2>Pools</h2>\n<table>";
            for (std::size_t i = 0; i < table.size(); ++i) {
                o += "<tr>";
                const char* tag = i == 0 ? "th" : "td";
                for (const auto& cell : table[i]) o += fmt::format("<{0}>{1}</{0}>", tag, esc(cell));
                o += "</tr>";
            }
            o += "</table>\n";
            if (r.router) o += fmt::format("<p>{}</p>\n", esc(router_line(r)));
        }

        if (r.writes && !r.writes->error.empty()) {
            fmt::format_to(it,
                           "<h2>Writes</h2>\n<p>acknowledged {}, <span class=\"fail\">NOT verified: counting this run's "
                           "rows failed: {}</span></p>\n",
                           r.writes->acknowledged, esc(r.writes->error));
        } else if (r.writes) {
            fmt::format_to(it, "<h2>Writes</h2>\n<p>acknowledged {}, verified {}, <span class=\"{}\">lost {}</span>",
                           r.writes->acknowledged, r.writes->verified, r.writes->lost == 0 ? "pass" : "fail",
                           r.writes->lost);
            if (r.writes->in_doubt > 0) {
                fmt::format_to(it, "; in doubt {} (the connection broke during COMMIT), {} of them committed",
                               r.writes->in_doubt, r.writes->in_doubt_committed);
            }
            o += "</p>\n";
        }
        if (r.writes && !r.run_id.empty() && r.backend != "null") {
            fmt::format_to(it, "<p>rows: <code>poolbench_writes</code> where <code>run_id = '{}-PHASE'</code></p>\n",
                           esc(r.run_id));
        }
        if (!r.leaks.empty()) {
            o += "<h2>Leaks</h2>\n";
            for (const auto& g : group_leaks(r.leaks)) {
                fmt::format_to(it, "<p>{} × {} lease{}, the longest held {} (first by thread {})</p>\n<pre>", g.count,
                               esc(g.kind), g.count == 1 ? "" : "s", us(g.longest_held_ms * 1000.0), esc(g.first_thread));
                for (const auto& frame : g.stack) fmt::format_to(it, "{}\n", esc(frame));
                o += "</pre>\n";
            }
            if (const auto more = leaks_not_listed(r); more > 0) {
                fmt::format_to(it, "<p class=\"note\">{} more not listed ({})</p>\n", more, esc(r.leaks_list_rule));
            }
        }
        if (r.baseline) {
            fmt::format_to(it,
                           "<h2>Baseline (no pool)</h2>\n<p>{} with a new connection per operation: the pool is "
                           "<strong>{:.1f}x</strong> faster</p>\n",
                           human_rate(r.baseline->throughput_ops_s), r.baseline->speedup);
        }
        if (!r.errors.empty()) {
            o += "<h2>Errors</h2>\n<ul>\n";
            for (const auto& e : r.errors) fmt::format_to(it, "<li>{} × {}</li>\n", e.count, esc(e.message));
            o += "</ul>\n";
        }
        o += "</main></body></html>\n";
        return o;
    }
};

}  // namespace

const char* report_page_style() noexcept { return style; }

std::unique_ptr<Renderer> make_html_renderer() { return std::make_unique<HtmlRenderer>(); }

}  // namespace poolbench::cli
