// test_cli_report_files.cpp — --junit FILE (the expectations as JUnit XML for CI test reports)
// and --html FILE (one self-contained page).
#include "cli_support.hpp"

#include <csignal>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fstream>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

namespace {

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("junit: --junit writes one test case per expectation, escaped, with the text report", "[cli][junit]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "500", "--threads", "2",
                                       "--no-progress", "--json", "r.json", "--junit", "r.xml"});
    REQUIRE(r.code == 0);
    const json j = parse_json(slurp(dir.path() / "r.json"));
    const std::string x = slurp(dir.path() / "r.xml");
    const auto n = j.at("expectations").size();
    CHECK(x.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites ", 0) == 0);
    CHECK(count_of(x, "<testcase ") == n);
    CHECK(x.find("tests=\"" + std::to_string(n) + "\" failures=\"0\"") != std::string::npos);
    CHECK(count_of(x, "<failure") == 0);
    CHECK(x.find("name=\"pool.peak_total &lt;= pool.max_size\"") != std::string::npos);  // '<' escaped
    CHECK(x.find("<property name=\"backend\" value=\"null\"/>") != std::string::npos);
    CHECK(x.find("<system-out>command: stress") != std::string::npos);
    CHECK(x.find("</testsuite>\n</testsuites>\n") != std::string::npos);
}

TEST_CASE("junit: --junit marks each expectation that failed, and an unwritable path exits 2", "[cli][junit]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"soak", "--db", "null://", "--rate", "100000000", "--duration", "1s",
                                       "--threads", "1", "--no-progress", "--junit", "s.xml"});
    CHECK(r.code == 1);
    const std::string x = slurp(dir.path() / "s.xml");
    CHECK(count_of(x, "<failure ") == 1);
    CHECK(x.find("failures=\"1\"") != std::string::npos);
    CHECK(x.find("<failure type=\"expectation\" message=\"expected &gt;= 95000000.0, actual ") != std::string::npos);
    CHECK(x.find("classname=\"poolbench.soak\"") != std::string::npos);

    const auto bad = run_in(dir.path(), {"stress", "--db", "null://", "--junit", "/nonexistent-dir/r.xml"});
    CHECK(bad.code == 2);
    CHECK(count_lines(bad.err) == 1);
    CHECK(bad.err.find("--junit") != std::string::npos);
}

TEST_CASE("html: --html writes one self-contained page: verdict, escaped expectations, timeline charts, leak stacks",
          "[cli][html]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--duration", "1s", "--threads", "4",
                                       "--sample-interval", "100ms", "--no-progress", "--json", "r.json", "--html",
                                       "r.html"});
    REQUIRE(r.code == 0);
    const json j = parse_json(slurp(dir.path() / "r.json"));
    const std::string h = slurp(dir.path() / "r.html");
    CHECK(h.rfind("<!DOCTYPE html>", 0) == 0);
    CHECK(h.find("<h1>poolbench stress — <span class=\"pass\">PASS</span></h1>") != std::string::npos);
    CHECK(count_of(h, "<td class=\"pass\">pass</td>") == j.at("expectations").size());
    CHECK(h.find("pool.peak_total &lt;= pool.max_size") != std::string::npos);
    // Throughput, acquire and op latency, occupancy over time, and the latency histogram.
    for (const char* id : {"chart-throughput", "chart-acquire-latency", "chart-op-latency", "chart-occupancy",
                           "chart-latency-histogram"}) {
        INFO(id);
        CHECK(count_of(h, std::string("<svg class=\"chart\" id=\"") + id + "\"") == 1);
    }
    CHECK(count_of(h, "<path class=\"series\"") >= 9);  // ok; p50, p99 twice; active, idle, waiting; pool max
    CHECK_FALSE(std::regex_search(h, std::regex("[0-9]e[+-][0-9]")));  // no exponents on any axis
    CHECK(h.find("<script") == std::string::npos);
    CHECK(h.find("</body></html>\n") != std::string::npos);

    // The leak command's report has leaks, each with the stack that acquired it.
    const auto leak = run_in(dir.path(), {"leak", "--db", "null://", "--threshold", "200ms", "--ops", "200",
                                          "--no-progress", "--html", "leak.html"});
    REQUIRE(leak.code == 0);
    const std::string lh = slurp(dir.path() / "leak.html");
    CHECK(lh.find("<h2>Leaks</h2>") != std::string::npos);
    CHECK(lh.find("poolbench_leak_injected_lease") != std::string::npos);

    const auto bad = run_in(dir.path(), {"stress", "--db", "null://", "--html", "/nonexistent-dir/r.html"});
    CHECK(bad.code == 2);
    CHECK(count_lines(bad.err) == 1);
    CHECK(bad.err.find("--html") != std::string::npos);
}

