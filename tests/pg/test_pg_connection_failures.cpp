// PostgreSQL connections that fail: a backend that stops answering, a connection the
// network drops, a refused Unix socket, and a server that wants a password the URL does
// not give.
#include "pg_support.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

using namespace poolbench;
using namespace pgtest;

namespace {

/// Stops a server backend (SIGSTOP) so it answers nothing, and lets it go on destruction.
class StoppedBackend {
public:
    explicit StoppedBackend(std::int64_t pid) : pid_(static_cast<pid_t>(pid)) {
        stopped_ = ::kill(pid_, SIGSTOP) == 0;
        error_ = errno;
    }
    StoppedBackend(const StoppedBackend&) = delete;
    StoppedBackend& operator=(const StoppedBackend&) = delete;
    ~StoppedBackend() {
        if (stopped_) ::kill(pid_, SIGCONT);
    }
    [[nodiscard]] bool stopped() const { return stopped_; }
    [[nodiscard]] std::string why_not() const { return std::strerror(error_); }

private:
    pid_t pid_;
    bool stopped_ = false;
    int error_ = 0;
};

/// The descriptor of this process's TCP socket whose local port is `port`, or -1.
int socket_with_local_port(int port) {
    int found = -1;
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) return -1;
    while (dirent* e = ::readdir(dir)) {
        char* end = nullptr;
        const long fd = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0') continue;
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        if (::getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&addr), &len) != 0) continue;
        int local = -1;
        if (addr.ss_family == AF_INET) local = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
        if (addr.ss_family == AF_INET6) local = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
        if (local == port) {
            found = static_cast<int>(fd);
            break;
        }
    }
    ::closedir(dir);
    return found;
}

/// The server URL without its password.
std::string url_without_password() {
    std::string url = server_url();
    const std::size_t start = url.find("://") + 3;
    const std::size_t at = url.find('@');
    const std::size_t colon = url.find(':', start);
    REQUIRE(colon < at);
    return url.substr(0, colon) + url.substr(at);
}

}  // namespace

TEST_CASE("pg more: a backend that stops answering fails ping within statement_timeout", "[pg]") {
    auto c = connect("statement_timeout=150ms");
    const auto pid = backend_pid(*c);
    REQUIRE(c->ping());
    {
        StoppedBackend stop(pid);
        if (!stop.stopped()) {
            WARN("cannot stop backend " << pid << ": " << stop.why_not());
            return;
        }
        const auto t0 = Clock::now();
        CHECK_FALSE(c->ping());  // gives up at statement_timeout, not the 5 s ping timeout
        const auto took = Clock::now() - t0;
        CHECK(took >= 140ms);
        CHECK(took < 2000ms);
        CHECK(c->is_broken());  // its state is unknown: never reused
        const auto e = thrown<QueryError>([&] { c->execute("SELECT 1"); });
        CHECK(e.code() == "08003");
        CHECK(e.broken());
    }
    auto admin = connect();
    (void)admin->query("SELECT pg_terminate_backend($1::int)", {I(pid)});
}

TEST_CASE("pg more: a connection the network drops is broken, with no server message", "[pg]") {
    auto c = connect();
    const auto port = c->query("SELECT inet_client_port()").int_at(0);
    const int fd = socket_with_local_port(static_cast<int>(port));
    REQUIRE(fd >= 0);
    REQUIRE(::shutdown(fd, SHUT_RDWR) == 0);
    const auto e = thrown<QueryError>([&] { (void)c->query("SELECT 1"); });
    INFO(e.what());
    CHECK(e.broken());
    CHECK(e.code().substr(0, 2) == "08");
    CHECK(c->is_broken());
    CHECK_FALSE(c->ping());
}

TEST_CASE("pg more: refused on a Unix socket names the socket directory and port", "[pg]") {
    std::random_device rd;
    const auto dir = std::filesystem::temp_directory_path() / ("pb-sock-" + std::to_string(rd()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / ".s.PGSQL.5999").string();
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);  // bound, never listening
    const std::string url = "postgresql://pb@/pb?host=" + dir.string() + "&port=5999";
    const auto e = thrown<ConnectError>([&] { (void)driver_for(url)->connect(Clock::now() + 5s); });
    ::close(fd);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    INFO(e.what());
    CHECK(contains(e.what(), "connection refused: is PostgreSQL running on " + dir.string() + ":5999?"));
}

TEST_CASE("pg more: a server that wants a password the URL does not give says so", "[pg]") {
    const auto e = thrown<ConnectError>([&] { (void)driver_for(url_without_password())->connect(Clock::now() + 10s); });
    const std::string message = e.what();
    INFO(message);
    CHECK(contains(message, "the server wants a password for user \"poolbench\" and the URL gives none"));
}
