// render_html.cpp — the report as one self-contained HTML page (--html FILE): verdict and
// expectations, latency, the pool, the timeline as inline SVG charts (throughput and p99,
// with the pool's active/waiting gauges), leaks with their stacks, and the baseline.
// No scripts, no external files: it opens from a CI artifact store as it is.
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

/// One line chart of `values` over the timeline's t_s, 640x160, with its maximum labelled.
std::string chart(const std::vector<TimelinePoint>& points, const std::vector<FaultRecord>& faults, const char* title,
                  const char* unit, double (*value)(const TimelinePoint&)) {
    if (points.empty()) return {};
    const double width = 640, height = 160, pad = 30;
    const double t_max = std::max(points.back().t_s, 1e-9);
    // Fault windows shaded, on the timeline's own time base.
    std::string shades;
    for (const auto& f : faults) {
        if (!f.started_s || !f.ended_s) continue;
        const double x0 = pad + (width - 2 * pad) * std::clamp(*f.started_s / t_max, 0.0, 1.0);
        const double x1 = pad + (width - 2 * pad) * std::clamp(*f.ended_s / t_max, 0.0, 1.0);
        shades += fmt::format("<rect class=\"fault\" x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" "
                              "fill=\"#f4a261\" fill-opacity=\"0.3\"><title>{} ({} in phase {})</title></rect>",
                              x0, pad, std::max(1.0, x1 - x0), height - 2 * pad, esc(f.kind), esc(f.kind), esc(f.phase));
    }
    double v_max = 0;
    for (const auto& p : points) v_max = std::max(v_max, value(p));
    if (v_max <= 0) v_max = 1;
    std::string path;
    for (const auto& p : points) {
        const double x = pad + (width - 2 * pad) * p.t_s / t_max;
        const double y = height - pad - (height - 2 * pad) * value(p) / v_max;
        path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "" : " ", x, y);
    }
    return fmt::format(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
        "role=\"img\" aria-label=\"{}\">{}<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" "
        "stroke=\"#bbb\"/><polyline fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"1.5\" points=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\" font-size=\"11\">{} {}</text><text x=\"{}\" y=\"{}\" font-size=\"11\">0</text>"
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{:.1f} s</text></svg></figure>\n",
        esc(title), width, height, esc(title), shades, pad, pad, width - 2 * pad, height - 2 * pad, path, 2, pad - 4, human_number(v_max),
        esc(unit), 2, height - pad, width - pad, height - pad + 14, t_max);
}