TEST_CASE("report files: a failed run replaces a stale report with one that says why, and clashing targets exit 2",
          "[cli][junit]") {
    TempDir dir;
    for (const char* name : {"r.json", "r.xml", "r.html"}) std::ofstream(dir.path() / name) << "stale, and green";
    const auto r = run_in(dir.path(), {"stress", "--db", "sqlite:///nonexistent-dir/x.db", "--ops", "10", "--json",
                                       "r.json", "--junit", "r.xml", "--html", "r.html"});
    CHECK(r.code == 3);
    const json j = parse_json(slurp(dir.path() / "r.json"));
    CHECK(j.at("schema") == "poolbench/report@1");
    CHECK(j.at("command") == "stress");
    CHECK(j.at("verdict") == "error");
    CHECK(j.at("error").at("exit_code") == 3);
    CHECK(j.at("error").at("message").get<std::string>().find("cannot use database") != std::string::npos);
    CHECK(j.at("database").at("backend") == "sqlite");
    const std::string x = slurp(dir.path() / "r.xml");
    CHECK(x.find("errors=\"1\"") != std::string::npos);
    CHECK(x.find("<error type=\"exit 3\" message=\"exit 3: cannot use database") != std::string::npos);
    const std::string h = slurp(dir.path() / "r.html");
    CHECK(h.find("ERROR</span></h1>") != std::string::npos);
    CHECK(h.find("The run did not complete (exit 3)") != std::string::npos);

    // A bad URL (exit 2) says so too.
    const auto bad_url = run_in(dir.path(), {"stress", "--db", "oracle://x", "--json", "r.json"});
    CHECK(bad_url.code == 2);
    CHECK(parse_json(slurp(dir.path() / "r.json")).at("error").at("exit_code") == 2);

    for (const char* name : {"r.json", "r.xml", "r.html"}) std::ofstream(dir.path() / name) << "kept";
    const auto dash = run_in(dir.path(), {"stress", "--db", "null://", "--junit", "-", "--json", "r.json"});
    CHECK(dash.code == 2);
    CHECK(dash.err.find("'-' (stdout) is for --json only") != std::string::npos);
    const auto same = run_in(dir.path(), {"stress", "--db", "null://", "--json", "r.json", "--junit", "r.json"});
    CHECK(same.code == 2);
    CHECK(same.err.find("--json and --junit name the same file r.json") != std::string::npos);
    const auto spelled = run_in(dir.path(), {"stress", "--db", "null://", "--json", "r.xml", "--html", "./r.xml"});
    CHECK(spelled.code == 2);
    CHECK(spelled.err.find("name the same file") != std::string::npos);
    const auto empty = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "10", "--json", "", "--html", "r.html"});
    CHECK(empty.code == 2);
    CHECK(empty.err == "poolbench: --json was given an empty file name; name a file, or leave --json out\n");
    // An unsafe target is the one case where nothing is written: the files are as they were.
    for (const char* name : {"r.json", "r.xml", "r.html"}) {
        INFO(name);
        CHECK(slurp(dir.path() / name) == "kept");
    }
}

TEST_CASE("report files: a report never replaces the SQLite database or its companion files", "[cli][junit]") {
    TempDir dir;
    const auto made = run_in(dir.path(), {"stress", "--db", "sqlite://x.db", "--workload", "write", "--ops", "50",
                                          "--threads", "2", "--no-progress"});
    REQUIRE(made.code == 0);
    const std::string before = slurp(dir.path() / "x.db");
    REQUIRE(!before.empty());
    for (const char* target : {"x.db", "./x.db", "x.db-wal", "x.db-shm", "x.db-journal"}) {
        for (const char* flag : {"--json", "--junit", "--html"}) {
            INFO(flag << " " << target);
            const auto r = run_in(dir.path(), {"stress", "--db", "sqlite://x.db", "--ops", "10", flag, target});
            CHECK(r.code == 2);
            CHECK(count_lines(r.err) == 1);
            CHECK(r.err.find("a report must not replace it") != std::string::npos);
        }
    }
    CHECK(slurp(dir.path() / "x.db") == before);
    CHECK_FALSE(fs::exists(dir.path() / "x.db-journal"));
}

