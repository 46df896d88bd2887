// scenario_find.cpp — where shipped scenarios are, and FILE|NAME resolved as
// `poolbench run` documents.
#include "scenario_file.hpp"

#include "cli.hpp"

#include <fmt/format.h>

#include <cstdlib>

#ifndef POOLBENCH_SOURCE_SCENARIOS
#define POOLBENCH_SOURCE_SCENARIOS ""
#endif

namespace poolbench::cli {

namespace fs = std::filesystem;

std::vector<fs::path> scenario_dirs() {
    std::vector<fs::path> out;
    if (const char* env = std::getenv("POOLBENCH_SCENARIOS"); env != nullptr && *env != '\0') out.emplace_back(env);
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) out.push_back(exe.parent_path().parent_path() / "share" / "poolbench" / "scenarios");
    if (*POOLBENCH_SOURCE_SCENARIOS != '\0') out.emplace_back(POOLBENCH_SOURCE_SCENARIOS);
    return out;
}

fs::path resolve_scenario(const std::string& arg, std::string& note) {
    if (arg.empty()) throw UsageFailure("run: give a scenario file or the name of a shipped one (see 'poolbench scenarios')");
    const bool is_file = arg.find('/') != std::string::npos ||
                         (arg.size() > 5 && arg.compare(arg.size() - 5, 5, ".toml") == 0);
    if (is_file) return fs::path(arg);
    std::error_code ec;
    for (const auto& dir : scenario_dirs()) {
        const fs::path candidate = dir / (arg + ".toml");
        if (fs::is_regular_file(candidate, ec)) {
            if (fs::exists(arg, ec)) {
                note = fmt::format("note: ran the shipped scenario '{}' ({}), not the file ./{} (write ./{} to run that)",
                                   arg, candidate.string(), arg, arg);
            }
            return candidate;
        }
    }
    // The nearest shipped name, for a typo.
    std::string nearest;
    std::size_t best = 4;  // at most 3 edits away
    for (const auto& dir : scenario_dirs()) {
        if (!fs::is_directory(dir, ec)) continue;
        for (const auto& entry : fs::directory_iterator(dir, ec)) {
            if (entry.path().extension() != ".toml") continue;
            const std::string name = entry.path().stem().string();
            if (const std::size_t d = edit_distance(arg, name); d < best) {
                best = d;
                nearest = name;
            }
        }
    }
    throw UsageFailure(fmt::format("run: no shipped scenario named '{}'{} (see 'poolbench scenarios'; a file needs a "
                                   "'/' or the .toml ending)",
                                   arg, nearest.empty() ? "" : fmt::format("; did you mean '{}'?", nearest)));
}

}  // namespace poolbench::cli
