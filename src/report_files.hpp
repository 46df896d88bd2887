// report_files.hpp — where reports go, and how they get there without harming a file.
//
// A user's files are never destroyed by a run, failed or not:
//   - the targets (--json, --junit, --html) are checked before anything runs, and nothing
//     is written to them then: not empty, '-' only for --json, no two naming one file,
//     none naming a file the run reads or owns (a SQLite database and its -wal, -shm and
//     -journal files; compare's inputs), their directory writable;
//   - every report is written to a temporary file in the target's directory and renamed
//     into place, so a failure mid-write leaves the previous file whole;
//   - once the targets are checked ("armed"), a run that ends with exit 2, 3 or 130
//     still writes a valid report that says so (JSON verdict "error" with the exit code
//     and the reason; JUnit with an <error>), so CI never reads a stale green file. An
//     unsafe target (UnsafeReportPath) is the exception: then nothing is written.
//
// Thread-safety: main thread only (the armed state is process-wide).
#pragma once

#include "cli.hpp"

#include <poolbench/url.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace poolbench::cli {

/// A report target is unsafe (exit 2, and no report is written anywhere).
class UnsafeReportPath : public UsageFailure {
public:
    using UsageFailure::UsageFailure;
};

/// A file no report may replace, and what it is ("the database file").
struct ProtectedFile {
    std::string path;
    std::string what;
};

/// The files of a SQLite database URL (the file and its -wal, -shm, -journal
/// companions); empty for other backends and in-memory databases.
[[nodiscard]] std::vector<ProtectedFile> database_files(const DbUrl& db);

/// Checks the targets as described above. Writes nothing. Throws UnsafeReportPath.
void check_report_targets(const CommonOptions& options, const std::vector<ProtectedFile>& protect = {});

/// Writes `content` to a temporary file beside `path` and renames it into place (a path
/// that exists and is not a regular file, such as /dev/stdout, is written directly).
/// Returns "" on success, else the reason; on failure `path` is untouched.
[[nodiscard]] std::string write_atomically(const std::string& path, std::string_view content);

/// Writes one finished report output: to stdout when `path` is "-" (only --json may be,
/// check_report_targets), else with write_atomically; nothing when `path` is empty. On
/// failure prints "poolbench: FLAG: cannot write PATH: REASON" and returns false.
bool write_report_output(std::string_view flag, const std::string& path, const std::string& doc);

/// From now on a failure of the run writes an error report to the checked targets.
void arm_error_reports(const CommonOptions& options, std::string command,
                       std::optional<std::string> scenario = std::nullopt);
/// A command's own error report, in its own schema (diagnose: poolbench/diagnose@2 with
/// verdict "error"): `flag` is "--json", "--junit" or "--html"; `backend` and `url` are
/// "" until the database is known (the URL redacted).
using ErrorReportRenderer = std::function<std::string(std::string_view flag, int exit_code, const std::string& message,
                                                      const std::string& backend, const std::string& url)>;
/// Like arm_error_reports, rendered by `renderer`; with it, `--json -` gets the error
/// report on stdout as well (the run's own JSON would have gone there).
void arm_error_reports(const CommonOptions& options, std::string command, ErrorReportRenderer renderer);
/// What the error report says about the database, once it is known.
void note_error_report_database(std::string backend, std::string url_redacted);
/// The database is known: checks the targets again against its files (throws
/// UnsafeReportPath) and names it in any error report.
void guard_reports_against(const CommonOptions& options, const DbUrl& db);
/// The run's own report was written (or must not be): no error report any more.
void disarm_error_reports() noexcept;
/// Writes the error report to every armed target, then disarms; nothing when not armed.
/// A target that cannot be written is named in one line on stderr.
void write_error_reports(int exit_code, const std::string& message);

}  // namespace poolbench::cli
