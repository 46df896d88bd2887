// cmd_compare.cpp — `poolbench compare BASE.json NEW.json`: the regression check a CI
// job runs after a load run, against a report it kept from an earlier one.
//
// Judged (exit 1 when any regressed):
//   throughput_ops_s         fell by more than --throughput-drop percent
//   latency_us.op.p50/p99    rose by more than --latency-rise percent and by at least
//                            latency_floor_us (sub-microsecond swings on null:// are noise)
//   failed + timed out ops   a higher share of NEW's operations than of BASE's
//   leaks                    more reported leases in NEW
//   writes.lost              any in NEW
//   verdict                  NEW failed its own expectations
// Shown, not judged: acquire p99, hit ratio, waits per operation, connections created.
// Runs that differ in command, backend, workload, threads or pool size are still compared;
// each difference is printed on a "note:" line first.
// Exit 2 for a file that cannot be read, is not JSON, or is not a poolbench report.
// --junit FILE: one test case per judged check; --html FILE: the table and BASE and NEW
// overlaid in charts (compare_render.cpp).
#include "cli.hpp"
#include "compare_render.hpp"
#include "human.hpp"
#include "report_files.hpp"

#include "cli11.hpp"
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace poolbench::cli {

namespace {

using Json = nlohmann::json;

constexpr double latency_floor_us = 5.0;

struct CompareOptions {
    std::string base_path, new_path;
    double throughput_drop_pct = 10.0;
    double latency_rise_pct = 25.0;
    std::string json, junit, html;
    const CLI::Option* json_option = nullptr;
    const CLI::Option* junit_option = nullptr;
    const CLI::Option* html_option = nullptr;
    bool no_progress = false;  ///< accepted, no effect
};

Json load_report(const std::string& path, std::string_view role) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        throw UsageFailure(fmt::format("compare: {} report {} is a directory; give the JSON file", role, path));
    }
    std::ifstream in(path);
    if (!in) throw UsageFailure(fmt::format("compare: cannot read {} report {}: {}", role, path, std::strerror(errno)));
    std::stringstream text;
    text << in.rdbuf();
    Json j;
    try {
        j = Json::parse(text.str());
    } catch (const Json::parse_error& e) {
        throw UsageFailure(fmt::format("compare: {} report {} is not valid JSON (at byte {}); give a file written by "
                                       "'poolbench ... --json FILE'",
                                       role, path, e.byte));
    }
    const Json* schema_value = j.is_object() && j.contains("schema") ? &j["schema"] : nullptr;
    const std::string schema =
        schema_value != nullptr && schema_value->is_string() ? schema_value->get<std::string>() : std::string{};
    if (schema.rfind("poolbench/report@", 0) != 0) {
        throw UsageFailure(fmt::format("compare: {} report {} is not a poolbench report (schema '{}'); give a file "
                                       "written by 'poolbench ... --json FILE'",
                                       role, path, schema));
    }
    if (schema != "poolbench/report@1") {
        throw UsageFailure(fmt::format("compare: {} report {} has schema '{}'; this poolbench reads "
                                       "poolbench/report@1",
                                       role, path, schema));
    }
    if (j.contains("verdict") && j["verdict"] == "error") {
        const Json* message = j.contains("/error/message"_json_pointer) ? &j.at("/error/message"_json_pointer) : nullptr;
        throw UsageFailure(fmt::format("compare: {} report {} is from a run that did not complete ({}); run it again",
                                       role, path,
                                       message != nullptr && message->is_string() ? message->get<std::string>()
                                                                                   : std::string("verdict 'error'")));
    }
    // The judged fields must be there, with the right types: a report that lacks them
    // must not pass as "no regression".
    for (const auto& [pointer, type] : std::vector<std::pair<const char*, const char*>>{
             {"/throughput_ops_s", "number"},
             {"/ops/total", "number"},
             {"/ops/failed", "number"},
             {"/ops/timed_out", "number"},
             {"/latency_us/op/p50", "number"},
             {"/latency_us/op/p99", "number"},
             {"/leaks", "array"},
             {"/verdict", "string"}}) {
        const Json::json_pointer ptr(pointer);
        const bool ok = j.contains(ptr) && (std::string_view(type) == "number"  ? j.at(ptr).is_number()
                                            : std::string_view(type) == "array" ? j.at(ptr).is_array()
                                                                                 : j.at(ptr).is_string());
        if (!ok) {
            throw UsageFailure(fmt::format("compare: {} report {} has no {} {} (is it a complete poolbench report?)",
                                           role, path, type, std::string(pointer + 1)));
        }
    }
    const std::string verdict = j["verdict"].get<std::string>();
    if (verdict != "pass" && verdict != "fail") {
        throw UsageFailure(fmt::format("compare: {} report {} has verdict '{}' (a report says pass or fail)", role,
                                       path, verdict));
    }
    for (const char* pointer : {"/throughput_ops_s", "/ops/total", "/ops/failed", "/ops/timed_out",
                                "/latency_us/op/p50", "/latency_us/op/p99"}) {
        const double v = j.at(Json::json_pointer(pointer)).get<double>();
        if (!(v >= 0) || !std::isfinite(v)) {
            throw UsageFailure(fmt::format("compare: {} report {} has {} = {} (must be a finite number >= 0)", role,
                                           path, std::string(pointer + 1), v));
        }
    }
    return j;
}

