// render_diagnose_html.cpp — diagnose's findings as one self-contained HTML page (--html
// FILE): the verdict, the findings (problems first) with what to do, the pool-size
// recommendation and its reasoning, the ladder as a bar per step, the facts and the
// tables of live state. No scripts, no external files; every text through markup_escape.
// Also diagnose's error report in each format (render_diagnose_error).
#include "diagnose.hpp"
#include "markup.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace poolbench::cli {

namespace {

std::string esc(std::string_view s) { return markup_escape(s); }

int rank(FindingLevel l) { return l == FindingLevel::problem ? 0 : l == FindingLevel::warn ? 1 : 2; }

}  // namespace

std::string render_diagnose_html(const DiagnoseResult& r) {
    const Diagnosis& d = r.diagnosis;
    const bool fail = r.problems > 0;
    std::string out = fmt::format(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>poolbench diagnose: {}</title>\n"
        "<style>body{{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;"
        "margin:.5em 0 1.5em}}td,th{{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}}"
        "th{{background:#f4f4f4}}.problem{{background:#fde2e1}}.warn{{background:#fff4d6}}.ok{{background:#e6f4ea}}"
        ".verdict{{font-size:1.3em;font-weight:bold;padding:.4em .8em;display:inline-block}}"
        ".bar{{background:#1f6feb;height:12px;display:inline-block}}td.num{{text-align:right}}</style></head><body>\n",
        esc(r.db.redacted));
    out += fmt::format("<h1>poolbench diagnose</h1>\n<p>{} (backend {})<br>{}</p>\n", esc(r.db.redacted),
                       esc(to_string(r.db.backend)), esc(d.server));
    out += fmt::format("<p class=\"verdict {}\">{}: {} problem{}, {} warning{}</p>\n", fail ? "problem" : "ok",
                       fail ? "FAIL" : "PASS", r.problems, r.problems == 1 ? "" : "s", r.warnings,
                       r.warnings == 1 ? "" : "s");
    out += "<h2>Findings</h2>\n<table><tr><th>level</th><th>code</th><th>what was found</th><th>what to do</th></tr>\n";
    std::vector<const Finding*> sorted;
    for (const auto& f : d.findings) sorted.push_back(&f);
    std::stable_sort(sorted.begin(), sorted.end(), [](const Finding* a, const Finding* b) { return rank(a->level) < rank(b->level); });
    for (const Finding* f : sorted) {
        out += fmt::format("<tr class=\"{0}\"><td>{0}</td><td><code>{1}</code></td><td>{2}</td><td>{3}</td></tr>\n",
                           esc(to_string(f->level)), esc(f->code), esc(f->text), esc(f->action));
    }
    out += "</table>\n<h2>Pool size</h2>\n";
    out += r.sizing.max_size ? fmt::format("<p><b>max_size {}</b>{}</p>\n", *r.sizing.max_size,
                                           r.sizing.min_idle ? fmt::format(", min_idle {}", *r.sizing.min_idle) : std::string())
                             : std::string("<p>no recommendation</p>\n");
    out += "<ul>\n";
    for (const auto& why : r.sizing.reasoning) out += "<li>" + esc(why) + "</li>\n";
    out += "</ul>\n";
    if (r.ladder && !r.ladder->steps.empty()) {
        double top = 1;
        for (const auto& s : r.ladder->steps) top = std::max(top, s.ops_s);
        out += "<h3>SELECT 1 ladder (read-only)</h3>\n<table><tr><th>connections</th><th>ops/s</th><th></th></tr>\n";
        for (const auto& s : r.ladder->steps) {
            out += fmt::format("<tr{}><td class=\"num\">{}</td><td class=\"num\">{:.0f}</td><td><span class=\"bar\" "
                               "style=\"width:{:.0f}px\"></span></td></tr>\n",
                               r.ladder->knee && *r.ladder->knee == s.connections ? " class=\"ok\"" : "", s.connections,
                               s.ops_s, 300.0 * s.ops_s / top);
        }
        out += "</table>\n<p>" + esc(r.ladder->stopped_because) + "</p>\n";
    }
    out += "<h2>Timings</h2>\n<table>\n";
    out += fmt::format("<tr><th>connect, read-only (p50)</th><td class=\"num\">{:.3f} ms</td></tr>\n", r.connect_p50_ms);
    out += fmt::format("<tr><th>SELECT 1 round trip (p50)</th><td class=\"num\">{:.1f} us</td></tr>\n", r.round_trip_p50_us);
    out += "</table>\n<h2>Facts</h2>\n<table>\n";
    for (const auto& f : d.facts) {
        out += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", esc(f.key), esc(fact_text(f.value)));
    }
    out += "</table>\n";
    for (const auto& t : d.tables) {
        out += fmt::format("<h2>{}</h2>\n<table><tr>", esc(t.title));
        for (const auto& c : t.columns) out += "<th>" + esc(c) + "</th>";
        out += "</tr>\n";
        for (const auto& row : t.rows) {
            out += "<tr>";
            for (const auto& v : row) out += "<td>" + esc(fact_text(v)) + "</td>";
            out += "</tr>\n";
        }
        out += "</table>\n";
    }
    out += "</body></html>\n";
    return out;
}

}  // namespace poolbench::cli

namespace poolbench::cli {

std::string render_diagnose_error(std::string_view flag, int exit_code, const std::string& message,
                                  const std::string& backend, const std::string& url) {
    const bool interrupted = exit_code == 130;
    const std::string why = interrupted ? "interrupted by a signal before diagnose finished (" + message +
                                              "): no findings were kept, and nothing was written to the database"
                                        : message;
    if (flag == "--json") {
        const nlohmann::json j{{"schema", "poolbench/diagnose@2"},
                               {"database", nlohmann::json{{"backend", backend}, {"url", url}}},
                               {"verdict", "error"},
                               {"interrupted", interrupted},
                               {"error", nlohmann::json{{"exit_code", exit_code}, {"message", why}}},
                               {"findings", nlohmann::json::array()},
                               {"summary", nlohmann::json{{"problems", 0}, {"warnings", 0}}}};
        return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    if (flag == "--junit") {
        return fmt::format(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"poolbench\" tests=\"1\" failures=\"0\" "
            "errors=\"1\" time=\"0\">\n  <testsuite name=\"{}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" "
            "time=\"0\">\n    <testcase classname=\"poolbench.diagnose.{}\" name=\"diagnose\" time=\"0\">\n      <error "
            "type=\"exit {}\" message=\"{}\"/>\n    </testcase>\n  </testsuite>\n</testsuites>\n",
            esc("poolbench diagnose " + url), esc(backend.empty() ? "unknown" : backend), exit_code, esc(why));
    }
    return fmt::format(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>poolbench diagnose: error</title>"
        "</head>\n<body><h1>poolbench diagnose: ERROR (exit {})</h1>\n<p>{}</p>\n<p>database: {}</p>\n</body></html>\n",
        exit_code, esc(why), esc(url.empty() ? "(not known yet)" : url));
}

}  // namespace poolbench::cli
