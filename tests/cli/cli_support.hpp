// cli_support.hpp — running the poolbench executable from tests: a temporary directory,
// posix_spawn with stdout/stderr captured, JSON helpers, and the PostgreSQL server URL.
//
// Each run uses the built binary (POOLBENCH_BIN) with posix_spawn, stdout and stderr
// redirected to files in a fresh temporary directory (also its TMPDIR and working
// directory), and POOLBENCH_DB removed from its environment.
#pragma once

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <thread>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <cstdio>
#include <initializer_list>
#include <regex>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace clitest {

namespace fs = std::filesystem;
using nlohmann::json;

class TempDir {
public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "poolbench-cli-test-XXXXXX").string();
        std::vector<char> buffer(pattern.begin(), pattern.end());
        buffer.push_back('\0');
        REQUIRE(::mkdtemp(buffer.data()) != nullptr);
        path_ = buffer.data();
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    [[nodiscard]] const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

/// Writes `text` to `p` (a scenario file, a stale report), replacing it.
inline void write_file(const fs::path& p, const std::string& text) {
    std::FILE* f = std::fopen(p.c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(std::fwrite(text.data(), 1, text.size(), f) == text.size());
    REQUIRE(std::fclose(f) == 0);
}

// stdio, not istreambuf_iterator: g++ 12 flags the latter with -Wnull-dereference.
inline std::string slurp(const fs::path& p) {
    std::string text;
    std::FILE* f = std::fopen(p.c_str(), "rb");
    if (f == nullptr) return text;
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, n);
    std::fclose(f);
    return text;
}

struct Result {
    int code = -1;
    std::string out;
    std::string err;
};

// Starts poolbench with `args` in `dir` (also its TMPDIR); POOLBENCH_DB is not inherited.
// stdout and stderr go to dir/stdout.txt and dir/stderr.txt; finish() collects them.
inline pid_t spawn_in(const fs::path& dir, const std::vector<std::string>& args,
                      const std::vector<std::string>& extra_env = {}) {
    std::vector<std::string> argv_storage{POOLBENCH_BIN};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);

    std::vector<std::string> env_storage;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string entry(*e);
        if (entry.rfind("POOLBENCH_DB=", 0) == 0 || entry.rfind("TMPDIR=", 0) == 0) continue;
        env_storage.push_back(entry);
    }
    env_storage.push_back("TMPDIR=" + dir.string());
    for (const auto& e : extra_env) env_storage.push_back(e);
    std::vector<char*> envp;
    for (auto& e : env_storage) envp.push_back(e.data());
    envp.push_back(nullptr);

    const fs::path out_path = dir / "stdout.txt";
    const fs::path err_path = dir / "stderr.txt";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());

    pid_t pid = 0;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(rc == 0);
    return pid;
}

// Waits for a process started by spawn_in and collects its exit code and output.
inline Result finish(const fs::path& dir, pid_t pid) {
    const fs::path out_path = dir / "stdout.txt";
    const fs::path err_path = dir / "stderr.txt";
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) REQUIRE(errno == EINTR);

    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out_path);
    r.err = slurp(err_path);
    return r;
}

// Runs poolbench with `args` in `dir` (also its TMPDIR); POOLBENCH_DB is not inherited.
inline Result run_in(const fs::path& dir, const std::vector<std::string>& args) {
    return finish(dir, spawn_in(dir, args));
}
// The same with NAME=VALUE entries added to its environment.
inline Result run_in_env(const fs::path& dir, const std::vector<std::string>& args,
                         const std::vector<std::string>& extra_env) {
    return finish(dir, spawn_in(dir, args, extra_env));
}
inline Result run_in(const fs::path& dir, std::initializer_list<std::string> args) {
    return run_in(dir, std::vector<std::string>(args));
}