/// The number at a JSON pointer, or nullopt when absent or not a number.
std::optional<double> number_at(const Json& j, const char* pointer) {
    const Json::json_pointer p(pointer);
    if (!j.contains(p)) return std::nullopt;
    const Json& v = j.at(p);
    if (!v.is_number()) return std::nullopt;
    return v.get<double>();
}

std::string text_at(const Json& j, const char* pointer) {
    const Json::json_pointer p(pointer);
    if (!j.contains(p)) return "-";
    const Json& v = j.at(p);
    return v.is_string() ? v.get<std::string>() : v.dump(-1, ' ', false, Json::error_handler_t::replace);
}

using Row = CompareRow;

std::string fmt_value(const std::optional<double>& v, const Row& r) { return compare_value(v, r); }
std::optional<double> change_pct(const Row& r) { return compare_change_pct(r); }

double failure_share(const Json& j) {
    const double total = number_at(j, "/ops/total").value_or(0);
    const double bad = number_at(j, "/ops/failed").value_or(0) + number_at(j, "/ops/timed_out").value_or(0) +
                       number_at(j, "/ops/statement_timeouts").value_or(0);
    return total > 0 ? bad / total * 100.0 : 0.0;
}

std::vector<std::string> differences(const Json& a, const Json& b) {
    std::vector<std::string> out;
    for (const auto& [label, pointer] : std::vector<std::pair<const char*, const char*>>{
             {"command", "/command"},
             {"backend", "/database/backend"},
             {"workload", "/config/workload"},
             {"threads", "/config/threads"},
             {"pool size", "/config/pool_max"},
             {"target rate (ops/s; a paced run's throughput follows it)", "/config/rate_ops_s"}}) {
        const std::string x = text_at(a, pointer), y = text_at(b, pointer);
        if (x != y) out.push_back(fmt::format("{} {} vs {}", label, x, y));
    }
    return out;
}

