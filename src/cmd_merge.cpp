// cmd_merge.cpp — `poolbench merge A.json B.json ... -o ALL.json`: the reports of several
// load generators (agents on other machines, a CI matrix, a Kubernetes Indexed Job) of one
// command and scenario, merged into one report as if one run had made all their
// operations (report_merge.hpp says how each figure is combined). The verdict and the exit
// code are the merged report's: 0 every expectation held on the merged figures, 1 one
// failed, 2 an input that is not a complete report of this version or does not fit the
// others (one line naming the file and what to do).
#include "cli.hpp"
#include "report_files.hpp"
#include "report_merge.hpp"
#include "report_read.hpp"

#include "cli11.hpp"
#include <fmt/format.h>

#include <cstdio>

namespace poolbench::cli {

namespace {

struct MergeOptions {
    std::vector<std::string> inputs;
    std::vector<std::string> expect;
    CommonOptions out;
    bool text = false;
    bool no_progress = false;  ///< accepted, no effect
};

std::string summary(const Report& r) {
    std::string s = fmt::format(
        "merged {} reports (poolbench {}{}): {} operations ({} ok, {} failed, {} timed out), {:.1f} ops/s over {:.3f} s; "
        "op latency p50 {:.1f} us, p99 {:.1f} us, max {:.1f} us\n",
        r.merged_from.size(), r.command, r.scenario ? " " + *r.scenario : std::string(), r.ops.total, r.ops.ok, r.ops.failed, r.ops.timed_out,
        r.throughput_ops_s, r.load_duration_s, r.latency_us.op.p50, r.latency_us.op.p99, r.latency_us.op.max);
    for (const auto& n : r.notes) s += fmt::format("note: {}\n", n);
    for (const auto& e : r.expectations) {
        if (e.passed) continue;
        s += fmt::format("FAILED: {}{}: {}\n", e.scope.empty() ? "" : e.scope + ": ", e.name,
                         e.note.empty() ? fmt::format("actual {:g}", e.actual) : e.note);
    }
    s += fmt::format("verdict: {}\n", r.passed() ? "PASS" : "FAIL");
    return s;
}

ExitCode run_merge(MergeOptions& o) {
    std::vector<ProtectedFile> inputs;
    for (const auto& path : o.inputs) inputs.push_back({path, "one of merge's inputs"});
    check_report_targets(o.out, inputs);  // no output may replace an agent's report
    arm_error_reports(o.out, "merge");
    std::vector<MergeInput> reports;
    for (const auto& path : o.inputs) reports.push_back({path, read_report_for_merge(path)});
    const Report merged = merge_reports(reports, o.expect);

    const bool json_to_stdout = o.out.json == "-";
    const std::string text = o.text ? make_text_renderer()->render(merged) : summary(merged);
    std::FILE* text_out = json_to_stdout ? stderr : stdout;
    std::fputs(text.c_str(), text_out);
    std::fflush(text_out);
    disarm_error_reports();
    ExitCode code = merged.passed() ? ExitCode::ok : ExitCode::failed;
    auto write = [&](const char* flag, const std::string& path, const Renderer& renderer) {
        if (!path.empty() && !write_report_output(flag, path, renderer.render(merged))) code = ExitCode::usage;
    };
    write("-o", o.out.json, *make_json_renderer());
    write("--junit", o.out.junit, *make_junit_renderer());
    write("--html", o.out.html, *make_html_renderer());
    return code;
}

}  // namespace

Command add_merge_command(CLI::App& app) {
    auto o = std::make_shared<MergeOptions>();
    CLI::App* cmd = app.add_subcommand(
        "merge",
        "Merge the JSON reports of several agents (one command and scenario, run at the same time on several machines "
        "or processes) into one: counts and latency histograms summed, percentiles recomputed, throughput over the "
        "span from the earliest start to the latest end, expectations judged on the merged figures");
    cmd->add_option("REPORTS", o->inputs, "The agents' reports (poolbench stress|soak|run|leak ... --json FILE)")
        ->required()
        ->expected(1, -1)
        ->type_name("A.json B.json ...");
    o->out.json_option = cmd->add_option("-o,--output,--json", o->out.json,
                                         "Write the merged JSON report to FILE, or to stdout with '-'")
                             ->required()
                             ->type_name("FILE|-");
    o->out.junit_option = cmd->add_option("--junit", o->out.junit, "Write the merged expectations as JUnit XML to FILE")
                              ->type_name("FILE");
    o->out.html_option = cmd->add_option("--html", o->out.html, "Write the merged report as one HTML page to FILE")
                             ->type_name("FILE");
    cmd->add_flag("--text", o->text, "Print the whole text report of the merged run (default: a summary)");
    cmd->add_option("--expect", o->expect,
                    "One more expectation on the merged report, PATH OP VALUE (e.g. \"latency_us.op.p99 < 5ms\"); "
                    "repeat for more")
        ->type_name("EXPR");
    cmd->add_flag("--no-progress", o->no_progress, "Accepted for scripts that pass it to every command");
    return Command{cmd, [o] { return run_merge(*o); }};
}

}  // namespace poolbench::cli
