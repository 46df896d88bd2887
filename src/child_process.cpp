// child_process.cpp — starting a helper process on pipes, reading its output and waiting
// for it, each bounded by a deadline (child_process.hpp).
#include "child_process.hpp"

#include "faults.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace poolbench::cli {

using Clock = std::chrono::steady_clock;

void close_fd(int& fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

Child spawn_child(const std::vector<std::string>& args, bool own_group) {
    int in_pipe[2], out_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) != 0) throw FaultFailure(fmt::format("pipe: {}", std::strerror(errno)));
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
        ::close(in_pipe[0]);
        ::close(in_pipe[1]);
        throw FaultFailure(fmt::format("pipe: {}", std::strerror(errno)));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDERR_FILENO);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // poolbench blocks SIGINT/SIGTERM in its threads (a thread of its own takes them): the
    // child starts with none blocked and default actions.
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (own_group) {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup(&attr, 0);
    }
    posix_spawnattr_setflags(&attr, flags);
    std::vector<std::string> storage(args);
    std::vector<char*> argv;
    for (auto& a : storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    if (rc != 0) {
        ::close(in_pipe[1]);
        ::close(out_pipe[0]);
        throw FaultFailure(fmt::format("cannot start {}: {}", args[0], std::strerror(rc)));
    }
    ::fcntl(out_pipe[0], F_SETFL, ::fcntl(out_pipe[0], F_GETFL) | O_NONBLOCK);
    return {pid, in_pipe[1], out_pipe[0]};
}

bool drain(int fd, std::string& buffer, Clock::time_point deadline, std::size_t keep) {
    char chunk[4096];
    bool got = false;
    while (true) {
        const ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n > 0) {
            buffer.append(chunk, static_cast<std::size_t>(n));
            if (buffer.size() > keep) buffer.erase(0, buffer.size() - keep);
            got = true;
            continue;
        }
        if (n == 0) return false;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return false;
        const auto now = Clock::now();
        if (got || now >= deadline) return true;
        pollfd p{fd, POLLIN, 0};
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
        if (::poll(&p, 1, static_cast<int>(std::clamp<long long>(wait, 1, 1000))) == 0 && Clock::now() >= deadline) {
            return true;
        }
    }
}

std::optional<int> wait_child(pid_t pid, Clock::time_point deadline) {
    while (true) {
        int status = 0;
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0 && errno != EINTR) return -1;
        if (Clock::now() >= deadline) return std::nullopt;
        // No pidfd in glibc 2.36's headers; a 5 ms poll bounds the wait (process exit is not
        // on any measured path).
        ::poll(nullptr, 0, 5);
    }
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) return fmt::format("exit {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
    return "ended";
}

std::string last_lines(std::string text, std::size_t max_lines) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    std::size_t lines = 0, at = text.size();
    while (at > 0) {
        const auto nl = text.rfind('\n', at - 1);
        if (nl == std::string::npos) break;
        if (++lines >= max_lines) return text.substr(nl + 1);
        at = nl;
    }
    return text;
}

CommandOutcome run_command(const std::string& command, const std::vector<std::string>& env,
                           std::chrono::milliseconds timeout) {
    std::vector<std::string> args{"/usr/bin/env"};
    args.insert(args.end(), env.begin(), env.end());
    args.insert(args.end(), {"/bin/sh", "-c", command});
    Child child = spawn_child(args, true);
    close_fd(child.in);
    CommandOutcome out;
    const auto deadline = Clock::now() + timeout;
    std::optional<int> status;
    bool open = true;  // its output pipe: read until EOF, then only wait
    while (!(status = wait_child(child.pid, open ? Clock::now() : std::min(deadline, Clock::now() + std::chrono::milliseconds(50))))) {
        if (Clock::now() >= deadline) break;
        // Returns when output arrives or after at most 50 ms, so an exit is seen soon.
        if (open) open = drain(child.out, out.output, std::min(deadline, Clock::now() + std::chrono::milliseconds(50)));
    }
    if (!status) {
        ::kill(-child.pid, SIGTERM);
        if (!wait_child(child.pid, Clock::now() + std::chrono::seconds(2))) {
            ::kill(-child.pid, SIGKILL);
            (void)wait_child(child.pid, Clock::now() + std::chrono::seconds(5));
        }
        out.status = "did not finish within " + std::to_string(timeout.count()) + " ms; stopped";
    } else {
        out.status = describe_status(*status);
        out.ok = WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
    }
    (void)drain(child.out, out.output, Clock::now());
    close_fd(child.out);
    return out;
}

}  // namespace poolbench::cli
