// rotation_times.cpp — the router's reaction to a replica fault (rotation_times.hpp).
#include "rotation_times.hpp"

#include <algorithm>

namespace poolbench::cli {

using Clock = std::chrono::steady_clock;

namespace {
bool in_rotation(NodeState s) { return s == NodeState::healthy; }
}  // namespace

RotationTimes rotation_times(const std::vector<RotationEvent>& history, Clock::time_point started,
                             std::optional<Clock::time_point> ended) {
    auto ms = [](Clock::time_point from, Clock::time_point to) {
        return std::max(0.0, std::chrono::duration<double, std::milli>(to - from).count());
    };
    RotationTimes out;
    // Its state when the fault started: the last change before it (none: unchecked).
    bool in = false;
    auto it = history.begin();
    for (; it != history.end() && it->at_steady < started; ++it) in = in_rotation(it->to);
    if (!in) {
        out.failover_ms = 0.0;
    } else {
        for (; it != history.end(); ++it) {
            if (!in_rotation(it->to)) {
                out.failover_ms = ms(started, it->at_steady);
                ++it;
                break;
            }
        }
        if (!out.failover_ms) return out;  // never left: nothing to return from
    }
    if (!ended) return out;
    // Its state when the fault ended: back already (the router saw the restarted server
    // before the start command returned) is 0. Otherwise the first return after the end.
    // A return during the fault followed by another leave (a check that passed on a pooled
    // connection while the server was still shutting down) is not a return.
    bool in_at_end = false;
    for (; it != history.end() && it->at_steady < *ended; ++it) in_at_end = in_rotation(it->to);
    if (in_at_end) {
        out.rejoin_ms = 0.0;
        return out;
    }
    for (; it != history.end(); ++it) {
        if (in_rotation(it->to)) {
            out.rejoin_ms = ms(*ended, it->at_steady);
            break;
        }
    }
    return out;
}

}  // namespace poolbench::cli
