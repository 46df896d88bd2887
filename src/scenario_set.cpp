// scenario_set.cpp — "--set KEY=VALUE" overrides applied to a scenario's TOML before it
// is read, so a value set on the command line is checked exactly as one in the file.
#include "scenario_set.hpp"

#include "cli.hpp"

#include <fmt/format.h>

#include <cstdlib>

namespace poolbench::cli {

namespace {

/// The node a "--set KEY=VALUE" replaces, created in `root`; throws on an unknown KEY.
toml::table* set_target(toml::table& root, const std::string& key, std::string& leaf, const std::string& set) {
    std::vector<std::string> parts;
    for (std::size_t start = 0;;) {
        const auto dot = key.find('.', start);
        parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    auto table_of = [&](const char* name) -> toml::table* {
        if (auto* t = root.get_as<toml::table>(name)) return t;
        root.insert_or_assign(name, toml::table{});
        return root.get_as<toml::table>(name);
    };
    auto phases = [&]() -> toml::array* {
        auto* a = root.get_as<toml::array>("phase");
        if (a == nullptr) throw UsageFailure(fmt::format("--set {}: the scenario has no phases", set));
        return a;
    };
    const std::string grammar =
        "use scenario.KEY, database.url, pool.KEY, phase.NAME.KEY or phase.NAME.fault.N.KEY";
    if (parts.size() == 2 && (parts[0] == "scenario" || parts[0] == "pool" || parts[0] == "database")) {
        leaf = parts[1];
        return table_of(parts[0].c_str());
    }
    if (parts.size() >= 3 && parts[0] == "phase") {
        toml::table* phase = nullptr;
        std::string names;
        std::size_t index = 0;
        for (auto& node : *phases()) {
            ++index;
            auto* t = node.as_table();
            if (t == nullptr) continue;
            const auto* n = t->get_as<std::string>("name");
            const std::string name = n != nullptr ? n->get() : fmt::format("phase{}", index);
            names += (names.empty() ? "" : ", ") + name;
            if (name == parts[1]) phase = t;
        }
        if (phase == nullptr) throw UsageFailure(fmt::format("--set {}: no phase named '{}' (phases: {})", set, parts[1], names));
        if (parts.size() == 3) {
            leaf = parts[2];
            return phase;
        }
        if (parts.size() == 5 && parts[2] == "fault") {
            auto* faults = phase->get_as<toml::array>("fault");
            char* end = nullptr;
            const unsigned long n = std::strtoul(parts[3].c_str(), &end, 10);
            const std::size_t count = faults == nullptr ? 0 : faults->size();
            if (parts[3].empty() || *end != '\0' || n < 1 || n > count) {
                throw UsageFailure(fmt::format("--set {}: phase '{}' has {} fault{}; N counts them from 1", set, parts[1],
                                               count, count == 1 ? "" : "s"));
            }
            leaf = parts[4];
            return (*faults)[n - 1].as_table();
        }
    }
    throw UsageFailure(fmt::format("--set {}: unknown key '{}' ({})", set, key, grammar));
}

}  // namespace

std::map<const toml::node*, std::string> apply_sets(toml::table& root, const std::vector<std::string>& sets) {
    std::map<const toml::node*, std::string> from_set;
    for (const auto& set : sets) {
        const auto eq = set.find('=');
        if (eq == std::string::npos || eq == 0) {
            throw UsageFailure(fmt::format("--set {}: expected KEY=VALUE, e.g. --set phase.steady.duration=30m", set));
        }
        const std::string key = set.substr(0, eq);
        const std::string value = set.substr(eq + 1);
        std::string leaf;
        toml::table* target = set_target(root, key, leaf, set);
        // Typed as in the file: 30 is a number, true a boolean; 30m or write (not TOML) is text.
        toml::table parsed;
        try {
            parsed = toml::parse("v = " + value);
        } catch (const toml::parse_error&) {
            parsed = toml::table{};
            parsed.insert_or_assign("v", value);
        }
        target->insert_or_assign(leaf, *parsed.get("v"));
        // A phase is bounded by duration or by ops: setting one replaces the other.
        if (leaf == "ops") target->erase("duration");
        if (leaf == "duration" && key.rfind("phase.", 0) == 0 && key.find(".fault.") == std::string::npos) {
            target->erase("ops");
        }
        from_set[target->get(leaf)] = set;
    }

    return from_set;
}

}  // namespace poolbench::cli
