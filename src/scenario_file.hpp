// scenario_file.hpp — reading a scenario from TOML, with --set overrides, into a
// ScenarioSpec. Every mistake is one UsageFailure line naming file:line:column (or the
// --set that caused it) and what was expected, before anything runs.
//
// Thread-safety: free functions; reentrant.
#pragma once

#include "scenario.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace poolbench::cli {

/// Parses `path` (TOML), applies each "KEY=VALUE" of `sets` in order, and converts the
/// result. --set grammar: scenario.KEY, database.url, pool.KEY, phase.NAME.KEY,
/// phase.NAME.fault.N.KEY (N counts the phase's faults from 1); VALUE is read as a TOML
/// value (30, 0.5, true, "text") and, when it is not one, as text (30m, write).
/// Throws UsageFailure.
[[nodiscard]] ScenarioSpec load_scenario(const std::filesystem::path& path, const std::vector<std::string>& sets);

/// The directories searched for shipped scenarios, in order: $POOLBENCH_SCENARIOS, the
/// install's share/poolbench/scenarios beside the binary, the source checkout's.
[[nodiscard]] std::vector<std::filesystem::path> scenario_dirs();

/// Resolves FILE|NAME as `poolbench run` documents: an argument with a '/' or ending in
/// .toml is a file; anything else is a shipped name. Sets `note` when a file of that
/// name also exists in the working directory. Throws UsageFailure.
[[nodiscard]] std::filesystem::path resolve_scenario(const std::string& arg, std::string& note);

}  // namespace poolbench::cli
