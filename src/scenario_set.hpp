// scenario_set.hpp — applying --set KEY=VALUE overrides to a scenario's TOML.
//
// Thread-safety: a free function; reentrant.
#pragma once

#include <toml++/toml.h>

#include <map>
#include <string>
#include <vector>

namespace poolbench::cli {

/// Applies each "KEY=VALUE" of `sets` to `root` in order (grammar: scenario_file.hpp's
/// load_scenario) and returns, for each node set, the --set that set it (so an error in
/// its value names the --set, not the file). A phase's ops and duration replace each
/// other. Throws UsageFailure for an unknown key or a missing phase or fault.
[[nodiscard]] std::map<const toml::node*, std::string> apply_sets(toml::table& root, const std::vector<std::string>& sets);

}  // namespace poolbench::cli
