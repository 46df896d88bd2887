// stats.cpp — the names of DestroyReason and BreakerState values (stats.hpp), used as
// report keys.
#include "poolbench/stats.hpp"

namespace poolbench {

std::string_view to_string(BreakerState s) noexcept {
    switch (s) {
        case BreakerState::closed: return "closed";
        case BreakerState::open: return "open";
        case BreakerState::half_open: return "half_open";
    }
    return "unknown";
}

std::string_view to_string(DestroyReason r) noexcept {
    switch (r) {
        case DestroyReason::broken: return "broken";
        case DestroyReason::validation: return "validation";
        case DestroyReason::reset: return "reset";
        case DestroyReason::idle: return "idle";
        case DestroyReason::lifetime: return "lifetime";
        case DestroyReason::shutdown: return "shutdown";
        case DestroyReason::surplus: return "surplus";
        case DestroyReason::evicted: return "evicted";
        case DestroyReason::revoked: return "revoked";
        case DestroyReason::count_: break;
    }
    return "unknown";
}

}  // namespace poolbench
