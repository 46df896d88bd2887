// report_files.cpp — report targets checked before a run, written by rename after it,
// and the error report a failed run leaves instead of an empty or stale file.
#include "report_files.hpp"

#include "cli11.hpp"
#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <optional>
#include <filesystem>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <utility>

namespace poolbench::cli {

namespace fs = std::filesystem;

namespace {

struct Target {
    const char* flag;
    const std::string* path;
    const CLI::Option* option;
};

std::array<Target, 3> targets_of(const CommonOptions& o) {
    return {{{"--json", &o.json, o.json_option}, {"--junit", &o.junit, o.junit_option}, {"--html", &o.html, o.html_option}}};
}

/// The file a path names, for comparing: absolute, symlinks and ./.. resolved as far as
/// the path exists.
fs::path identity(const std::string& path) {
    std::error_code ec;
    fs::path abs = fs::absolute(path, ec);
    if (ec) return fs::path(path);
    fs::path canonical = fs::weakly_canonical(abs, ec);
    return ec ? abs.lexically_normal() : canonical;
}

/// The descriptor `path` names, when it is one of this process's own: /dev/stdout,
/// /dev/stderr, /dev/fd/N, /proc/self/fd/N (bash's --json >(jq .) passes /dev/fd/63). A
/// report goes to a copy of it: reopening would fail for a socket, truncate a file stdout
/// was redirected to (after the text report went there), and renaming over it is wrong.
std::optional<int> fd_alias(const std::string& path) {
    if (path == "/dev/stdout") return 1;
    if (path == "/dev/stderr") return 2;
    for (const std::string_view dir : {"/dev/fd/", "/proc/self/fd/"}) {
        if (path.size() <= dir.size() || path.compare(0, dir.size(), dir) != 0) continue;
        int fd = -1;
        const char* const first = path.data() + dir.size();
        const auto [end, ec] = std::from_chars(first, path.data() + path.size(), fd);
        if (ec == std::errc() && end == path.data() + path.size() && fd >= 0) return fd;
    }
    return std::nullopt;
}

/// Where a rename must land: a symlink's target, even one that does not exist yet (so the
/// link stays a link).
fs::path rename_target(const std::string& path) {
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(path, ec))) return fs::path(path);
    const fs::path link = fs::read_symlink(path, ec);
    if (ec) return fs::path(path);
    return link.is_absolute() ? link : fs::path(path).parent_path() / link;
}

/// Writes `content` to `f` and closes it: "" or why not.
std::string write_and_close(std::FILE* f, std::string_view content) {
    const bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
    const int err = ok ? 0 : errno;
    const int close_result = std::fclose(f);
    if (!ok) return std::strerror(err);
    return close_result == 0 ? std::string{} : std::string(std::strerror(errno));
}

