// metrics_endpoint.cpp — the /metrics endpoint on cpp-httplib (metrics_endpoint.hpp).
#include "metrics_endpoint.hpp"

#include "cli.hpp"

#include <poolbench/prometheus.hpp>

#include "cli11.hpp"
#include <fmt/format.h>
#include <httplib.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <netdb.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace poolbench::cli {

namespace {

constexpr std::string_view address_forms = "PORT, :PORT, HOST:PORT or [IPV6]:PORT, e.g. 127.0.0.1:9187";

[[noreturn]] void bad_address(const std::string& text, std::string_view why) {
    throw UsageFailure(fmt::format("--metrics-addr '{}': {} (expected {})", text, why, address_forms));
}

std::string url_host(const std::string& host) {
    return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

/// Why binding host:port failed, asked of the operating system with a socket like the
/// server's (SO_REUSEADDR, no SO_REUSEPORT), and what to do about it.
std::string bind_failure(const MetricsAddress& a) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(a.port);
    if (const int rc = ::getaddrinfo(a.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
        return fmt::format("cannot resolve host '{}': {} (give an address of this machine, e.g. 127.0.0.1:{})", a.host,
                           ::gai_strerror(rc), a.port);
    }
    int error = 0;
    for (addrinfo* ai = found; ai != nullptr && error != EADDRINUSE; ai = ai->ai_next) {
        const int fd = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            error = errno;
            continue;
        }
        int yes = 1;
        (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        error = ::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
        ::close(fd);
    }
    ::freeaddrinfo(found);
    const std::string where = url_host(a.host) + ":" + port;
    switch (error) {
        case EADDRINUSE:
            return fmt::format("cannot listen on {}: port {} is in use (choose another port, or stop what listens "
                               "there; port 0 takes a free one)",
                               where, a.port);
        case EADDRNOTAVAIL:
            return fmt::format("cannot listen on {}: '{}' is not an address of this machine (use 127.0.0.1, or one of "
                               "its own addresses)",
                               where, a.host);
        case EACCES:
            return fmt::format("cannot listen on {}: port {} needs privileges (use a port above 1023)", where, a.port);
        case 0:
            return fmt::format("cannot listen on {} (try another port)", where);
        default:
            return fmt::format("cannot listen on {}: {} (try another address or port)", where, std::strerror(error));
    }
}

}  // namespace

MetricsAddress parse_metrics_address(const std::string& text) {
    MetricsAddress a;
    std::string port;
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            bad_address(text, "an IPv6 address in brackets must be followed by :PORT");
        }
        a.host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else if (const std::size_t colon = text.rfind(':'); colon == std::string::npos) {
        port = text;
    } else {
        a.host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (a.host.find(':') != std::string::npos) bad_address(text, "write an IPv6 address in brackets");
    }
    if (a.host.find_first_of(" \t/[]") != std::string::npos) bad_address(text, fmt::format("bad host '{}'", a.host));
    if (a.host.empty()) a.host = "127.0.0.1";
    if (port.empty()) bad_address(text, "no port");
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), a.port);
    if (ec != std::errc() || end != port.data() + port.size() || a.port < 0 || a.port > 65535) {
        bad_address(text, fmt::format("bad port '{}' (0 to 65535)", port));
    }
    return a;
}

void add_metrics_options(CLI::App& cmd, MetricsOptions& o) {
    auto* addr = cmd.add_option("--metrics-addr", o.addr,
                                "Serve Prometheus metrics at http://HOST:PORT/metrics while the run goes on (the "
                                "pool's series and the run's: operations, phase, faults). HOST defaults to "
                                "127.0.0.1; PORT 0 takes a free port")
                     ->type_name("HOST:PORT")
                     ->check(CLI::Validator(
                         [](const std::string& text) {
                             return text.empty() ? std::string("give HOST:PORT or PORT, e.g. 127.0.0.1:9400 (an "
                                                               "empty address serves nothing)")
                                                 : std::string();
                         },
                         "HOST:PORT"))
                     ->group("Monitoring");
    cmd.add_option("--metrics-linger", o.linger,
                   "After the run, keep serving the final figures this long so a scraper gets them (Ctrl-C ends it)")
        ->type_name("DURATION")
        ->check(CLI::Validator(check_duration, "DURATION"))
        ->needs(addr)
        ->group("Monitoring");
}

class MetricsEndpoint::Server {
public:
    Server(const MetricsAddress& a, const RunMetrics& metrics) {
        // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second
        // process bind the same port and split the scrapes between the two.
        http_.set_socket_options([](socket_t fd) {
            int yes = 1;
            (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        });
        http_.new_task_queue = [] { return new httplib::ThreadPool(2); };
        http_.set_keep_alive_max_count(1);  // one request per connection: stopping waits for no idle client
        http_.set_read_timeout(std::chrono::seconds(2));
        http_.set_write_timeout(std::chrono::seconds(2));
        http_.Get("/metrics", [&metrics](const httplib::Request&, httplib::Response& res) {
            res.set_content(metrics.render(), std::string(prometheus::content_type));
        });
        http_.Get("/", [](const httplib::Request&, httplib::Response& res) {
            res.set_content("poolbench: the metrics are at /metrics\n", "text/plain; charset=utf-8");
        });
        port_ = a.port == 0 ? http_.bind_to_any_port(a.host) : (http_.bind_to_port(a.host, a.port) ? a.port : -1);
        if (port_ <= 0) throw UsageFailure(fmt::format("--metrics-addr: {}", bind_failure(a)));
        thread_ = std::thread([this] { (void)http_.listen_after_bind(); });
        // stop() is a no-op until the listener runs: wait for it (it starts at once).
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!http_.is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        url_ = fmt::format("http://{}:{}/metrics", url_host(a.host), port_);
    }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server() {
        http_.stop();
        if (thread_.joinable()) thread_.join();
    }
    [[nodiscard]] const std::string& url() const noexcept { return url_; }

private:
    httplib::Server http_;
    std::thread thread_;
    int port_ = -1;
    std::string url_;
};

MetricsEndpoint::MetricsEndpoint(const MetricsOptions& options) {
    if (options.addr.empty()) return;
    const MetricsAddress address = parse_metrics_address(options.addr);
    if (!options.linger.empty()) {
        linger_ = parse_duration(options.linger, "--metrics-linger");
        linger_text_ = options.linger;
    }
    install_interrupt_handler();  // the server's threads inherit SIGINT/SIGTERM blocked
    metrics_ = std::make_unique<RunMetrics>();
    server_ = std::make_unique<Server>(address, *metrics_);
    fmt::print(stderr, "poolbench: serving metrics at {}\n", server_->url());
}

MetricsEndpoint::~MetricsEndpoint() = default;

RunObserver* MetricsEndpoint::observer() noexcept { return metrics_.get(); }

void MetricsEndpoint::finish(bool interrupted) {
    if (!metrics_) return;
    metrics_->finish();
    if (interrupted || linger_.count() == 0) return;
    fmt::print(stderr, "poolbench: serving the final metrics at {} for {} more (Ctrl-C ends it)\n", server_->url(),
               linger_text_);
    (void)linger_unless_interrupted(linger_);
}

}  // namespace poolbench::cli