TEST_CASE("report files: a report is renamed into place, readable, and leaves no temporary file", "[cli][junit]") {
    TempDir dir;
    fs::create_directory(dir.path() / "out");
    std::ofstream(dir.path() / "out" / "real.json") << "old";
    std::ofstream(dir.path() / "out" / "private.html") << "old";
    fs::permissions(dir.path() / "out" / "private.html", fs::perms::owner_read | fs::perms::owner_write);
    fs::create_symlink("not-yet.xml", dir.path() / "out" / "dangling.xml");
    fs::create_symlink("real.json", dir.path() / "out" / "link.json");
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "100", "--threads", "2", "--no-progress",
                                       "--json", "out/link.json", "--junit", "out/dangling.xml", "--html",
                                       "out/private.html"});
    REQUIRE(r.code == 0);
    // The link is still a link, and the file it names has the report.
    CHECK(fs::is_symlink(dir.path() / "out" / "link.json"));
    CHECK(parse_json(slurp(dir.path() / "out" / "real.json")).at("verdict") == "pass");
    // A dangling link is kept too: the report lands where it points.
    CHECK(fs::is_symlink(dir.path() / "out" / "dangling.xml"));
    CHECK(slurp(dir.path() / "out" / "not-yet.xml").find("<testsuites") != std::string::npos);
    const auto perms = fs::status(dir.path() / "out" / "not-yet.xml").permissions();
    CHECK((perms & fs::perms::owner_read) != fs::perms::none);
    CHECK((perms & fs::perms::others_read) != fs::perms::none);  // not mkstemp's 0600 (umask 022 under ctest)
    // A file replaced keeps its mode: a private report stays private.
    CHECK(fs::status(dir.path() / "out" / "private.html").permissions() ==
          (fs::perms::owner_read | fs::perms::owner_write));
    std::size_t files = 0;
    for (const auto& e : fs::directory_iterator(dir.path() / "out")) {
        INFO(e.path());
        CHECK(e.path().filename().string().find(".poolbench-") == std::string::npos);
        ++files;
    }
    CHECK(files == 5);
}

