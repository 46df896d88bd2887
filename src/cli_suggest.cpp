// cli_suggest.cpp — "did you mean": the nearest valid name for a mistyped command or option.
#include "cli.hpp"

#include "cli11.hpp"
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace poolbench::cli {

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = up;
        }
    }
    return row[b.size()];
}

// The first --word no option of `command` or `app` matches, and its nearest option (cli.hpp).
std::string unknown_option(const CLI::App& app, const CLI::App& command, int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--") break;  // what follows is positional
        if (arg.size() < 3 || arg.substr(0, 2) != "--") continue;
        const std::string name(arg.substr(0, arg.find('=')));
        if (command.get_option_no_throw(name) != nullptr || app.get_option_no_throw(name) != nullptr) continue;
        const std::string_view typed = std::string_view(name).substr(2);
        std::string nearest;
        std::size_t best = typed.size() > 8 ? 4 : 3;
        for (const CLI::Option* o : command.get_options()) {
            for (const std::string& long_name : o->get_lnames()) {
                if (const std::size_t d = edit_distance(typed, long_name); d < best) {
                    best = d;
                    nearest = "--" + long_name;
                }
            }
        }
        return fmt::format("unknown option '{}'{}", name, nearest.empty() ? "" : fmt::format("; did you mean '{}'?", nearest));
    }
    return {};
}

}  // namespace poolbench::cli
