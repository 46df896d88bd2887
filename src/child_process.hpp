// child_process.hpp — the fault engine's child processes (the SQLite lock holder, the
// PostgreSQL restart command): started on pipes with signals unblocked, read and waited
// for with deadlines, never longer.
//
// Thread-safety: free functions; a Child belongs to the thread that started it.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace poolbench::cli {

struct Child {
    pid_t pid = -1;
    int in = -1;   // our end of its stdin (-1: none)
    int out = -1;  // our end of its stdout+stderr
};

void close_fd(int& fd) noexcept;

/// Starts argv[0] with its stdin and stdout+stderr on pipes; `own_group` puts it in a new
/// process group so a timeout can stop everything it started. Throws FaultFailure.
Child spawn_child(const std::vector<std::string>& args, bool own_group);

/// Appends what `fd` has to `buffer` (keeping its last `keep` bytes): returns once
/// something was read and nothing more is waiting, or at `deadline` (at once when it has
/// passed). Returns false at EOF.
bool drain(int fd, std::string& buffer, std::chrono::steady_clock::time_point deadline, std::size_t keep = 8192);

/// Waits for `pid` until `deadline`; returns its status, or nullopt if it still runs.
std::optional<int> wait_child(pid_t pid, std::chrono::steady_clock::time_point deadline);

/// "exit 3", "killed by signal 9".
std::string describe_status(int status);

/// What a shell command run to its end (or its timeout) did.
struct CommandOutcome {
    bool ok = false;      ///< exited 0 within the timeout
    std::string status;   ///< "exit 0", "exit 3", "did not finish within 60000 ms; stopped"
    std::string output;   ///< its stdout and stderr (the last 8 KiB)
};
/// Runs `/bin/sh -c command` in its own process group with `env` ("NAME=value") added to
/// this process's environment, stdin closed; waits for it until `timeout`, then stops the
/// whole group (SIGTERM, then SIGKILL). Throws FaultFailure only when it cannot be started.
CommandOutcome run_command(const std::string& command, const std::vector<std::string>& env,
                           std::chrono::milliseconds timeout);

/// The last `max_lines` lines of `text`, trailing blank space removed.
std::string last_lines(std::string text, std::size_t max_lines = 12);

}  // namespace poolbench::cli
