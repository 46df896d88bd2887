// progress.cpp — the live progress line (pgbench -P style) on stderr.
//
// Only when stderr is a terminal: a piped or redirected stderr (CI logs, tests) never
// gets carriage-return noise. The runner calls update() from its sampler thread; the
// command calls finish() on the main thread after the run, when the sampler is gone.
#include "cli.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <sys/ioctl.h>
#include <unistd.h>

namespace poolbench::cli {

ProgressLine::ProgressLine(bool no_progress) : enabled_(!no_progress && ::isatty(STDERR_FILENO) == 1) {}

ProgressLine::ProgressLine(const CommonOptions& options) : ProgressLine(options.no_progress) {
    if (options.progress_every.empty() || options.no_progress) return;
    every_ = parse_duration(options.progress_every, "--progress");
    enabled_ = true;
}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(const ProgressSample& s) {
    if (!enabled_) return;
    if (every_.count() > 0) {
        // One line per interval: at the first sample at or past each multiple of D.
        const double every_s = std::chrono::duration<double>(every_).count();
        // (A new phase starts its clock at 0 again.)
        if (last_printed_s_ >= 0 && s.point.t_s >= last_printed_s_ && s.point.t_s - last_printed_s_ < every_s * 0.999) {
            return;
        }
        last_printed_s_ = s.point.t_s;
    }
    const double p99 = s.point.p99_us;
    const std::string p99_text = s.point.ops_s <= 0 ? std::string("-")
                                 : p99 >= 1000.0    ? fmt::format("{:.3f} ms", p99 / 1000.0)
                                                    : fmt::format("{:.1f} µs", p99);
    std::string line = fmt::format("progress: {:.1f} s, {:.1f} ops/s, p99 {}", s.point.t_s, s.point.ops_s, p99_text);
    if (ops_target_ > 0) {
        const std::uint64_t done = s.ok + s.failed;
        const double pct = 100.0 * static_cast<double>(done) / static_cast<double>(ops_target_);
        line += fmt::format(", {}/{} ops ({:.0f}%)", done, ops_target_, pct);
        const double rate = s.point.t_s > 0 ? static_cast<double>(done) / s.point.t_s : 0;
        if (rate > 0 && done < ops_target_) {
            line += fmt::format(", ~{:.0f} s left", static_cast<double>(ops_target_ - done) / rate);
        }
    }
    if (s.max_size > 0) {
        line += fmt::format(", active {}/{}, waiting {}", s.point.active, s.max_size, s.point.waiting);
    }
    line += fmt::format(", failed {}", s.failed);
    if (every_.count() > 0) {
        fmt::print(stderr, "{}\n", line);
        std::fflush(stderr);
        return;
    }
    // Cut to the terminal's width (a wrapped line cannot be redrawn in place), then \r
    // and erase-to-end-of-line redraw it.
    winsize ws{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 8) {
        std::size_t columns = 0, cut = line.size();
        for (std::size_t i = 0; i < line.size(); ++i) {
            if ((static_cast<unsigned char>(line[i]) & 0xC0U) == 0x80U) continue;  // UTF-8 continuation byte
            if (++columns > static_cast<std::size_t>(ws.ws_col - 1)) {
                cut = i;
                break;
            }
        }
        line.resize(cut);
    }
    fmt::print(stderr, "\r{}\x1b[K", line);
    std::fflush(stderr);
    drawn_ = true;
}

void ProgressLine::finish() {
    if (!enabled_ || !drawn_ || every_.count() > 0) return;
    fmt::print(stderr, "\r\x1b[K");
    std::fflush(stderr);
    drawn_ = false;
}

std::function<void(const ProgressSample&)> ProgressLine::callback() {
    if (!enabled_) return {};
    return [this](const ProgressSample& s) { update(s); };
}

}  // namespace poolbench::cli
