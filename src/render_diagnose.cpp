// render_diagnose.cpp — diagnose's text, JSON ("poolbench/diagnose@2": stable snake_case
// keys, numbers as numbers, each finding with its level, code, text and action) and JUnit
// (one test case per finding, named by its code and stable subject, never by figures;
// a <failure> for each problem, the figures in the message and <system-out>).
#include "diagnose.hpp"
#include "human.hpp"
#include "markup.hpp"
#include "report.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>

namespace poolbench::cli {

namespace {

using Json = nlohmann::json;

Json json_of(const FactValue& v) {
    return std::visit(
        [](const auto& x) -> Json {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::monostate>) {
                return nullptr;
            } else {
                return x;
            }
        },
        v);
}

Json opt(const std::optional<std::int64_t>& v) { return v ? Json(*v) : Json(nullptr); }

std::string verdict_line(const DiagnoseResult& r) {
    return r.problems > 0 ? fmt::format("verdict: FAIL ({} problem{}, {} warning{})\n", r.problems,
                                        r.problems == 1 ? "" : "s", r.warnings, r.warnings == 1 ? "" : "s")
                          : fmt::format("verdict: PASS ({} warning{})\n", r.warnings, r.warnings == 1 ? "" : "s");
}

}  // namespace

std::string fact_text(const FactValue& v) {
    return std::visit(
        [](const auto& x) -> std::string {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::monostate>) {
                return "-";
            } else if constexpr (std::is_same_v<T, bool>) {
                return x ? "true" : "false";
            } else if constexpr (std::is_same_v<T, std::string>) {
                return x;
            } else {
                return fmt::format("{}", x);
            }
        },
        v);
}

std::string render_diagnose_text(const DiagnoseResult& r) {
    const Diagnosis& d = r.diagnosis;
    std::string out = fmt::format("database: {} (backend {})\nserver: {}\n", r.db.redacted, to_string(r.db.backend), d.server);
    out += fmt::format("connect, read-only ({} samples): p50 {:.3f} ms, min {:.3f} ms, max {:.3f} ms\n", r.samples,
                       r.connect_p50_ms, r.connect_min_ms, r.connect_max_ms);
    out += fmt::format("SELECT 1 round trip ({} samples): p50 {:.1f} us, p99 {:.1f} us\n", r.samples,
                       r.round_trip_p50_us, r.round_trip_p99_us);
    for (const auto& f : d.facts) out += fmt::format("{}: {}\n", f.key, fact_text(f.value));
    for (const auto& t : d.tables) {
        out += fmt::format("\n{} ({}):\n", t.title, t.key);
        std::vector<std::size_t> width(t.columns.size());
        for (std::size_t c = 0; c < t.columns.size(); ++c) width[c] = t.columns[c].size();
        for (const auto& row : t.rows) {
            for (std::size_t c = 0; c < row.size() && c < width.size(); ++c) {
                width[c] = std::min<std::size_t>(std::max(width[c], fact_text(row[c]).size()), 60);
            }
        }
        auto line = [&](const std::vector<std::string>& cells) {
            std::string l = " ";
            for (std::size_t c = 0; c < cells.size(); ++c) l += fmt::format(" {:<{}}", cells[c], width[c]);
            while (!l.empty() && l.back() == ' ') l.pop_back();
            return l + "\n";
        };
        out += line(t.columns);
        for (const auto& row : t.rows) {
            std::vector<std::string> cells;
            for (const auto& v : row) cells.push_back(fact_text(v));
            out += line(cells);
        }
    }
    out += "\npool size:";
    if (r.sizing.max_size) {
        out += fmt::format(" max_size {}{}\n", *r.sizing.max_size,
                           r.sizing.min_idle ? fmt::format(", min_idle {}", *r.sizing.min_idle) : std::string());
    } else {
        out += " no recommendation\n";
    }
    for (const auto& why : r.sizing.reasoning) out += "  - " + why + "\n";
    if (r.ladder) {
        out += "SELECT 1 ladder (read-only):\n";
        for (const auto& s : r.ladder->steps) {
            out += fmt::format("  {:>4} connections  {:>12.0f} ops/s\n", s.connections, s.ops_s);
        }
        out += fmt::format("  {}{}\n", r.ladder->stopped_because,
                           r.ladder->knee ? fmt::format(": the knee is at {} connections", *r.ladder->knee) : std::string());
    }
    out += "\nfindings:\n";
    for (const auto& f : d.findings) {
        out += fmt::format("[{}] {}: {}\n", to_string(f.level), f.code, f.text);
        if (!f.action.empty() && f.level != FindingLevel::ok) out += fmt::format("    what to do: {}\n", f.action);
    }
    out += verdict_line(r);
    return out;
}

