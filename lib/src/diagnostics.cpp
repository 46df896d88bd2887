// diagnostics.cpp — the out-of-line parts of diagnostics.hpp, and Driver::diagnose's
// default (minimal) answer.
#include "poolbench/connection.hpp"
#include "poolbench/diagnostics.hpp"

#include <algorithm>

namespace poolbench {

std::string_view to_string(FindingLevel level) noexcept {
    switch (level) {
        case FindingLevel::ok: return "ok";
        case FindingLevel::warn: return "warn";
        case FindingLevel::problem: return "problem";
    }
    return "unknown";
}

const FactValue* Diagnosis::fact(std::string_view key) const noexcept {
    const auto it = std::find_if(facts.begin(), facts.end(), [&](const Fact& f) { return f.key == key; });
    return it == facts.end() ? nullptr : &it->value;
}

Diagnosis Driver::diagnose(const DiagnoseOptions& /*options*/) {
    Diagnosis d;
    d.server = "unknown (this driver gathers no diagnostics)";
    return d;
}

}  // namespace poolbench
