// render_junit.cpp — the report as JUnit XML (--junit FILE), the format CI systems
// (GitLab, Jenkins, GitHub Actions reporters) read: one <testsuite> per run, one
// <testcase> per expectation, a <failure> for each that did not hold, the run's settings
// as <property> elements and the text report in <system-out>.
#include "human.hpp"
#include "markup.hpp"
#include "report.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace poolbench::cli {

namespace {

std::string xml(std::string_view text) { return markup_escape(text); }

/// "poolbench.<scenario or command>[.<phase>[.faultN]]": unique across merged files, and
/// free of spaces and parentheses that CI viewers read as packages.
std::string classname_of(const Report& r, const std::string& scope) {
    std::string name = "poolbench." + (r.scenario ? *r.scenario : r.command);
    // scope: "phase NAME" or "fault N (KIND) in phase NAME"
    if (scope.rfind("phase ", 0) == 0) {
        name += "." + scope.substr(6);
    } else if (scope.rfind("fault ", 0) == 0) {
        const auto space = scope.find(' ', 6);
        const auto in = scope.rfind(" in phase ");
        if (space != std::string::npos && in != std::string::npos) {
            name += "." + scope.substr(in + 10) + ".fault" + scope.substr(6, space - 6);
        }
    }
    for (char& c : name) {
        if (c == ' ' || c == '(' || c == ')') c = '_';
    }
    return name;
}

/// The test case that says the run did not complete (exit 2, 3 or 130).
std::string error_case(const Report& r) {
    const std::string message = fmt::format("exit {}: {}", r.error->exit_code, r.error->message);
    return fmt::format(
        "    <testcase classname=\"{}\" name=\"run completed\" time=\"0\">\n      <error type=\"exit {}\" "
        "message=\"{}\">{}</error>\n    </testcase>\n",
        xml(classname_of(r, {})), r.error->exit_code, xml(message), xml(message));
}

/// A command that failed before it ran: one test case with the <error>.
std::string render_error_only(const Report& r) {
    const std::string suite = "poolbench " + r.command + (r.scenario ? " " + *r.scenario : "");
    std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out += "<testsuites name=\"poolbench\" tests=\"1\" failures=\"0\" errors=\"1\" time=\"0\">\n";
    out += fmt::format(
        "  <testsuite name=\"{}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0\" timestamp=\"{}\">\n",
        xml(suite), xml(format_utc(std::chrono::system_clock::now())));
    if (r.error) out += error_case(r);
    out += "  </testsuite>\n</testsuites>\n";
    return out;
}

class JunitRenderer final : public Renderer {
public:
    [[nodiscard]] std::string render(const Report& r) const override {
        if (!r.ran) return render_error_only(r);
        std::size_t failures = 0;
        for (const auto& e : r.expectations) failures += e.passed ? 0 : 1;
        const std::string suite = "poolbench " + r.command + (r.scenario ? " " + *r.scenario : "");
        const std::string time = fmt::format("{:.3f}", r.duration_s);
        std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
        const std::size_t errors = r.error ? 1 : 0;
        const std::size_t tests = r.expectations.size() + errors;
        out += fmt::format("<testsuites name=\"poolbench\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{}\">\n",
                           tests, failures, errors, time);
        out += fmt::format(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{}\" "
            "timestamp=\"{}\">\n",
            xml(suite), tests, failures, errors, time, xml(format_utc(std::chrono::system_clock::now())));
        out += "    <properties>\n";
        auto property = [&](std::string_view name, const std::string& value) {
            out += fmt::format("      <property name=\"{}\" value=\"{}\"/>\n", xml(name), xml(value));
        };
        property("database", r.url_redacted);
        property("backend", r.backend);
        if (!r.prepared_statements.empty()) property("prepared_statements", r.prepared_statements);
        property("workload", r.config.workload);
        property("threads", fmt::format("{}", r.config.threads));
        property("pool_max", fmt::format("{}", r.config.pool_max));
        property("throughput_ops_s", fmt::format("{:.1f}", r.throughput_ops_s));
        property("ops_total", fmt::format("{}", r.ops.total));
        property("verdict", r.verdict());
        out += "    </properties>\n";
        for (const auto& e : r.expectations) {
            // CI groups test cases by class: the command, then the scope ("phase load",
            // "fault 1 (sqlite.lock) in phase load").
            const std::string classname = classname_of(r, e.scope);
            const std::string name = e.scope.empty() ? e.name : e.scope + ": " + e.name;
            out += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"0\"", xml(classname), xml(name));
            if (e.passed) {
                out += "/>\n";
                continue;
            }
            const std::string message =
                fmt::format("expected {}, actual {}", e.expected, e.note.empty() ? human_number(e.actual) : e.note);
            out += fmt::format(">\n      <failure type=\"expectation\" message=\"{}\">{}</failure>\n    </testcase>\n",
                               xml(message), xml(message));
        }
        if (r.error) out += error_case(r);
        out += fmt::format("    <system-out>{}</system-out>\n", xml(make_text_renderer()->render(r)));
        out += "  </testsuite>\n</testsuites>\n";
        return out;
    }
};

}  // namespace

std::unique_ptr<Renderer> make_junit_renderer() { return std::make_unique<JunitRenderer>(); }

}  // namespace poolbench::cli
