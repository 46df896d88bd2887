// test_cli_metrics.cpp — `--metrics-addr` and `--metrics-linger`: /metrics scraped while
// a run goes on and while it lingers, parsed by a small parser of the text format 0.0.4
// (here, not Prometheus's), checked for the format's rules, and its final counts against
// the JSON report. Every wait is a bounded poll for a condition.
#include "cli_support.hpp"

#include <httplib.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// ---------------------------------------------------------------------------------------
// A parser of the text exposition format 0.0.4, strict where the format is.

struct Sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};

struct Exposition {
    std::map<std::string, std::string> help, type;
    std::vector<Sample> samples;

    /// The value of the one sample named `name` whose labels include `labels`.
    [[nodiscard]] std::optional<double> value(const std::string& name,
                                              const std::map<std::string, std::string>& labels = {}) const {
        std::optional<double> found;
        for (const auto& s : samples) {
            if (s.name != name) continue;
            const bool match = std::all_of(labels.begin(), labels.end(), [&](const auto& kv) {
                const auto it = s.labels.find(kv.first);
                return it != s.labels.end() && it->second == kv.second;
            });
            if (!match) continue;
            if (found) FAIL("two samples match " << name);
            found = s.value;
        }
        return found;
    }
    [[nodiscard]] double require(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
        const auto v = value(name, labels);
        INFO("sample " << name);
        REQUIRE(v.has_value());
        return *v;
    }
};

bool valid_name(const std::string& n) {
    if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
    return std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':'; });
}

double parse_number(const std::string& text) {
    if (text == "+Inf") return std::numeric_limits<double>::infinity();
    if (text == "-Inf") return -std::numeric_limits<double>::infinity();
    if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    INFO("number '" << text << "'");
    REQUIRE(used == text.size());
    return v;
}

/// The family a sample belongs to: a histogram's _bucket, _sum and _count are its own.
std::string family_of(const Exposition& e, const std::string& name) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s(suffix);
        if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
            const std::string base = name.substr(0, name.size() - s.size());
            const auto it = e.type.find(base);
            if (it != e.type.end() && it->second == "histogram") return base;
        }
    }
    return name;
}

Exposition parse_exposition(const std::string& text) {
    INFO(text.substr(0, 4000));
    REQUIRE(!text.empty());
    REQUIRE(text.back() == '\n');
    Exposition e;
    std::istringstream in(text);
    std::set<std::string> closed;  // families whose samples are over: no more may come
    std::string current;
    for (std::string line; std::getline(in, line);) {
        INFO("line: " << line);
        REQUIRE(!line.empty());
        if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
            const std::string rest = line.substr(7);
            const std::size_t space = rest.find(' ');
            REQUIRE(space != std::string::npos);
            const std::string name = rest.substr(0, space);
            REQUIRE(valid_name(name));
            auto& map = line[2] == 'H' ? e.help : e.type;
            REQUIRE(map.count(name) == 0);  // once per family
            map[name] = rest.substr(space + 1);
            if (line[2] == 'T') {
                REQUIRE(e.help.count(name) == 1);  // HELP, then TYPE
                const std::string& t = map[name];
                REQUIRE((t == "counter" || t == "gauge" || t == "histogram" || t == "summary" || t == "untyped"));
                if (t == "counter") REQUIRE(name.size() > 6);
                if (t == "counter") CHECK(name.substr(name.size() - 6) == "_total");
            }
            continue;
        }
        REQUIRE(line[0] != '#');
        Sample s;
        std::size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
        s.name = line.substr(0, i);
        REQUIRE(valid_name(s.name));
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (line.at(i) != '}') {
                const std::size_t eq = line.find('=', i);
                REQUIRE(eq != std::string::npos);
                const std::string label = line.substr(i, eq - i);
                REQUIRE(valid_name(label));
                REQUIRE(line.at(eq + 1) == '"');
                std::string value;
                std::size_t j = eq + 2;
                for (; line.at(j) != '"'; ++j) {
                    if (line[j] == '\\') {
                        const char c = line.at(++j);
                        REQUIRE((c == '\\' || c == '"' || c == 'n'));
                        value += c == 'n' ? '\n' : c;
                    } else {
                        value += line[j];
                    }
                }
                REQUIRE(s.labels.count(label) == 0);
                s.labels[label] = value;
                i = j + 1;
                if (line.at(i) == ',') ++i;
            }
            ++i;
        }
        REQUIRE(line.at(i) == ' ');
        s.value = parse_number(line.substr(i + 1));  // no timestamps here
        const std::string family = family_of(e, s.name);
        REQUIRE(e.type.count(family) == 1);  // TYPE before the samples
        if (family != current) {
            REQUIRE(closed.count(family) == 0);  // a family's samples together
            if (!current.empty()) closed.insert(current);
            current = family;
        }
        e.samples.push_back(std::move(s));
    }
    return e;
}

