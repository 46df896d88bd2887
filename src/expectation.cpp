// expectation.cpp — parsing and evaluating "PATH OP VALUE[UNIT]" on a JSON report.
#include "expectation.hpp"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <vector>

namespace poolbench::cli {

namespace {

using Json = nlohmann::ordered_json;

enum class PathUnit { none, us, ms, s };

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::vector<std::string> split_path(std::string_view path) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (true) {
        const auto dot = path.find('.', start);
        out.emplace_back(path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return out;
}

PathUnit unit_of(std::string_view path) {
    PathUnit unit = PathUnit::none;
    for (const auto& key : split_path(path)) {
        if (ends_with(key, "_us")) {
            unit = PathUnit::us;
        } else if (ends_with(key, "_ms")) {
            unit = PathUnit::ms;
        } else if (ends_with(key, "_s") && !ends_with(key, "_ops_s")) {
            unit = PathUnit::s;
        }
    }
    return unit;
}

/// Microseconds in one UNIT; 0 for an unknown unit.
double unit_us(std::string_view unit) {
    if (unit == "us" || unit == "µs") return 1;
    if (unit == "ms") return 1e3;
    if (unit == "s") return 1e6;
    if (unit == "m") return 60e6;
    if (unit == "h") return 3600e6;
    return 0;
}

double path_unit_us(PathUnit u) {
    switch (u) {
        case PathUnit::us: return 1;
        case PathUnit::ms: return 1e3;
        case PathUnit::s: return 1e6;
        case PathUnit::none: break;
    }
    return 0;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

/// The node at `path` in `root`, or null when absent; `why` names the first missing key.
const Json* find(const Json& root, std::string_view path, std::string& why) {
    const Json* node = &root;
    std::string walked;
    for (const auto& key : split_path(path)) {
        const std::string here = walked.empty() ? key : walked + "." + key;
        if (node->is_object()) {
            const auto it = node->find(key);
            if (it == node->end()) {
                std::string keys;
                for (const auto& [k, v] : node->items()) {
                    if (v.is_number() || v.is_object() || v.is_null() || v.is_boolean()) keys += (keys.empty() ? "" : ", ") + k;
                }
                why = fmt::format("the report has no '{}'{}", here,
                                  keys.empty() ? "" : fmt::format(" (at {}: {})", walked.empty() ? "the top" : walked, keys));
                return nullptr;
            }
            node = &*it;
        } else if (node->is_array()) {
            char* end = nullptr;
            const unsigned long index = std::strtoul(key.c_str(), &end, 10);
            if (key.empty() || *end != '\0' || index >= node->size()) {
                why = fmt::format("'{}' is a list of {}; '{}' is not an index in it", walked, node->size(), key);
                return nullptr;
            }
            node = &(*node)[index];
        } else {
            why = fmt::format("'{}' is a value, it has no '{}'", walked, key);
            return nullptr;
        }
        walked = here;
    }
    return node;
}

}  // namespace

std::optional<ParsedExpectation> parse_expectation(std::string_view text, std::string& error) {
    const std::string_view t = trim(text);
    static constexpr std::array<std::string_view, 6> ops{"<=", ">=", "==", "!=", "<", ">"};
    std::size_t at = std::string_view::npos;
    std::string_view op;
    for (std::size_t i = 0; i < t.size() && at == std::string_view::npos; ++i) {
        for (const auto candidate : ops) {
            if (t.substr(i, candidate.size()) == candidate) {
                at = i;
                op = candidate;
                break;
            }
        }
    }
    if (at == std::string_view::npos) {
        error = fmt::format("expectation '{}' has no comparison: write PATH OP VALUE, e.g. \"latency_us.op.p99 < 50ms\" "
                            "(OP is one of < <= > >= == !=)",
                            t);
        return std::nullopt;
    }
    ParsedExpectation e;
    e.text = std::string(t);
    e.path = std::string(trim(t.substr(0, at)));
    e.op = std::string(op);
    const std::string value_text(trim(t.substr(at + op.size())));
    if (e.path.empty() || e.path.find_first_of(" \t") != std::string::npos) {
        error = fmt::format("expectation '{}': '{}' is not a report path (dot-separated keys, e.g. latency_us.op.p99)",
                            t, e.path);
        return std::nullopt;
    }
    char* end = nullptr;
    const double number = std::strtod(value_text.c_str(), &end);
    if (end == value_text.c_str() || !std::isfinite(number)) {
        error = fmt::format("expectation '{}': '{}' is not a number (with an optional unit: us, ms, s, m, h)", t,
                            value_text);
        return std::nullopt;
    }
    const std::string unit(trim(std::string_view(end)));
    const PathUnit path_unit = unit_of(e.path);
    if (unit.empty()) {
        e.value = number;
    } else if (unit_us(unit) == 0) {
        error = fmt::format("expectation '{}': unknown unit '{}' (use us, ms, s, m or h)", t, unit);
        return std::nullopt;
    } else if (path_unit == PathUnit::none) {
        error = fmt::format("expectation '{}': {} is not a time, so '{}' takes a plain number", t, e.path, value_text);
        return std::nullopt;
    } else {
        e.value = number * unit_us(unit) / path_unit_us(path_unit);
    }
    return e;
}

std::string check_expectation_path(const ParsedExpectation& e, const Json& report) {
    std::string why;
    const Json* node = find(report, e.path, why);
    if (node == nullptr) return why;
    if (!node->is_number() && !node->is_null() && !node->is_boolean()) {
        return fmt::format("'{}' is not a number in the report (it holds {})", e.path,
                           node->is_object() ? "an object" : node->is_array() ? "a list" : "text");
    }
    return {};
}

namespace {
/// What a null figure at `path` means, for an expectation's note (docs/report.md).
std::string null_note(const std::string& path) {
    const std::string_view last = std::string_view(path).substr(path.rfind('.') == std::string::npos ? 0 : path.rfind('.') + 1);
    if (last == "recovery_ms") return "no value (not recovered by the end of its phase)";
    if (last == "outage_ms") return "no value (still failing when its phase ended)";
    if (last == "failover_ms") return "no value (the replica never left the rotation)";
    if (last == "rejoin_ms") return "no value (the replica was not back in rotation by the end of its phase)";
    if (path.rfind("writes.", 0) == 0) return "no value (the rows were not counted: see writes.error)";
    return "no value in this run (null in the report)";
}
}  // namespace

Expectation evaluate_expectation(const ParsedExpectation& e, const Json& scope, std::string scope_name) {
    Expectation out;
    out.name = e.text;
    out.scope = std::move(scope_name);
    out.expected = fmt::format("{} {}", e.op, e.value);
    std::string why;
    const Json* node = find(scope, e.path, why);
    if (node == nullptr || node->is_null()) {
        out.note = node == nullptr ? why : null_note(e.path);
        out.passed = false;
        return out;
    }
    // A latency percentile of no samples is no evidence either way.
    if (const auto dot = e.path.rfind('.'); e.path.rfind("latency_us.", 0) == 0 && dot != std::string::npos) {
        std::string ignored;
        const Json* count = find(scope, e.path.substr(0, dot) + ".count", ignored);
        if (count != nullptr && count->is_number() && count->get<double>() == 0) {
            out.note = "no samples";
            out.passed = false;
            return out;
        }
    }
    const double actual = node->is_boolean() ? (node->get<bool>() ? 1.0 : 0.0) : node->get<double>();
    out.actual = actual;
    if (e.op == "<") out.passed = actual < e.value;
    else if (e.op == "<=") out.passed = actual <= e.value;
    else if (e.op == ">") out.passed = actual > e.value;
    else if (e.op == ">=") out.passed = actual >= e.value;
    else if (e.op == "==") out.passed = actual == e.value;
    else out.passed = actual != e.value;
    return out;
}

}  // namespace poolbench::cli
