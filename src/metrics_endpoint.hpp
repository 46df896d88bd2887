// metrics_endpoint.hpp — `--metrics-addr HOST:PORT` and `--metrics-linger D` on the load
// commands (stress, soak, run, leak): a Prometheus /metrics endpoint (cpp-httplib) serving
// the run's RunMetrics while the run goes on, and for D after it.
//
//   --metrics-addr 9187 | :9187 | HOST:9187 | [::1]:9187
//       HOST defaults to 127.0.0.1 (loopback: nothing else is bound unless asked, e.g.
//       0.0.0.0:9187); PORT 0 takes a free port. The URL served is printed on stderr.
//       A malformed address, a host that does not resolve or is not this machine's, or a
//       port in use is exit 2 with one line naming the problem and the fix, before the
//       database is touched.
//   --metrics-linger D
//       after the run (its report written), keep serving the final figures for D, so a
//       scraper gets them; Ctrl-C ends the linger at once, leaving the run's exit code.
//       Not after an interrupted run.
//
// Thread-safety: used from the main thread; cpp-httplib's threads (a listener and two
// workers, started with SIGINT/SIGTERM blocked) only call RunMetrics::render.
#pragma once

#include "run_metrics.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace CLI {
class App;
class Option;
}

namespace poolbench::cli {

struct MetricsOptions {
    std::string addr;    ///< --metrics-addr; empty: no endpoint
    std::string linger;  ///< --metrics-linger
};
/// Adds --metrics-addr and --metrics-linger (group "Monitoring").
void add_metrics_options(CLI::App& cmd, MetricsOptions& options);

/// Where to listen, from --metrics-addr.
struct MetricsAddress {
    std::string host;  ///< as given, brackets removed ("127.0.0.1" when none)
    int port = 0;
};
/// Parses "PORT", ":PORT", "HOST:PORT" or "[IPV6]:PORT". Throws UsageFailure naming the
/// text and the expected form.
[[nodiscard]] MetricsAddress parse_metrics_address(const std::string& text);

class MetricsEndpoint {
public:
    /// Binds and starts serving when options.addr is set (installing the interrupt handler
    /// first); otherwise does nothing. Throws UsageFailure (exit 2) when it cannot bind.
    explicit MetricsEndpoint(const MetricsOptions& options);
    MetricsEndpoint(const MetricsEndpoint&) = delete;
    MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;
    ~MetricsEndpoint();  ///< stops serving

    /// The run's observer (ScenarioRunOptions::observer); null when there is no endpoint.
    [[nodiscard]] RunObserver* observer() noexcept;
    /// The run and its report are done: marks the figures final and, unless the run was
    /// interrupted, keeps serving for --metrics-linger (Ctrl-C ends it early).
    void finish(bool interrupted);

private:
    class Server;
    std::unique_ptr<RunMetrics> metrics_;
    std::unique_ptr<Server> server_;
    std::chrono::milliseconds linger_{0};
    std::string linger_text_;
};

}  // namespace poolbench::cli