/// Opens the device or FIFO `target` for writing, as fopen("w") would, except that a FIFO
/// no process reads yet is waited for at most fifo_wait, not forever (open() would block,
/// deaf to SIGTERM: a user test). Null with errno set on failure (ENXIO from a FIFO:
/// nobody read). Only the open is bounded: a reader that opens and never reads can still
/// hold the write (a second Ctrl-C ends the process).
std::FILE* open_special(const fs::path& target, bool fifo) {
    constexpr auto fifo_wait = std::chrono::seconds(10);
    const auto until = std::chrono::steady_clock::now() + fifo_wait;
    for (;;) {
        const int fd = ::open(target.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC | (fifo ? O_NONBLOCK : 0));
        if (fd >= 0) {
            if (fifo) {
                const int flags = ::fcntl(fd, F_GETFL);
                if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {  // then write as usual
                    const int err = errno;
                    ::close(fd);
                    errno = err;
                    return nullptr;
                }
            }
            std::FILE* f = ::fdopen(fd, "w");
            if (f == nullptr) {
                const int err = errno;
                ::close(fd);
                errno = err;
            }
            return f;
        }
        if (!fifo || errno != ENXIO || std::chrono::steady_clock::now() >= until) return nullptr;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

struct Armed {
    CommonOptions options;  // the option pointers are not used once armed
    std::string command;
    std::optional<std::string> scenario;
    std::string backend;
    std::string url_redacted;
    ErrorReportRenderer renderer;  // empty: report@1's renderers
};

std::optional<Armed>& armed() {
    static std::optional<Armed> state;
    return state;
}

// The signal thread may write the error report of a run interrupted before its load began
// while the main thread is still connecting: the armed state is guarded.
std::mutex& armed_mutex() {
    static std::mutex mu;
    return mu;
}

/// "an SQLite database" when `path` is one (its header starts "SQLite format 3\0"), or
/// is the -wal, -shm or -journal of one; "" otherwise. Any command's report is refused
/// there, not only the database it runs on: a report must never replace a database.
std::string sqlite_file_kind(const std::string& path) {
    auto magic = [](const fs::path& p) {
        char head[16] = {};
        const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return false;
        const bool is = ::read(fd, head, sizeof head) == static_cast<ssize_t>(sizeof head) &&
                        std::memcmp(head, "SQLite format 3\0", sizeof head) == 0;
        ::close(fd);
        return is;
    };
    const fs::path target = rename_target(path);
    std::error_code ec;
    if (fs::is_regular_file(target, ec) && magic(target)) return "an SQLite database";
    const std::string name = target.string();
    for (const char* suffix : {"-wal", "-shm", "-journal"}) {
        const std::size_t n = std::strlen(suffix);
        if (name.size() > n && name.compare(name.size() - n, n, suffix) == 0 && magic(name.substr(0, name.size() - n))) {
            return std::string("the ") + suffix + " file of the SQLite database " + name.substr(0, name.size() - n);
        }
    }
    return {};
}

}  // namespace

std::vector<ProtectedFile> database_files(const DbUrl& db) {
    if (db.backend != Backend::sqlite || db.memory || db.path.empty()) return {};
    return {{db.path, "the database file"},
            {db.path + "-wal", "the database's write-ahead log"},
            {db.path + "-shm", "the database's shared-memory file"},
            {db.path + "-journal", "the database's rollback journal"}};
}

void check_report_targets(const CommonOptions& options, const std::vector<ProtectedFile>& protect) {
    const auto targets = targets_of(options);
    for (std::size_t i = 0; i < targets.size(); ++i) {
        const auto& [flag, path, option] = targets[i];
        if (path->empty()) {
            if (option != nullptr && option->count() > 0) {
                throw UnsafeReportPath(fmt::format("{} was given an empty file name; name a file, or leave {} out", flag, flag));
            }
            continue;
        }
        if (*path == "-") {
            if (i == 0) continue;
            throw UnsafeReportPath(fmt::format("{} writes to a file; '-' (stdout) is for --json only", flag));
        }
        const fs::path self = identity(*path);
        std::error_code dev_ec;
        const bool device = fs::is_character_file(*path, dev_ec);  // /dev/null twice is fine
        for (std::size_t k = 0; k < i && !device; ++k) {
            const std::string& other = *targets[k].path;
            if (other.empty() || other == "-") continue;
            if (other == *path || identity(other) == self) {
                throw UnsafeReportPath(fmt::format("{} and {} name the same file {}", targets[k].flag, flag, *path));
            }
        }
        for (const auto& p : protect) {
            if (p.path == *path || identity(p.path) == self) {
                throw UnsafeReportPath(fmt::format("{} {} is {}; a report must not replace it (name another file)", flag,
                                                   *path, p.what));
            }
        }
        if (const std::string kind = sqlite_file_kind(*path); !kind.empty()) {
            throw UnsafeReportPath(fmt::format("{} {} is {}; a report must not replace it (name another file)", flag,
                                               *path, kind));
        }
        std::error_code ec;
        if (fs::is_directory(*path, ec)) {
            throw UnsafeReportPath(fmt::format("{}: {} is a directory; name a file in it", flag, *path));
        }
        if (const auto fd = fd_alias(*path)) {
            if (::fcntl(*fd, F_GETFD) < 0) {
                throw UnsafeReportPath(fmt::format("{}: cannot write {}: descriptor {} is not open", flag, *path, *fd));
            }
            continue;  // written through a copy of the descriptor: no directory involved
        }
        if (const auto st = fs::status(rename_target(*path), ec); !ec && fs::exists(st) && !fs::is_regular_file(st)) {
            continue;  // a device or FIFO is written into, not replaced: its directory need not be writable
        }
        const fs::path dir = rename_target(*path).parent_path();
        const std::string dir_text = dir.empty() ? std::string(".") : dir.string();
        if (!fs::is_directory(dir_text, ec)) {
            throw UnsafeReportPath(fmt::format("{}: cannot write {}: directory {} does not exist", flag, *path, dir_text));
        }
        if (::access(dir_text.c_str(), W_OK) != 0) {
            throw UnsafeReportPath(
                fmt::format("{}: cannot write {}: directory {}: {}", flag, *path, dir_text, std::strerror(errno)));
        }
    }
}

bool write_report_output(std::string_view flag, const std::string& path, const std::string& doc) {
    if (path.empty()) return true;
    if (path == "-") {
        std::fwrite(doc.data(), 1, doc.size(), stdout);
        std::fflush(stdout);
        return true;
    }
    if (auto error = write_atomically(path, doc); !error.empty()) {
        fmt::print(stderr, "poolbench: {}: cannot write {}: {}\n", flag, path, error);
        return false;
    }
    return true;
}

std::string write_atomically(const std::string& path, std::string_view content) {
    if (const auto fd = fd_alias(path)) {
        const int copy = ::fcntl(*fd, F_DUPFD_CLOEXEC, 0);
        if (copy < 0) return std::strerror(errno);
        std::FILE* f = ::fdopen(copy, "w");
        if (f == nullptr) {
            const int err = errno;
            ::close(copy);
            return std::strerror(err);
        }
        return write_and_close(f, content);
    }
    std::error_code ec;
    const fs::path target = rename_target(path);
    const auto status = fs::status(target, ec);
    if (!ec && fs::exists(status) && !fs::is_regular_file(status)) {
        // A device or a FIFO (/dev/null, a FIFO a CI step reads): write into it; renaming
        // over it would replace the node.
        const bool fifo = fs::is_fifo(status);
        std::FILE* f = open_special(target, fifo);
        if (f == nullptr && fifo && errno == ENXIO) return "no process read the FIFO within 10 s (start its reader first)";
        if (f == nullptr) return std::strerror(errno);
        return write_and_close(f, content);
    }
    const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    std::string pattern = (dir / ("." + target.filename().string() + ".poolbench-XXXXXX")).string();
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    const int fd = ::mkstemp(name.data());
    if (fd < 0) return std::strerror(errno);
    const std::string temp(name.data());
    auto fail = [&](int err) {
        ::close(fd);
        ::unlink(temp.c_str());
        return std::string(std::strerror(err));
    };
    // mkstemp makes the file 0600: a report replacing a file keeps that file's mode; a new
    // one is as readable as any file the user creates.
    mode_t mode = 0;
    struct stat existing {};
    if (::stat(target.c_str(), &existing) == 0) {
        mode = existing.st_mode & 07777;
    } else {
        const mode_t mask = ::umask(0);
        ::umask(mask);
        mode = static_cast<mode_t>(0666 & ~mask);
    }
    if (::fchmod(fd, mode) != 0) return fail(errno);
    std::size_t done = 0;
    while (done < content.size()) {
        const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail(errno);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) return fail(errno);
    if (::close(fd) != 0) {
        const int err = errno;
        ::unlink(temp.c_str());
        return std::strerror(err);
    }
    if (::rename(temp.c_str(), target.c_str()) != 0) {
        const int err = errno;
        ::unlink(temp.c_str());
        return std::strerror(err);
    }
    return {};
}

void arm_error_reports(const CommonOptions& options, std::string command, std::optional<std::string> scenario) {
    Armed a;
    a.options.json = options.json;
    a.options.junit = options.junit;
    a.options.html = options.html;
    a.command = std::move(command);
    a.scenario = std::move(scenario);
    std::lock_guard lock(armed_mutex());
    armed() = std::move(a);
}

void arm_error_reports(const CommonOptions& options, std::string command, ErrorReportRenderer renderer) {
    arm_error_reports(options, std::move(command));
    std::lock_guard lock(armed_mutex());
    armed()->renderer = std::move(renderer);
}

void note_error_report_database(std::string backend, std::string url_redacted) {
    std::lock_guard lock(armed_mutex());
    if (!armed()) return;
    armed()->backend = std::move(backend);
    armed()->url_redacted = std::move(url_redacted);
}

void guard_reports_against(const CommonOptions& options, const DbUrl& db) {
    check_report_targets(options, database_files(db));
    note_error_report_database(std::string(to_string(db.backend)), db.redacted);
}

void disarm_error_reports() noexcept {
    std::lock_guard lock(armed_mutex());
    armed().reset();
}

void write_error_reports(int exit_code, const std::string& message) {
    Armed a;
    {
        std::lock_guard lock(armed_mutex());
        if (!armed()) return;
        a = std::move(*armed());
        armed().reset();
    }
    if (a.renderer) {
        for (const auto& [flag, path] : {std::pair{"--json", &a.options.json}, std::pair{"--junit", &a.options.junit},
                                         std::pair{"--html", &a.options.html}}) {
            if (path->empty()) continue;
            (void)write_report_output(flag, *path, a.renderer(flag, exit_code, message, a.backend, a.url_redacted));
        }
        return;
    }
    Report r;
    r.ran = false;
    r.command = a.command;
    r.scenario = a.scenario;
    r.backend = a.backend;
    r.url_redacted = a.url_redacted;
    r.error = RunError{exit_code, message};
    r.interrupted = exit_code == static_cast<int>(ExitCode::interrupted);
    struct Output {
        const char* flag;
        const std::string* path;
        std::unique_ptr<Renderer> renderer;
    };
    Output outputs[] = {{"--json", &a.options.json, make_json_renderer()},
                        {"--junit", &a.options.junit, make_junit_renderer()},
                        {"--html", &a.options.html, make_html_renderer()}};
    for (const auto& [flag, target, renderer] : outputs) {
        const std::string& path = *target;
        if (path.empty() || path == "-") continue;  // stdout carries the error line already
        (void)write_report_output(flag, path, renderer->render(r));
    }
}

}  // namespace poolbench::cli