inline std::size_t count_lines(const std::string& s) {
    return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

/// A diagnose report's first finding with `code`, or nullptr.
/// Polls `condition` every 20 ms for at most `limit` (a bounded poll for a state, not a sleep).
template <class F>
bool wait_for(F condition, std::chrono::milliseconds limit = std::chrono::seconds(15)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (condition()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return condition();
}

inline const json* diagnose_finding(const json& report, const std::string& code) {
    for (const auto& f : report.at("findings")) {
        if (f.at("code") == code) return &f;
    }
    return nullptr;
}

inline json parse_json(const std::string& text) {
    INFO(text);
    REQUIRE(json::accept(text));
    return json::parse(text);
}

inline void require_number_fields(const json& j, std::initializer_list<const char*> names) {
    for (const char* name : names) {
        INFO("field " << name << " in " << j.dump());
        REQUIRE(j.contains(name));
        CHECK(j.at(name).is_number());
    }
}

/// A report's `writes` after connections broke under load: nothing acknowledged is
/// missing, and the rows found are exactly the acknowledged writes plus the in-doubt ones
/// (COMMIT sent, connection broken before the reply) that did commit.
inline void check_writes_settled(const json& w) {
    INFO("writes " << w.dump());
    CHECK(w.at("checked") == true);
    CHECK(w.at("lost") == 0);
    CHECK(w.at("in_doubt_committed").get<std::uint64_t>() <= w.at("in_doubt").get<std::uint64_t>());
    CHECK(w.at("verified").get<std::uint64_t>() ==
          w.at("acknowledged").get<std::uint64_t>() + w.at("in_doubt_committed").get<std::uint64_t>());
}

inline void require_latency(const json& j) {
    for (const char* kind : {"acquire", "query", "op"}) {
        INFO("latency " << kind);
        REQUIRE(j.contains(kind));
        require_number_fields(j.at(kind), {"count", "mean", "p50", "p90", "p99", "p999", "max"});
    }
}

// The PostgreSQL server the [pg] CLI tests use. FAILs the test when POOLBENCH_PG_URL is
// not set (never a silent skip), like tests/pg/pg_support.hpp.
inline std::string pg_url() {
    const char* url = std::getenv("POOLBENCH_PG_URL");
    if (url == nullptr || *url == '\0') {
        FAIL("POOLBENCH_PG_URL is not set: the [pg] CLI tests need a PostgreSQL server. Start a throwaway one with "
             "eval \"$(scripts/pg_sandbox.sh start)\" (stop it with scripts/pg_sandbox.sh stop), or run "
             "scripts/pg_sandbox.sh run <test command>");
    }
    return url;
}

// PgBouncer (transaction pooling, default_pool_size 10) in front of that server, from
// scripts/pgbouncer_sandbox.sh. FAILs the test when POOLBENCH_PGBOUNCER_URL is not set.
inline std::string pgbouncer_url() {
    const char* url = std::getenv("POOLBENCH_PGBOUNCER_URL");
    if (url == nullptr || *url == '\0') {
        FAIL("POOLBENCH_PGBOUNCER_URL is not set: the [pgbouncer] CLI tests need PgBouncer in front of the test "
             "server. Start one with eval \"$(scripts/pgbouncer_sandbox.sh start)\" (after pg_sandbox.sh; stop it "
             "with scripts/pgbouncer_sandbox.sh stop), or run scripts/pgbouncer_sandbox.sh run <test command>");
    }
    return url;
}

// The same PgBouncer as pg_sandbox.sh's limited role (poolbench_limited): a plain user, not
// on PgBouncer's console. FAILs the test when POOLBENCH_PGBOUNCER_LIMITED_URL is not set.
inline std::string pgbouncer_limited_url() {
    const char* url = std::getenv("POOLBENCH_PGBOUNCER_LIMITED_URL");
    if (url == nullptr || *url == '\0') {
        FAIL("POOLBENCH_PGBOUNCER_LIMITED_URL is not set: start PgBouncer with scripts/pgbouncer_sandbox.sh start "
             "after eval \"$(scripts/pg_sandbox.sh start)\" (it lets in POOLBENCH_PG_LIMITED_URL's user too)");
    }
    return url;
}

/// The password in `url` ("" when it has none).
inline std::string url_password(const std::string& url) {
    const std::size_t start = url.find("://");
    const std::size_t at = url.find('@', start);
    const std::size_t colon = url.find(':', start + 3);
    if (start == std::string::npos || at == std::string::npos || colon == std::string::npos || colon > at) return {};
    return url.substr(colon + 1, at - colon - 1);
}

/// `url` with its password replaced.
inline std::string url_with_password(const std::string& url, const std::string& password) {
    const std::size_t start = url.find("://") + 3;
    const std::size_t at = url.find('@');
    const std::size_t colon = url.find(':', start);
    REQUIRE(colon < at);
    return url.substr(0, colon + 1) + password + url.substr(at);
}

/// `url` with its database name replaced (query string kept).
inline std::string url_with_db(const std::string& url, const std::string& db) {
    const std::size_t at = url.find('@');
    const std::size_t slash = url.find('/', at);
    REQUIRE(slash != std::string::npos);
    const std::size_t query = url.find('?', slash);
    return url.substr(0, slash + 1) + db + (query == std::string::npos ? "" : url.substr(query));
}

/// `url` with host:port replaced (credentials and path kept).
inline std::string url_at(const std::string& url, const std::string& hostport) {
    const std::size_t at = url.find('@');
    const std::size_t slash = url.find('/', at);
    REQUIRE(at != std::string::npos);
    REQUIRE(slash != std::string::npos);
    return url.substr(0, at + 1) + hostport + url.substr(slash);
}

/// A loopback TCP port that refuses connections while this object lives (bound, never
/// listening, so no other process can take it).
class RefusingPort {
public:
    RefusingPort() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        socklen_t len = sizeof addr;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port_ = ntohs(addr.sin_port);
    }
    RefusingPort(const RefusingPort&) = delete;
    RefusingPort& operator=(const RefusingPort&) = delete;
    ~RefusingPort() { ::close(fd_); }
    [[nodiscard]] int port() const { return port_; }

private:
    int fd_ = -1;
    int port_ = 0;
};

}  // namespace clitest
