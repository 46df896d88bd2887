// report_read.cpp — the checks a report passes before `poolbench merge` uses it, and a
// latency entry's buckets read back into a Histogram (the library's: no second copy of
// its bucket arithmetic).
#include "report_read.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace poolbench::cli {

namespace {

using Json = nlohmann::ordered_json;

constexpr const char* how_to_make = "give a report written by 'poolbench stress|soak|run|leak ... --json FILE'";

std::uint64_t ns_of_us(double us) { return static_cast<std::uint64_t>(std::llround(us * 1000.0)); }

bool is_number_at(const Json& j, const char* pointer) {
    const Json::json_pointer p(pointer);
    return j.contains(p) && j.at(p).is_number();
}

}  // namespace

Json read_report_for_merge(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        throw UsageFailure(fmt::format("merge: {} is a directory; give the agents' JSON report files", path));
    }
    std::ifstream in(path);
    if (!in) throw UsageFailure(fmt::format("merge: cannot read {}: {}", path, std::strerror(errno)));
    std::stringstream text;
    text << in.rdbuf();
    Json j;
    try {
        j = Json::parse(text.str());
    } catch (const Json::parse_error& e) {
        throw UsageFailure(fmt::format("merge: {} is not valid JSON (at byte {}); {}", path, e.byte, how_to_make));
    }
    const std::string schema = j.is_object() && j.contains("schema") && j["schema"].is_string()
                                   ? j["schema"].get<std::string>()
                                   : std::string{};
    if (schema.rfind("poolbench/report@", 0) != 0) {
        throw UsageFailure(fmt::format("merge: {} is not a poolbench report (schema '{}'); {}", path, schema,
                                       how_to_make));
    }
    if (schema != report_schema) {
        throw UsageFailure(fmt::format("merge: {} has schema '{}'; this poolbench merges {} reports (re-run that "
                                       "agent with this version)",
                                       path, schema, report_schema));
    }
    const std::string verdict = j.contains("verdict") && j["verdict"].is_string() ? j["verdict"].get<std::string>() : "";
    if (verdict == "error") {
        const Json::json_pointer message("/error/message");
        throw UsageFailure(fmt::format(
            "merge: {} is an error report (the run did not complete: {}); re-run that agent", path,
            j.contains(message) && j.at(message).is_string() ? j.at(message).get<std::string>() : "verdict 'error'"));
    }
    if (verdict != "pass" && verdict != "fail") {
        throw UsageFailure(fmt::format("merge: {} has verdict '{}' (a complete report says pass or fail); {}", path,
                                       verdict, how_to_make));
    }
    for (const char* pointer : {"/ops/total", "/ops/ok", "/ops/failed", "/ops/timed_out", "/latency_us/op/count"}) {
        if (!is_number_at(j, pointer)) {
            throw UsageFailure(fmt::format("merge: {} has no number {} (is it a complete poolbench report?)", path,
                                           std::string(pointer + 1)));
        }
    }
    if (!j.contains("/latency_us/op/buckets"_json_pointer) || !is_number_at(j, "/load_started_at_unix_ms") ||
        !is_number_at(j, "/started_at_unix_ms")) {
        const Json::json_pointer version("/tool/version");
        throw UsageFailure(fmt::format(
            "merge: {} has no histogram buckets or load start and end (written by poolbench {}, before reports "
            "carried them); re-run that agent with this version",
            path, j.contains(version) && j.at(version).is_string() ? j.at(version).get<std::string>() : "unknown"));
    }
    return j;
}

Histogram histogram_from_json(const Json& entry, const std::string& where) {
    Histogram h;
    if (!entry.is_object() || !entry.contains("count") || !entry["count"].is_number_unsigned()) {
        throw UsageFailure(fmt::format("merge: {} is not a latency entry with a count", where));
    }
    const auto count = entry["count"].get<std::uint64_t>();
    if (count == 0) return h;
    if (!entry.contains("buckets") || !entry["buckets"].is_array() || !entry.contains("min") ||
        !entry.contains("max") || !entry.contains("mean")) {
        throw UsageFailure(fmt::format("merge: {} has no buckets, min, max or mean; re-run that agent with this version",
                                       where));
    }
    std::uint64_t seen = 0;
    for (const auto& b : entry["buckets"]) {
        if (!b.is_array() || b.size() != 2 || !b[0].is_number() || !b[1].is_number_unsigned() || b[0].get<double>() < 0) {
            throw UsageFailure(fmt::format("merge: {}: a bucket is not [upper_us, count]: {}", where, b.dump()));
        }
        const std::uint64_t high = ns_of_us(b[0].get<double>());
        const std::size_t index = Histogram::bucket_of(high);
        if (Histogram::bucket_high(index) != high) {
            throw UsageFailure(fmt::format("merge: {}: {} us is no bucket's upper bound (a histogram of another "
                                           "layout?)",
                                           where, b[0].dump()));
        }
        h.add_raw(index, b[1].get<std::uint64_t>());
        seen += b[1].get<std::uint64_t>();
    }
    if (seen != count) {
        throw UsageFailure(fmt::format("merge: {}: the buckets hold {} values but count says {}", where, seen, count));
    }
    const double mean_ns = entry["mean"].get<double>() * 1000.0;
    h.set_sum_min_max(static_cast<std::uint64_t>(std::llround(mean_ns * static_cast<double>(count))),
                      ns_of_us(entry["min"].get<double>()), ns_of_us(entry["max"].get<double>()));
    return h;
}

namespace {

std::uint64_t count_at(const Json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

}  // namespace

std::vector<NodeRecord> pools_from_json(const Json& report) {
    std::vector<NodeRecord> out;
    const auto it = report.find("pools");
    if (it == report.end() || !it->is_object()) return out;
    for (const auto& [name, j] : it->items()) {
        if (!j.is_object()) continue;
        NodeRecord n;
        n.name = name;
        n.role = j.value("role", std::string());
        n.url = j.value("url", std::string());
        n.reads = count_at(j, "reads");
        n.writes = count_at(j, "writes");
        n.read_failures = count_at(j, "read_failures");
        if (j.contains("state") && j.at("state").is_string()) n.state = j.at("state").get<std::string>();
        if (j.contains("left_rotation")) n.left_rotation = count_at(j, "left_rotation");
        if (j.contains("rows_verified")) n.rows_verified = count_at(j, "rows_verified");
        out.push_back(std::move(n));
    }
    return out;
}

std::optional<RouterSection> router_from_json(const Json& report) {
    const auto it = report.find("router");
    if (it == report.end() || !it->is_object()) return std::nullopt;
    return RouterSection{it->value("strategy", std::string()), count_at(*it, "reads_retried"),
                         count_at(*it, "reads_rerouted"), count_at(*it, "primary_fallbacks"),
                         count_at(*it, "no_replica_errors")};
}

}  // namespace poolbench::cli