TEST_CASE("report files: Ctrl-C exits 130 with a report that says it was interrupted", "[cli][junit]") {
    TempDir dir;
    const pid_t pid = spawn_in(dir.path(), {"stress", "--db", "sqlite://x.db", "--duration", "60s", "--threads", "2",
                                            "--progress", "100ms", "--json", "r.json", "--junit", "r.xml"});
    // Interrupt the load, not the preflight (that case has its own test below): the first
    // progress line is printed once the load runs. Polled with a bound: the condition is
    // output of the child's, not a time.
    const auto load_running = [&] { return slurp(dir.path() / "stderr.txt").find("progress: ") != std::string::npos; };
    for (int i = 0; i < 3000 && !load_running(); ++i) ::usleep(10'000);
    REQUIRE(load_running());
    REQUIRE(::kill(pid, SIGINT) == 0);
    const Result r = finish(dir.path(), pid);
    CHECK(r.code == 130);
    const json j = parse_json(slurp(dir.path() / "r.json"));
    CHECK(j.at("interrupted") == true);
    CHECK(j.at("verdict") == "error");
    CHECK(j.at("error").at("exit_code") == 130);
    CHECK(j.at("duration_s").get<double>() < 60.0);
    CHECK(slurp(dir.path() / "r.xml").find("<error type=\"exit 130\"") != std::string::npos);
    CHECK(r.out.find("verdict: ERROR (exit 130): interrupted by a signal") != std::string::npos);
}

TEST_CASE("report files: the same signal sent twice at once (timeout -s INT) is one interrupt, not an abandon",
          "[cli][junit]") {
    TempDir dir;
    write_file(dir.path() / "r.json", "{\"verdict\": \"pass\"}\n");  // a stale report from an earlier run
    const pid_t pid = spawn_in(dir.path(), {"stress", "--db", "sqlite://x.db", "--duration", "60s", "--threads", "2",
                                            "--progress", "100ms", "--json", "r.json"});
    const auto load_running = [&] { return slurp(dir.path() / "stderr.txt").find("progress: ") != std::string::npos; };
    for (int i = 0; i < 3000 && !load_running(); ++i) ::usleep(10'000);
    REQUIRE(load_running());
    // As GNU timeout does: the process, then (here: at once, again) its group.
    REQUIRE(::kill(pid, SIGINT) == 0);
    REQUIRE(::kill(pid, SIGINT) == 0);
    const Result r = finish(dir.path(), pid);
    CHECK(r.code == 130);
    CHECK(r.err.find("abandoned") == std::string::npos);
    const json j = parse_json(slurp(dir.path() / "r.json"));
    CHECK(j.at("interrupted") == true);
    CHECK(j.at("verdict") == "error");
    CHECK(j.contains("phases"));  // the figures were written, not abandoned
}

TEST_CASE("report files: a file path that is not UTF-8 still gives valid UTF-8 XML and HTML", "[cli][junit]") {
    TempDir dir;
    const std::string db = "sqlite://" + (dir.path() / "bad\xff\xfe.db").string();
    const auto r = run_in(dir.path(), {"stress", "--db", db, "--ops", "20", "--threads", "1", "--no-progress",
                                       "--json", "r.json", "--junit", "r.xml", "--html", "r.html"});
    REQUIRE(r.code == 0);
    for (const char* name : {"r.xml", "r.html"}) {
        INFO(name);
        const std::string text = slurp(dir.path() / name);
        CHECK(text.find('\xff') == std::string::npos);
        CHECK(text.find('\xfe') == std::string::npos);
        CHECK(text.find("bad\xEF\xBF\xBD\xEF\xBF\xBD.db") != std::string::npos);  // U+FFFD for each bad byte
    }
    CHECK_NOTHROW(parse_json(slurp(dir.path() / "r.json")));
}

TEST_CASE("report files: Ctrl-C while the tables are being seeded ends the run at once, with a report saying so",
          "[cli][junit]") {
    TempDir dir;
    const auto start = std::chrono::steady_clock::now();
    // Seeding 20 million rows takes far longer than this test may wait.
    const pid_t pid = spawn_in(dir.path(), {"stress", "--db", "sqlite://x.db", "--workload", "read", "--rows",
                                            "20000000", "--ops", "10", "--no-progress", "--json", "r.json"});
    // The database file appears when the preflight (and so the seeding) begins.
    for (int i = 0; i < 3000 && !fs::exists(dir.path() / "x.db"); ++i) ::usleep(10'000);
    REQUIRE(fs::exists(dir.path() / "x.db"));
    REQUIRE(::kill(pid, SIGINT) == 0);
    const Result r = finish(dir.path(), pid);
    CHECK(r.code == 130);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
    const json j = parse_json(slurp(dir.path() / "r.json"));
    CHECK(j.at("verdict") == "error");
    CHECK(j.at("error").at("exit_code") == 130);
    CHECK(j.at("error").at("message").get<std::string>().find("before the load began") != std::string::npos);
    CHECK(j.at("interrupted") == true);
}

TEST_CASE("report files: a FIFO gets the report once read, and one nobody reads fails in bounded time", "[cli]") {
    TempDir dir;
    const fs::path fifo = dir.path() / "report.fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // A reader (a CI step's): the report goes through the FIFO, which stays a FIFO.
    std::string got;
    std::thread reader([&] { got = slurp(fifo); });
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "100", "--no-progress", "--json",
                                       "report.fifo"});
    // Had the run ended without opening the FIFO, the reader would wait in open() forever:
    // a writer's open and close releases it (with end of file).
    if (const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK); fd >= 0) ::close(fd);
    reader.join();
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK(parse_json(got).at("verdict") == "pass");
    CHECK(fs::is_fifo(fifo));
    // Nobody reads: opening it would block forever, deaf to SIGTERM (a user test); the
    // write gives up after 10 s, saying why, and the FIFO is left as it was.
    const auto alone = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "100", "--no-progress", "--json",
                                           "report.fifo"});
    CHECK(alone.code != 0);
    CHECK_THAT(alone.err, Catch::Contains("--json: cannot write report.fifo: no process read the FIFO within 10 s"));
    CHECK(fs::is_fifo(fifo));
}

TEST_CASE("report files: /dev/stdout redirected to a file, and a descriptor, get the report", "[cli]") {
    // Written through a copy of the descriptor: renaming a temp file over /dev/stdout failed
    // after the whole run when stdout was a file (a review found it).
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "100", "--no-progress", "--json",
                                       "/dev/stdout"});
    INFO(r.err);
    CHECK(r.code == 0);
    const std::size_t brace = r.out.find("{\n  \"schema\"");
    REQUIRE(brace != std::string::npos);
    CHECK(parse_json(r.out.substr(brace)).at("verdict") == "pass");
    // A descriptor that is not open is refused before the run.
    const auto closed = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "100", "--no-progress", "--json",
                                            "/dev/fd/97"});
    CHECK(closed.code == 2);
    CHECK_THAT(closed.err, Catch::Contains("--json: cannot write /dev/fd/97: descriptor 97 is not open"));
}