std::string render_diagnose_json(const DiagnoseResult& r) {
    const Diagnosis& d = r.diagnosis;
    Json j{{"schema", "poolbench/diagnose@2"},
           {"database", Json{{"backend", to_string(r.db.backend)}, {"url", r.db.redacted}}},
           {"server", d.server},
           {"local", d.local},
           {"connect_ms", Json{{"samples", r.samples}, {"p50", r.connect_p50_ms}, {"min", r.connect_min_ms}, {"max", r.connect_max_ms}}},
           {"round_trip_us", Json{{"samples", r.samples}, {"p50", r.round_trip_p50_us}, {"p99", r.round_trip_p99_us}}}};
    Json facts = Json::object();
    for (const auto& f : d.facts) facts[f.key] = json_of(f.value);
    j["facts"] = std::move(facts);
    Json tables = Json::object();
    for (const auto& t : d.tables) {
        Json rows = Json::array();
        for (const auto& row : t.rows) {
            Json o = Json::object();
            for (std::size_t c = 0; c < row.size() && c < t.columns.size(); ++c) o[t.columns[c]] = json_of(row[c]);
            rows.push_back(std::move(o));
        }
        tables[t.key] = Json{{"title", t.title}, {"columns", t.columns}, {"rows", std::move(rows)}};
    }
    j["tables"] = std::move(tables);
    const SizingInput& in = r.sizing_input;
    j["pool_size"] = Json{{"recommended_max_size", opt(r.sizing.max_size)},
                          {"recommended_min_idle", opt(r.sizing.min_idle)},
                          {"formula", opt(r.sizing.formula)},
                          {"per_instance", opt(r.sizing.per_instance)},
                          {"free_connections_cap", opt(r.sizing.cap)},
                          {"server_cores", opt(in.server_cores)},
                          {"server_cores_source", in.cores_source},
                          {"spindles_assumed", in.spindles},
                          {"app_instances", in.app_instances},
                          {"free_connections", opt(in.free_connections)},
                          {"reasoning", r.sizing.reasoning}};
    if (r.ladder) {
        Json steps = Json::array();
        for (const auto& s : r.ladder->steps) steps.push_back(Json{{"connections", s.connections}, {"ops_s", s.ops_s}});
        j["ladder"] = Json{{"steps", std::move(steps)}, {"knee_connections", opt(r.ladder->knee)}, {"stopped_because", r.ladder->stopped_because}};
    } else {
        j["ladder"] = nullptr;
    }
    Json findings = Json::array();
    for (const auto& f : d.findings) {
        findings.push_back(Json{{"level", to_string(f.level)}, {"code", f.code}, {"text", f.text}, {"action", f.action}});
    }
    j["findings"] = std::move(findings);
    j["summary"] = Json{{"problems", r.problems}, {"warnings", r.warnings}};
    j["verdict"] = r.problems > 0 ? "fail" : "pass";
    return j.dump(2, ' ', false, Json::error_handler_t::replace);
}

std::string render_diagnose_junit(const DiagnoseResult& r, const std::string& text) {
    const auto& findings = r.diagnosis.findings;
    const std::string suite = "poolbench diagnose " + r.db.redacted;
    std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out += fmt::format("<testsuites name=\"poolbench\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"0\">\n",
                       findings.size(), r.problems);
    out += fmt::format(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"0\" timestamp=\"{}\">\n",
        markup_escape(suite), findings.size(), r.problems, markup_escape(format_utc(std::chrono::system_clock::now())));
    const std::string classname = fmt::format("poolbench.diagnose.{}", to_string(r.db.backend));
    for (const auto& f : findings) {
        out += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"0\">", markup_escape(classname),
                           markup_escape(f.subject.empty() ? f.code : f.code + " " + f.subject));
        if (f.level == FindingLevel::problem) {
            out += fmt::format("\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    ", markup_escape(f.code),
                               markup_escape(f.text), markup_escape("what to do: " + f.action));
        } else {
            out += fmt::format("\n      <system-out>{}</system-out>\n    ",
                               markup_escape(std::string(f.level == FindingLevel::warn ? "warning: " : "ok: ") + f.text +
                                             (f.action.empty() ? std::string() : "\nwhat to do: " + f.action)));
        }
        out += "</testcase>\n";
    }
    out += fmt::format("    <system-out>{}</system-out>\n  </testsuite>\n</testsuites>\n", markup_escape(text));
    return out;
}

}  // namespace poolbench::cli
