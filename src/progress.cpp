// progress.cpp — the live progress line (pgbench -P style) on stderr.
//
// Only when stderr is a terminal: a piped or redirected stderr (CI logs, tests) never
// gets carriage-return noise. The runner calls update() from its sampler thread; the
// command calls finish() on the main thread after the run, when the sampler is gone.
#include "cli.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <unistd.h>

namespace poolbench::cli {

ProgressLine::ProgressLine(bool no_progress) : enabled_(!no_progress && ::isatty(STDERR_FILENO) == 1) {}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(const ProgressSample& s) {
    if (!enabled_) return;
    const double p99 = s.point.p99_us;
    std::string line = p99 >= 1000.0 ? fmt::format("progress: {:.1f} s, {:.1f} ops/s, p99 {:.3f} ms", s.point.t_s,
                                                   s.point.ops_s, p99 / 1000.0)
                                     : fmt::format("progress: {:.1f} s, {:.1f} ops/s, p99 {:.1f} µs", s.point.t_s,
                                                   s.point.ops_s, p99);
    if (s.max_size > 0) {
        line += fmt::format(", active {}/{}, waiting {}", s.point.active, s.max_size, s.point.waiting);
    }
    line += fmt::format(", failed {}", s.failed);
    // \r and erase-to-end-of-line redraw in place.
    fmt::print(stderr, "\r{}\x1b[K", line);
    std::fflush(stderr);
    drawn_ = true;
}

void ProgressLine::finish() {
    if (!enabled_ || !drawn_) return;
    fmt::print(stderr, "\r\x1b[K");
    std::fflush(stderr);
    drawn_ = false;
}

std::function<void(const ProgressSample&)> ProgressLine::callback() {
    if (!enabled_) return {};
    return [this](const ProgressSample& s) { update(s); };
}

}  // namespace poolbench::cli