std::vector<Row> compare(const Json& base, const Json& now, const CompareOptions& o) {
    std::vector<Row> rows;
    {
        Row r{"throughput (ops/s)", number_at(base, "/throughput_ops_s"), number_at(now, "/throughput_ops_s"),
              fmt::format("-{:g}%", o.throughput_drop_pct)};
        r.unit = CompareUnit::rate;
        r.regressed = r.base && r.now && *r.now < *r.base * (1.0 - o.throughput_drop_pct / 100.0);
        rows.push_back(r);
    }
    for (const auto& [name, pointer] : std::vector<std::pair<const char*, const char*>>{
             {"op latency p50 (us)", "/latency_us/op/p50"}, {"op latency p99 (us)", "/latency_us/op/p99"}}) {
        Row r{name, number_at(base, pointer), number_at(now, pointer), fmt::format("+{:g}%", o.latency_rise_pct)};
        r.unit = CompareUnit::micros;
        r.regressed = r.base && r.now && *r.now > *r.base * (1.0 + o.latency_rise_pct / 100.0) &&
                      *r.now - *r.base >= latency_floor_us;
        rows.push_back(r);
    }
    {
        Row r{"failed + timed out (% of ops)", failure_share(base), failure_share(now), "any rise"};
        r.decimals = 3;
        r.unit = CompareUnit::percent;
        r.regressed = *r.now > *r.base;
        rows.push_back(r);
    }
    {
        auto count = [](const Json& j) -> std::optional<double> {
            if (!j.contains("leaks") || !j["leaks"].is_array()) return std::nullopt;
            return static_cast<double>(j["leaks"].size());
        };
        Row r{"leaks reported", count(base), count(now), "any rise"};
        r.unit = CompareUnit::count;
        r.regressed = r.now && *r.now > r.base.value_or(0);
        rows.push_back(r);
    }
    {
        Row r{"writes lost", number_at(base, "/writes/lost"), number_at(now, "/writes/lost"), "any"};
        r.unit = CompareUnit::count;
        r.regressed = r.now && *r.now > 0;
        rows.push_back(r);
    }
    {
        Row r{"acquire latency p99 (us)", number_at(base, "/latency_us/acquire/p99"),
              number_at(now, "/latency_us/acquire/p99"), ""};
        r.unit = CompareUnit::micros;
        rows.push_back(r);
    }
    {
        Row r{"pool hit ratio", number_at(base, "/pool/hit_ratio"), number_at(now, "/pool/hit_ratio"), ""};
        r.decimals = 4;
        rows.push_back(r);
    }
    {
        auto per_op = [](const Json& j) -> std::optional<double> {
            const auto waits = number_at(j, "/pool/waits");
            const auto total = number_at(j, "/ops/total");
            if (!waits || !total || *total == 0) return std::nullopt;
            return *waits / *total;
        };
        Row r{"queued acquires per op", per_op(base), per_op(now), ""};
        r.decimals = 4;
        rows.push_back(r);
    }
    {
        Row r{"connections created", number_at(base, "/pool/created"), number_at(now, "/pool/created"), ""};
        r.unit = CompareUnit::count;
        rows.push_back(r);
    }
    {
        Row r{"own verdict failed (1 = yes)", text_at(base, "/verdict") == "fail" ? 1.0 : 0.0,
              text_at(now, "/verdict") == "fail" ? 1.0 : 0.0, "NEW fails"};
        r.regressed = *r.now > 0;
        rows.push_back(r);
    }
    return rows;
}

