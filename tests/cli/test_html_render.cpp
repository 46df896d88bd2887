// test_html_render.cpp — the HTML report as a browser draws it: headless Chromium (Debian
// `chromium`, installed by scripts/bootstrap.sh) takes a screenshot of a real run's page,
// libpng decodes it, and each chart's plot area — found by its frame colour, which the
// page uses nowhere else (html_chart.hpp) — must hold drawn pixels: its series' colours
// and, on the timeline charts, the shaded fault window. Chromium missing is a failure,
// not a skip; it runs with a throwaway profile and HOME, and is killed (its whole process
// group) when it takes longer than its bound.
#include "cli_support.hpp"

#include "../../src/html_chart.hpp"

#include <png.h>

#include <csignal>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

using namespace clitest;
namespace chart = poolbench::cli::chart;

namespace {

/// `name` found on PATH, or "".
std::string on_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
    std::size_t start = 0;
    while (start <= dirs.size()) {
        const std::size_t end = std::min(dirs.find(':', start), dirs.size());
        const fs::path candidate = fs::path(dirs.substr(start, end - start)) / name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
        start = end + 1;
    }
    return {};
}

/// Runs `argv` in its own process group with HOME=`home`, output to files in `dir`; kills
/// the group when it runs longer than `limit_ms`. Returns the exit code (-1: killed).
int run_bounded(const fs::path& dir, const fs::path& home, std::vector<std::string> argv, int limit_ms) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    std::vector<std::string> env_storage;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string entry(*e);
        if (entry.rfind("HOME=", 0) != 0) env_storage.push_back(entry);
    }
    env_storage.push_back("HOME=" + home.string());
    std::vector<char*> envp;
    for (auto& e : env_storage) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, (dir / "browser.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, (dir / "browser.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, args[0], &actions, &attr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    REQUIRE(rc == 0);
    int status = 0;
    // A bounded poll for the browser to exit (50 ms apart), then the whole group is killed.
    for (int waited = 0;; waited += 50) {
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) break;
        if (waited >= limit_ms) {
            ::kill(-pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return -1;
        }
        ::usleep(50'000);
    }
    ::kill(-pid, SIGKILL);  // helpers it left behind, if any
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct Image {
    unsigned width = 0, height = 0;
    std::vector<std::uint8_t> rgb;
    [[nodiscard]] std::uint32_t at(unsigned x, unsigned y) const {
        const std::size_t i = (static_cast<std::size_t>(y) * width + x) * 3;
        return (std::uint32_t{rgb[i]} << 16) | (std::uint32_t{rgb[i + 1]} << 8) | rgb[i + 2];
    }
};

Image read_png(const fs::path& p) {
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    REQUIRE(png_image_begin_read_from_file(&image, p.c_str()) != 0);
    image.format = PNG_FORMAT_RGB;
    Image out;
    out.width = image.width;
    out.height = image.height;
    out.rgb.resize(PNG_IMAGE_SIZE(image));
    REQUIRE(png_image_finish_read(&image, nullptr, out.rgb.data(), 0, nullptr) != 0);
    return out;
}

std::uint32_t colour(const char* hex) { return static_cast<std::uint32_t>(std::stoul(std::string(hex + 1), nullptr, 16)); }

struct Box {
    unsigned x0, y0, x1, y1;  // the frame's corners, inclusive
};

/// The plot frames: rows with a run of at least `min_run` pixels of the frame colour are a
/// frame's top or bottom edge; runs with the same ends pair up in order, top then bottom,
/// and both vertical edges must be there between them.
std::vector<Box> find_frames(const Image& img, std::uint32_t frame, unsigned min_run) {
    std::map<std::pair<unsigned, unsigned>, std::vector<unsigned>> runs;  // (x0, x1) -> rows
    for (unsigned y = 0; y < img.height; ++y) {
        unsigned x = 0;
        while (x < img.width) {
            if (img.at(x, y) != frame) {
                ++x;
                continue;
            }
            const unsigned start = x;
            while (x < img.width && img.at(x, y) == frame) ++x;
            if (x - start >= min_run) runs[{start, x - 1}].push_back(y);
        }
    }
    std::vector<Box> boxes;
    for (const auto& [ends, rows] : runs) {
        for (std::size_t i = 0; i + 1 < rows.size(); i += 2) {
            const Box b{ends.first, rows[i], ends.second, rows[i + 1]};
            const unsigned mid = (b.y0 + b.y1) / 2;
            if (b.y1 > b.y0 + 20 && img.at(b.x0, mid) == frame && img.at(b.x1, mid) == frame) boxes.push_back(b);
        }
    }
    std::sort(boxes.begin(), boxes.end(), [](const Box& a, const Box& b) { return a.y0 < b.y0; });
    return boxes;
}

}  // namespace

TEST_CASE("html render: headless Chromium draws every chart of a run with phases and a fault", "[cli][html]") {
    const std::string chromium = on_path("chromium");
    if (chromium.empty()) {
        FAIL("chromium is not installed: the HTML render test needs it (Debian package 'chromium'); run "
             "scripts/bootstrap.sh");
    }
    TempDir dir;
    write_file(dir.path() / "s.toml", R"(
[scenario]
description = "two phases, a latency fault in the second"

[pool]
max_size = 4

[[phase]]
name = "warmup"
threads = 4
duration = "600ms"

[[phase]]
name = "load"
threads = 8
duration = "1500ms"

[[phase.fault]]
kind = "latency"
at = "400ms"
for = "600ms"
latency = "2ms"
)");
    const auto r = run_in(dir.path(), {"run", "./s.toml", "--db", "null://", "--no-progress", "--json", "r.json",
                                       "--html", "r.html"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(slurp(dir.path() / "r.json"));
    CHECK(j.at("timeline").size() >= 20);
    for (const auto& p : j.at("timeline")) require_number_fields(p, {"p50_us", "acquire_p50_us", "acquire_p99_us"});
    REQUIRE_FALSE(j.at("latency_histogram_us").at("op").empty());
    std::uint64_t binned = 0;
    for (const auto& b : j.at("latency_histogram_us").at("op")) binned += b.at("count").get<std::uint64_t>();
    CHECK(binned == j.at("latency_us").at("op").at("count").get<std::uint64_t>());

    const std::string html = slurp(dir.path() / "r.html");
    CHECK(html.find("<script") == std::string::npos);
    CHECK(html.find("http://") == html.find("http://www.w3.org/2000/svg"));  // only the SVG namespace
    CHECK(html.find("https://") == std::string::npos);
    std::vector<std::string> ids;
    for (auto at = html.find("<svg class=\"chart\" id=\""); at != std::string::npos;
         at = html.find("<svg class=\"chart\" id=\"", at + 1)) {
        const auto start = at + 23;
        ids.push_back(html.substr(start, html.find('"', start) - start));
    }
    REQUIRE(ids == std::vector<std::string>{"chart-throughput", "chart-acquire-latency", "chart-op-latency",
                                            "chart-occupancy", "chart-latency-histogram"});

    fs::create_directories(dir.path() / "home");
    const fs::path shot = dir.path() / "shot.png";
    const int code = run_bounded(dir.path(), dir.path() / "home",
                                 {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                  "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
                                  "--force-device-scale-factor=1", "--user-data-dir=" + (dir.path() / "profile").string(),
                                  "--screenshot=" + shot.string(), "--window-size=1100,2600",
                                  "file://" + (dir.path() / "r.html").string()},
                                 120'000);
    INFO("chromium stderr: " << slurp(dir.path() / "browser.err"));
    REQUIRE(code == 0);
    REQUIRE(fs::exists(shot));
    const Image img = read_png(shot);
    REQUIRE(img.width == 1100);
    REQUIRE(img.height == 2600);

    // Not blank: text, tables and charts put many colours on the page.
    std::size_t non_white = 0;
    std::map<std::uint32_t, std::size_t> palette;
    for (unsigned y = 0; y < img.height; y += 2) {
        for (unsigned x = 0; x < img.width; x += 2) {
            const auto c = img.at(x, y);
            non_white += c != 0xffffff ? 1 : 0;
            ++palette[c];
        }
    }
    CHECK(non_white > img.width * img.height / 4 / 10);
    CHECK(palette.size() > 100);

    const auto frames = find_frames(img, colour(chart::plot_frame), 600);
    REQUIRE(frames.size() == ids.size());
    const std::uint32_t fill = colour(chart::plot_fill), grid = colour(chart::grid_line);
    // The colour each chart's first series is drawn in (render_html_charts.cpp).
    const std::map<std::string, std::uint32_t> series_colour{
        {"chart-throughput", 0x0969da}, {"chart-acquire-latency", 0x8250df}, {"chart-op-latency", 0x8250df},
        {"chart-occupancy", 0x1a7f37}, {"chart-latency-histogram", 0xbf3989}};
    for (std::size_t i = 0; i < frames.size(); ++i) {
        const Box& b = frames[i];
        INFO(ids[i] << " at " << b.x0 << "," << b.y0 << " - " << b.x1 << "," << b.y1);
        CHECK(b.x1 - b.x0 > 800);
        std::size_t area = 0, ink = 0, series = 0, fault = 0, background = 0;
        for (unsigned y = b.y0 + 1; y < b.y1; ++y) {
            for (unsigned x = b.x0 + 1; x < b.x1; ++x) {
                const auto c = img.at(x, y);
                ++area;
                background += c == fill ? 1 : 0;
                ink += c != fill && c != grid ? 1 : 0;
                series += c == series_colour.at(ids[i]) ? 1 : 0;
                const unsigned red = c >> 16, green = (c >> 8) & 0xff, blue = c & 0xff;
                // orange #f0883e at 22% over the plot (or a tinted phase): red well above blue
                fault += red >= 225 && red >= blue + 25 && green > blue ? 1 : 0;
            }
        }
        CHECK(background > area / 10);  // the plot area is there...
        CHECK(ink > area / 50);         // ...and something is drawn on it
        CHECK(series >= 20);            // in the series' own colour
        if (ids[i] != "chart-latency-histogram") CHECK(fault > area / 50);  // the fault window, shaded
    }
}