class HtmlRenderer final : public Renderer {
public:
    [[nodiscard]] std::string render(const Report& r) const override {
        std::string o;
        auto it = std::back_inserter(o);
        const bool pass = r.passed() && !r.error;
        const char* word = r.error ? "ERROR" : pass ? "PASS" : "FAIL";
        fmt::format_to(it,
                       "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>poolbench {} — {}"
                       "</title>\n<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:60em}}"
                       "table{{border-collapse:collapse;margin:.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:"
                       "3px 8px;text-align:right}}th:first-child,td:first-child{{text-align:left}}.pass{{color:#1a7f37}}"
                       ".fail{{color:#cf222e;font-weight:bold}}pre{{background:#f6f8fa;padding:.5em;overflow-x:auto}}"
                       "</style></head><body>\n",
                       esc(r.command), word);
        fmt::format_to(it, "<h1>poolbench {}{} — <span class=\"{}\">{}</span></h1>\n", esc(r.command),
                       r.scenario ? " " + esc(*r.scenario) : "", pass ? "pass" : "fail", word);
        if (r.error) {
            fmt::format_to(it, "<p class=\"fail\">The run did not complete (exit {}): {}</p>\n", r.error->exit_code,
                           esc(r.error->message));
        }
        if (!r.ran) {
            fmt::format_to(it, "<p>database <code>{}</code></p>\n</body></html>\n", esc(r.url_redacted));
            return o;
        }
        fmt::format_to(it,
                       "<p>database <code>{}</code> (backend {}) · workload {} · {} threads · pool max {}, min idle "
                       "{} · {:.3f} s{}</p>\n",
                       esc(r.url_redacted), esc(r.backend), esc(r.config.workload), r.config.threads,
                       r.config.pool_max, r.config.pool_min_idle, r.duration_s,
                       r.interrupted ? " (interrupted)" : "");

        for (const auto& n : r.notes) fmt::format_to(it, "<p class=\"note\">note: {}</p>\n", esc(n));
        o += "<h2>Expectations</h2>\n<table><tr><th>expectation</th><th>expected</th><th>actual</th><th></th></tr>\n";
        for (const auto& e : r.expectations) {
            fmt::format_to(it, "<tr><td>{}{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>\n",
                           e.scope.empty() ? "" : esc(e.scope) + ": ", esc(e.name), esc(e.expected),
                           e.note.empty() ? human_number(e.actual) : esc(e.note), e.passed ? "pass" : "fail",
                           e.passed ? "pass" : "FAIL");
        }
        o += "</table>\n";
        if (!r.phases.empty() && (r.phases.size() > 1 || !r.faults.empty())) {
            o += "<h2>Phases</h2>\n<table><tr><th>phase</th><th>threads</th><th>workload</th><th>time</th><th>ok</th>"
                 "<th>failed</th><th>ops/s</th><th>op p99</th></tr>\n";
            for (const auto& ph : r.phases) {
                fmt::format_to(it,
                               "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2f} s</td><td>{}</td><td>{}</td><td>{:.1f}"
                               "</td><td>{}</td></tr>\n",
                               esc(ph.name), ph.threads, esc(ph.workload), ph.duration_s, ph.ops.ok,
                               ph.ops.failed + ph.ops.timed_out, ph.throughput_ops_s, us(ph.latency_us.op.p99));
            }
            o += "</table>\n";
        }
        if (!r.faults.empty()) {
            o += "<h2>Faults</h2>\n<table><tr><th>fault</th><th>phase</th><th>from</th><th>to</th><th>recovery</th>"
                 "<th>outage</th><th>stalled</th><th>failed</th><th>what it did</th></tr>\n";
            auto ms = [](const std::optional<double>& v) { return v ? fmt::format("{:.0f} ms", *v) : std::string("—"); };
            for (const auto& f : r.faults) {
                fmt::format_to(it,
                               "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0f} ms</td>"
                               "<td>{}</td><td>{}{}</td></tr>\n",
                               esc(f.kind), esc(f.phase), f.started_s ? fmt::format("{:.2f} s", *f.started_s) : "—",
                               f.ended_s ? fmt::format("{:.2f} s", *f.ended_s) : "—", ms(f.recovery_ms),
                               ms(f.outage_ms), f.stalled_ms, f.failed, esc(f.detail),
                               f.error.empty() ? "" : " — error: " + esc(f.error));
            }
            o += "</table>\n";
        }

        fmt::format_to(it,
                       "<h2>Throughput and latency</h2>\n<p>{} · {} operations: {} ok, {} failed, {} timed "
                       "out</p>\n",
                       human_rate(r.throughput_ops_s), human_count(static_cast<double>(r.ops.total)),
                       human_count(static_cast<double>(r.ops.ok)), human_count(static_cast<double>(r.ops.failed)),
                       human_count(static_cast<double>(r.ops.timed_out)));
        o += "<table><tr><th>latency</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th>"
             "<th>mean</th></tr>\n";
        for (const auto& [name, l] : {std::pair<const char*, const LatencySummary*>{"acquire", &r.latency_us.acquire},
                                      {"query", &r.latency_us.query},
                                      {"op", &r.latency_us.op}}) {
            fmt::format_to(it, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                           name, us(l->p50), us(l->p90), us(l->p99), us(l->p999), us(l->max), us(l->mean));
        }
        o += "</table>\n";

        const auto& p = r.pool;
        fmt::format_to(it,
                       "<h2>Pool</h2>\n<table><tr><th>connections created</th><td>{}</td></tr><tr><th>destroyed</th>"
                       "<td>{}</td></tr><tr><th>hit ratio</th><td>{:.2f}%</td></tr><tr><th>queued acquires</th><td>{}"
                       "</td></tr><tr><th>timeouts</th><td>{}</td></tr><tr><th>peak active / total / max</th><td>{} / "
                       "{} / {}</td></tr><tr><th>validation failures</th><td>{}</td></tr><tr><th>reconnects</th><td>{}"
                       "</td></tr></table>\n",
                       p.created, p.destroyed, p.hit_ratio * 100, p.waits, p.timeouts, p.peak_active, p.peak_total,
                       p.max_size, p.validation_failures, p.reconnects);

        if (!r.timeline.empty()) {
            o += "<h2>Timeline</h2>\n";
            if (!r.faults.empty()) o += "<p>Shaded: the fault windows.</p>\n";
            o += chart(r.timeline, r.faults, "throughput", "ops/s", [](const TimelinePoint& t) { return t.ops_s; });
            o += chart(r.timeline, r.faults, "op latency p99 per interval", "µs",
                       [](const TimelinePoint& t) { return t.p99_us; });
            o += chart(r.timeline, r.faults, "threads waiting for a connection", "",
                       [](const TimelinePoint& t) { return static_cast<double>(t.waiting); });
        }

        if (r.writes) {
            fmt::format_to(it, "<h2>Writes</h2>\n<p>acknowledged {}, verified {}, <span class=\"{}\">lost {}</span></p>\n",
                           r.writes->acknowledged, r.writes->verified, r.writes->lost == 0 ? "pass" : "fail",
                           r.writes->lost);
        }
        if (!r.leaks.empty()) {
            o += "<h2>Leaks</h2>\n";
            for (const auto& l : r.leaks) {
                fmt::format_to(it, "<p>{} lease held {:.0f} ms by thread {}</p>\n<pre>", esc(l.kind), l.held_ms,
                               esc(l.thread));
                for (const auto& frame : l.stack) fmt::format_to(it, "{}\n", esc(frame));
                o += "</pre>\n";
            }
        }
        if (r.baseline) {
            fmt::format_to(it,
                           "<h2>Baseline (no pool)</h2>\n<p>{:.1f} ops/s with a new connection per operation: the "
                           "pool is <strong>{:.1f}x</strong> faster</p>\n",
                           r.baseline->throughput_ops_s, r.baseline->speedup);
        }
        if (!r.errors.empty()) {
            o += "<h2>Errors</h2>\n<ul>\n";
            for (const auto& e : r.errors) fmt::format_to(it, "<li>{} × {}</li>\n", e.count, esc(e.message));
            o += "</ul>\n";
        }
        o += "</body></html>\n";
        return o;
    }
};

}  // namespace

std::unique_ptr<Renderer> make_html_renderer() { return std::make_unique<HtmlRenderer>(); }

}  // namespace poolbench::cli