/// The format's rules for histograms: per series, `le` ascending, cumulative counts
/// monotone, an +Inf bucket equal to _count, and a _sum.
void check_histograms(const Exposition& e) {
    for (const auto& [family, type] : e.type) {
        if (type != "histogram") continue;
        std::map<std::string, std::vector<std::pair<double, double>>> series;  // pool → (le, count)
        for (const auto& s : e.samples) {
            if (s.name != family + "_bucket") continue;
            REQUIRE(s.labels.count("le") == 1);
            series[s.labels.at("pool")].emplace_back(parse_number(s.labels.at("le")), s.value);
        }
        REQUIRE(!series.empty());
        for (const auto& [pool, buckets] : series) {
            INFO(family << " pool " << pool);
            CHECK(buckets.size() == 23);  // 22 documented boundaries and +Inf
            for (std::size_t i = 1; i < buckets.size(); ++i) {
                CHECK(buckets[i - 1].first < buckets[i].first);
                CHECK(buckets[i - 1].second <= buckets[i].second);
            }
            CHECK(buckets.front().first == Approx(0.000000999));
            CHECK(buckets[buckets.size() - 2].first == Approx(9.999220735));
            CHECK(std::isinf(buckets.back().first));
            CHECK(buckets.back().second == e.require(family + "_count", {{"pool", pool}}));
            CHECK(e.require(family + "_sum", {{"pool", pool}}) >= 0);
        }
    }
}

Exposition check_format(const std::string& text) {
    Exposition e = parse_exposition(text);
    check_histograms(e);
    for (const auto& s : e.samples) {
        if (s.name.rfind("poolbench_connections", 0) == 0) CHECK(s.labels.count("pool") == 1);
        if (s.name.rfind("poolbench_run_", 0) == 0) CHECK(s.labels.count("scenario") == 1);
    }
    return e;
}

// ---------------------------------------------------------------------------------------
// Running poolbench with an endpoint.

bool exited(pid_t pid, int& status) { return ::waitpid(pid, &status, WNOHANG) == pid; }

/// The port a poolbench started with --metrics-addr 127.0.0.1:0 printed, polled from its
/// stderr (bounded; fails if it exits first).
int wait_for_port(const fs::path& dir, pid_t pid) {
    const std::string marker = "serving metrics at http://127.0.0.1:";
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline) {
        const std::string err = slurp(dir / "stderr.txt");
        if (const std::size_t at = err.find(marker); at != std::string::npos) {
            const std::size_t end = err.find("/metrics", at);
            if (end != std::string::npos) return std::stoi(err.substr(at + marker.size(), end - at - marker.size()));
        }
        int status = 0;
        if (exited(pid, status)) FAIL("poolbench exited before serving metrics: " << err);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("no 'serving metrics at' line within 30 s: " << slurp(dir / "stderr.txt"));
    return -1;
}

std::optional<std::string> scrape(int port, std::string* content_type = nullptr) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(std::chrono::seconds(2));
    client.set_read_timeout(std::chrono::seconds(5));
    auto res = client.Get("/metrics");
    if (!res || res->status != 200) return std::nullopt;
    if (content_type != nullptr) *content_type = res->get_header_value("Content-Type");
    return res->body;
}

