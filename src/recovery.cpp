// recovery.cpp — recovery_ms from a phase's timeline.
#include "recovery.hpp"

#include <algorithm>

namespace poolbench::cli {

Recovery measure_recovery(const std::vector<TimelinePoint>& timeline, const std::vector<ErrorCounts>& interval_errors,
                          double start_s, double end_s) {
    Recovery r;
    const std::size_t n = timeline.size();
    auto begin_of = [&](std::size_t i) { return i == 0 ? 0.0 : timeline[i - 1].t_s; };

    // The level: the mean of the full intervals that ended before the fault (the first
    // one too: a pool warms up in microseconds); with none, the median after it.
    double sum = 0;
    std::size_t count = 0;
    for (std::size_t i = 0; i < n && timeline[i].t_s <= start_s; ++i) {
        sum += timeline[i].ops_s;
        ++count;
    }
    if (count > 0) {
        r.basis = "before";
        r.level_ops_s = sum / static_cast<double>(count);
    } else {
        r.basis = "after";
        std::vector<double> after;
        // The last interval is usually a partial one; its rate is noise.
        for (std::size_t i = 0; i + 1 < n; ++i) {
            if (begin_of(i) >= end_s) after.push_back(timeline[i].ops_s);
        }
        if (!after.empty()) {
            std::nth_element(after.begin(), after.begin() + static_cast<long>(after.size() / 2), after.end());
            r.level_ops_s = after[after.size() / 2];
        }
    }

    auto at_level = [&](std::size_t i) {
        return timeline[i].ops_s >= recovery_share * r.level_ops_s && timeline[i].failed == 0 && timeline[i].ops_s > 0;
    };
    // From interval i on, recovery_successes operations succeed before any fails.
    auto confirmed = [&](std::size_t i) {
        double successes = 0;
        for (std::size_t k = i; k < n; ++k) {
            if (timeline[k].failed != 0) return false;
            successes += timeline[k].ops_s * (timeline[k].t_s - begin_of(k));
            if (successes >= recovery_successes - 1e-9) return true;
        }
        return false;
    };
    std::size_t recovered_at = n;  // index of the interval the recovery starts in
    for (std::size_t i = 0; i < n; ++i) {
        if (timeline[i].t_s <= end_s) continue;  // an interval that ends after the fault counts
        if (at_level(i) && confirmed(i)) {
            recovered_at = i;
            r.recovery_ms = std::max(0.0, begin_of(i) - end_s) * 1000.0;
            break;
        }
    }

    // What failed from the fault's start until it recovered (or the phase ended).
    const double window_end = recovered_at < n ? begin_of(recovered_at) : timeline.empty() ? end_s : timeline.back().t_s;
    double stall_begin = -1;
    for (std::size_t i = 0; i < n; ++i) {
        if (timeline[i].t_s <= start_s || begin_of(i) >= std::max(window_end, end_s)) continue;
        if (timeline[i].ops_s <= 0) {
            if (stall_begin < 0) stall_begin = begin_of(i);
            r.stalled_ms = std::max(r.stalled_ms, (timeline[i].t_s - stall_begin) * 1000.0);
        } else {
            stall_begin = -1;
        }
        r.failed += timeline[i].failed;
        if (i < interval_errors.size()) {
            for (std::size_t k = 0; k < r.errors_by_class.size(); ++k) r.errors_by_class[k] += interval_errors[i][k];
        }
    }
    return r;
}

}  // namespace poolbench::cli