ExitCode run_compare(const CompareOptions& o) {
    if (!std::isfinite(o.throughput_drop_pct) || !std::isfinite(o.latency_rise_pct)) {
        throw UsageFailure("compare: --throughput-drop and --latency-rise take a number of percent");
    }
    CommonOptions out;
    out.json = o.json;
    out.json_option = o.json_option;
    out.junit = o.junit;
    out.junit_option = o.junit_option;
    out.html = o.html;
    out.html_option = o.html_option;
    // The inputs are what a CI job keeps: --json must never replace one of them.
    check_report_targets(out, {{o.base_path, "compare's BASE report"}, {o.new_path, "compare's NEW report"}});
    arm_error_reports(out, "compare");
    const Json base = load_report(o.base_path, "BASE");
    const Json now = load_report(o.new_path, "NEW");

    const auto notes = differences(base, now);
    const auto rows = compare(base, now, o);
    std::size_t regressions = 0;
    for (const auto& r : rows) regressions += r.regressed ? 1 : 0;

    std::string text = fmt::format("compare: {} (BASE) -> {} (NEW)\n", o.base_path, o.new_path);
    for (const auto& n : notes) text += fmt::format("note: the runs differ: {}\n", n);
    text += fmt::format("{:<32} {:>14} {:>14} {:>10}  {}\n", "metric", "base", "new", "change", "verdict");
    for (const auto& r : rows) {
        const auto c = change_pct(r);
        const std::string change = !c ? "-" : human_change_pct(*c);
        std::string verdict = r.limit.empty() ? "(not judged)"
                                              : fmt::format("{} (limit {})", r.regressed ? "REGRESSED" : "ok", r.limit);
        text += fmt::format("{:<32} {:>14} {:>14} {:>10}  {}\n", compare_label(r), fmt_value(r.base, r),
                            fmt_value(r.now, r), change, verdict);
    }
    text += regressions == 0 ? "result: no regression\n"
                             : fmt::format("result: {} regression{}\n", regressions, regressions == 1 ? "" : "s");

    Json j{{"schema", "poolbench/compare@1"}, {"base", o.base_path}, {"new", o.new_path},
           {"throughput_drop_pct", o.throughput_drop_pct}, {"latency_rise_pct", o.latency_rise_pct},
           {"latency_floor_us", latency_floor_us}, {"differences", notes}};
    Json metrics = Json::array();
    for (const auto& r : rows) {
        const auto c = change_pct(r);
        metrics.push_back(Json{{"name", r.name},
                               {"base", r.base ? Json(*r.base) : Json(nullptr)},
                               {"new", r.now ? Json(*r.now) : Json(nullptr)},
                               {"change_pct", c ? Json(std::round(*c * 10) / 10) : Json(nullptr)},
                               {"judged", !r.limit.empty()},
                               {"regressed", r.regressed}});
    }
    j["metrics"] = std::move(metrics);
    j["regressions"] = regressions;
    j["verdict"] = regressions == 0 ? "pass" : "fail";

    emit_text_and_json(text, j.dump(2, ' ', false, Json::error_handler_t::replace), o.json);
    const CompareResult result{o.base_path, o.new_path, notes, rows, regressions, &base, &now};
    ExitCode code = regressions == 0 ? ExitCode::ok : ExitCode::failed;
    if (!o.junit.empty() && !write_report_output("--junit", o.junit, render_compare_junit(result, text)))
        code = ExitCode::usage;
    if (!o.html.empty() && !write_report_output("--html", o.html, render_compare_html(result))) code = ExitCode::usage;
    return code;
}

}  // namespace

Command add_compare_command(CLI::App& app) {
    auto options = std::make_shared<CompareOptions>();
    CLI::App* cmd = app.add_subcommand(
        "compare",
        "Compare two JSON reports (BASE, then NEW) and fail (exit 1) when NEW regressed: throughput, op latency, "
        "errors, leaks or lost writes");
    cmd->add_option("BASE", options->base_path, "The earlier report (poolbench ... --json FILE)")
        ->required()
        ->type_name("BASE.json");
    cmd->add_option("NEW", options->new_path, "The report to judge against it")->required()->type_name("NEW.json");
    cmd->add_option("--throughput-drop", options->throughput_drop_pct,
                    "Largest throughput drop, in percent, that is not a regression")
        ->check(CLI::Range(0.0, 100.0))
        ->capture_default_str()
        ->type_name("PCT");
    cmd->add_option("--latency-rise", options->latency_rise_pct,
                    fmt::format("Largest rise of op latency p50/p99, in percent, that is not a regression (rises "
                                "under {:g} us never are)",
                                latency_floor_us))
        ->check(CLI::Range(0.0, 10000.0))
        ->capture_default_str()
        ->type_name("PCT");
    options->json_option =
        cmd->add_option("--json", options->json, "Write the comparison as JSON to FILE, or to stdout with '-'")
            ->type_name("FILE|-");
    options->junit_option =
        cmd->add_option("--junit", options->junit,
                        "Write the judged checks as JUnit XML to FILE (one test case each, a failure per regression)")
            ->type_name("FILE");
    options->html_option =
        cmd->add_option("--html", options->html,
                        "Write the comparison as one self-contained HTML page (BASE and NEW charted) to FILE")
            ->type_name("FILE");
    cmd->add_flag("--no-progress", options->no_progress,
                  "Accepted for scripts that pass it to every command (no progress line here)");
    return Command{cmd, [options] { return run_compare(*options); }};
}

}  // namespace poolbench::cli