/// Scrapes until `done` holds for the exposition (bounded), and returns that exposition.
template <class Pred>
Exposition scrape_until(int port, pid_t pid, const char* what, Pred done) {
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    std::string last;
    while (Clock::now() < deadline) {
        if (auto text = scrape(port)) {
            last = *text;
            Exposition e = check_format(*text);
            if (done(e)) return e;
        }
        int status = 0;
        if (exited(pid, status)) FAIL("poolbench exited while waiting for: " << what << "\n" << last);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL("not seen within 30 s: " << what << "\n" << last);
    return {};
}

/// Waits (bounded) for pid to exit; returns its exit code.
int wait_exit(pid_t pid, std::chrono::seconds bound) {
    const auto deadline = Clock::now() + bound;
    int status = 0;
    while (Clock::now() < deadline) {
        if (exited(pid, status)) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid, SIGKILL);
    (void)::waitpid(pid, &status, 0);
    FAIL("poolbench did not exit within " << bound.count() << " s");
    return -1;
}

/// A socket listening on a loopback port, as another server would.
class ListeningPort {
public:
    ListeningPort() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(fd_, 4) == 0);
        socklen_t len = sizeof addr;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port_ = ntohs(addr.sin_port);
    }
    ListeningPort(const ListeningPort&) = delete;
    ListeningPort& operator=(const ListeningPort&) = delete;
    ~ListeningPort() { ::close(fd_); }
    [[nodiscard]] int port() const { return port_; }

private:
    int fd_ = -1;
    int port_ = 0;
};

}  // namespace

TEST_CASE("metrics: scraped during a stress run and while it lingers, and the final counts are the report's",
          "[cli][metrics]") {
    TempDir dir;
    const pid_t pid = spawn_in(dir.path(), {"stress", "--db", "null://", "--duration", "3s", "--threads", "8",
                                            "--pool-size", "4", "--sample-interval", "100ms", "--no-progress",
                                            "--json", "r.json", "--metrics-addr", "127.0.0.1:0",
                                            "--metrics-linger", "60s"});
    const int port = wait_for_port(dir.path(), pid);

    // During the run: operations counted live, the run not finished, the pool's series there.
    std::string content_type;
    REQUIRE(scrape(port, &content_type).has_value());
    CHECK(content_type.rfind("text/plain; version=0.0.4", 0) == 0);
    const Exposition live = scrape_until(port, pid, "live ok operations", [](const Exposition& e) {
        const auto ok = e.value("poolbench_run_operations_total", {{"result", "ok"}});
        return ok && *ok > 0 && e.value("poolbench_connections_active").has_value();
    });
    CHECK(live.require("poolbench_run_finished") == 0);
    CHECK(live.require("poolbench_run_phase", {{"phase", "stress"}}) == 1);
    CHECK(live.require("poolbench_connections_max", {{"pool", "poolbench"}}) == 4);
    CHECK(live.require("poolbench_connections_min", {{"pool", "poolbench"}}) == 0);
    CHECK(live.require("poolbench_connections") <= 4);
    CHECK(live.require("poolbench_connections_pending") >= 0);
    CHECK(live.require("poolbench_connections_acquire_seconds_count") > 0);
    CHECK(live.help.count("poolbench_run_fault_active") == 0);  // a run without faults

    // After it: the report is written, the figures are final and stay served.
    const Exposition last = scrape_until(port, pid, "poolbench_run_finished 1",
                                         [](const Exposition& e) { return e.value("poolbench_run_finished") == 1.0; });
    const json j = parse_json(slurp(dir.path() / "r.json"));
    const json& ops = j.at("ops");
    for (const char* result : {"ok", "failed", "timed_out", "statement_timeouts"}) {
        INFO("result " << result);
        CHECK(last.require("poolbench_run_operations_total", {{"result", result}}) == ops.at(result).get<double>());
    }
    CHECK(ops.at("ok").get<double>() > 0);
    const json& pool = j.at("pool");
    CHECK(last.require("poolbench_connections_created_total") == pool.at("created").get<double>());
    CHECK(last.require("poolbench_connections_timeout_total") == pool.at("timeouts").get<double>());
    double destroyed = 0;
    for (const auto& [reason, n] : pool.at("destroyed_by_reason").items()) {
        INFO("reason " << reason);
        CHECK(last.require("poolbench_connections_destroyed_total", {{"reason", reason}}) == n.get<double>());
        destroyed += n.get<double>();
    }
    CHECK(destroyed == pool.at("destroyed").get<double>());
    CHECK(last.require("poolbench_connections_creation_seconds_count") == pool.at("created").get<double>());
    CHECK(last.require("poolbench_connections_active") == 0);
    CHECK(last.require("poolbench_run_phase", {{"phase", "stress"}}) == 0);
    // Counters never went back.
    CHECK(last.require("poolbench_run_operations_total", {{"result", "ok"}}) >=
          live.require("poolbench_run_operations_total", {{"result", "ok"}}));

    // A second poolbench on the same port: exit 2, naming the port and the fix (no
    // SO_REUSEPORT sharing the port between the two).
    {
        TempDir other;
        const auto r = run_in(other.path(), {"stress", "--db", "null://", "--ops", "10", "--no-progress",
                                             "--metrics-addr", "127.0.0.1:" + std::to_string(port)});
        CHECK(r.code == 2);
        CHECK(r.err.find("port " + std::to_string(port) + " is in use") != std::string::npos);
        CHECK(count_lines(r.err) == 1);
    }

    // Ctrl-C ends the linger at once; the exit code stays the run's.
    const auto signalled = Clock::now();
    REQUIRE(::kill(pid, SIGINT) == 0);
    CHECK(wait_exit(pid, std::chrono::seconds(10)) == 0);
    CHECK(Clock::now() - signalled < std::chrono::seconds(5));
    const std::string err = slurp(dir.path() / "stderr.txt");
    CHECK(err.find("serving the final metrics at http://127.0.0.1:" + std::to_string(port) + "/metrics for 60s more") !=
          std::string::npos);
    CHECK(err.find("the metrics endpoint stops now") != std::string::npos);
}

TEST_CASE("metrics: a scenario's phase and fault are live, and an interrupted run does not linger", "[cli][metrics]") {
    TempDir dir;
    write_file(dir.path() / "m.toml", R"(
[scenario]
name = "metrics-live"

[pool]
max_size = 2
acquire_timeout = "5s"

[[phase]]
name = "warm"
threads = 2
duration = "300ms"

[[phase]]
name = "slow"
threads = 2
duration = "60s"

[[phase.fault]]
kind = "latency"
at = "0s"
for = "60s"
latency = "1ms"
)");
    const pid_t pid = spawn_in(dir.path(), {"run", "m.toml", "--db", "null://", "--no-progress", "--json", "r.json",
                                            "--metrics-addr", "127.0.0.1:0", "--metrics-linger", "60s"});
    const int port = wait_for_port(dir.path(), pid);
    const Exposition e = scrape_until(port, pid, "phase slow with its fault in effect", [](const Exposition& x) {
        return x.value("poolbench_run_phase", {{"phase", "slow"}}) == 1.0 &&
               x.value("poolbench_run_fault_active", {{"phase", "slow"}, {"fault", "1"}, {"kind", "latency"}}) == 1.0;
    });
    CHECK(e.require("poolbench_run_phase", {{"phase", "warm"}, {"scenario", "metrics-live"}}) == 0);
    CHECK(e.require("poolbench_run_operations_total", {{"result", "ok"}}) > 0);

    REQUIRE(::kill(pid, SIGINT) == 0);
    CHECK(wait_exit(pid, std::chrono::seconds(20)) == 130);  // no 60 s linger after Ctrl-C
    const json j = parse_json(slurp(dir.path() / "r.json"));
    CHECK(j.at("interrupted") == true);
    CHECK(slurp(dir.path() / "stderr.txt").find("serving the final metrics") == std::string::npos);
}

TEST_CASE("metrics: a sharded run serves each shard's pool under its node name, final figures the report's",
          "[cli][metrics][shards]") {
    TempDir dir;
    const pid_t pid = spawn_in(dir.path(), {"stress", "--shards", "3", "--db", "sqlite://" + (dir.path() / "data").string(),
                                            "--duration", "1s", "--threads", "6", "--pool-size", "2", "--no-progress",
                                            "--json", "r.json", "--metrics-addr", "127.0.0.1:0", "--metrics-linger",
                                            "60s"});
    const int port = wait_for_port(dir.path(), pid);
    const Exposition live = scrape_until(port, pid, "every shard's pool", [](const Exposition& e) {
        return e.value("poolbench_connections_max", {{"pool", "shard-2"}}).has_value();
    });
    for (const char* shard : {"shard-0", "shard-1", "shard-2"}) {
        INFO(shard);
        CHECK(live.require("poolbench_connections_max", {{"pool", shard}}) == 2);
    }
    const Exposition last = scrape_until(port, pid, "poolbench_run_finished 1",
                                         [](const Exposition& e) { return e.value("poolbench_run_finished") == 1.0; });
    const json j = parse_json(slurp(dir.path() / "r.json"));
    for (const char* shard : {"shard-0", "shard-1", "shard-2"}) {
        INFO(shard);
        const json& pool = j.at("pools").at(shard).at("pool");
        CHECK(last.require("poolbench_connections_created_total", {{"pool", shard}}) == pool.at("created").get<double>());
        CHECK(last.require("poolbench_connections_active", {{"pool", shard}}) == 0);
        CHECK(pool.at("created").get<double>() > 0);
    }
    REQUIRE(::kill(pid, SIGINT) == 0);
    CHECK(wait_exit(pid, std::chrono::seconds(10)) == 0);
}

TEST_CASE("metrics: a linger that runs out ends the run by itself", "[cli][metrics]") {
    TempDir dir;
    const auto started = Clock::now();
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "200", "--threads", "2", "--no-progress",
                                       "--metrics-addr", "127.0.0.1:0", "--metrics-linger", "300ms"});
    CHECK(r.code == 0);
    CHECK(Clock::now() - started >= std::chrono::milliseconds(300));
    CHECK(r.err.find("for 300ms more") != std::string::npos);
}

TEST_CASE("metrics: a port in use is exit 2 with one line naming it and the fix", "[cli][metrics]") {
    TempDir dir;
    const ListeningPort taken;
    const std::string port = std::to_string(taken.port());
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "10", "--no-progress", "--json", "r.json",
                                       "--metrics-addr", "127.0.0.1:" + port});
    CHECK(r.code == 2);
    INFO(r.err);
    CHECK(r.err == "poolbench: --metrics-addr: cannot listen on 127.0.0.1:" + port + ": port " + port +
                       " is in use (choose another port, or stop what listens there; port 0 takes a free one)\n");
    CHECK(r.out.empty());  // nothing ran
}

TEST_CASE("metrics: malformed addresses are exit 2 before anything runs", "[cli][metrics]") {
    struct Case {
        std::string addr, says;
    };
    const Case c = GENERATE(Case{"nonsense", "bad port 'nonsense'"}, Case{"127.0.0.1:99999", "bad port '99999'"},
                            Case{"127.0.0.1:", "no port"}, Case{"::1:9187", "write an IPv6 address in brackets"},
                            Case{"[::1]9187", "must be followed by :PORT"},
                            Case{"192.0.2.1:9187", "is not an address of this machine"},
                            Case{"no-such-host.invalid:9187", "cannot resolve host 'no-such-host.invalid'"});
    INFO("--metrics-addr " << c.addr);
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "10", "--no-progress", "--metrics-addr",
                                       c.addr});
    CHECK(r.code == 2);
    CHECK(r.err.find(c.says) != std::string::npos);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find("--metrics-addr") != std::string::npos);
}

TEST_CASE("metrics: --metrics-linger needs --metrics-addr", "[cli][metrics]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"soak", "--db", "null://", "--duration", "1s", "--metrics-linger", "5s"});
    CHECK(r.code == 2);
    CHECK(r.err.find("--metrics-linger") != std::string::npos);
    CHECK(r.err.find("--metrics-addr") != std::string::npos);
}
