// pg_standby.hpp — throwaway servers of the test's own (scripts/pg_sandbox.sh): a streaming
// standby of the shared primary, for tests that end it as a standby (promote it), so the
// shared one stays as it is; a second primary (another cluster). Stopped and removed by
// their destructors.
#pragma once

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

namespace pbtest {

/// scripts/pg_sandbox.sh in the source tree this file belongs to.
inline std::string pg_sandbox_script() {
    std::string here = __FILE__;
    return here.substr(0, here.rfind("/tests/")) + "/scripts/pg_sandbox.sh";
}

/// A throwaway server the test owns: `scripts/pg_sandbox.sh ARGS`'s exported URL and
/// directory (read from the lines starting `export URL_VAR=` and `export DIR_VAR=`), stopped
/// and removed by the destructor.
struct OwnServer {
    std::string url, dir;

    OwnServer(const std::string& args, const std::string& url_var, const std::string& dir_var) {
        FILE* out = ::popen((pg_sandbox_script() + " " + args).c_str(), "r");
        REQUIRE(out != nullptr);
        std::string text;
        char buf[512];
        while (std::fgets(buf, sizeof buf, out) != nullptr) text += buf;
        REQUIRE(::pclose(out) == 0);
        std::istringstream lines(text);
        for (std::string line; std::getline(lines, line);) {
            const std::string url_key = "export " + url_var + "=";
            const std::string dir_key = "export " + dir_var + "=";
            if (line.rfind(url_key, 0) == 0) url = line.substr(url_key.size());
            if (line.rfind(dir_key, 0) == 0) dir = line.substr(dir_key.size());
        }
        REQUIRE_FALSE(url.empty());
        REQUIRE_FALSE(dir.empty());
    }
    OwnServer(const OwnServer&) = delete;
    OwnServer& operator=(const OwnServer&) = delete;
    ~OwnServer() {
        if (!dir.empty()) (void)std::system((pg_sandbox_script() + " stop " + dir + " >/dev/null 2>&1").c_str());
    }
};

/// The primary at POOLBENCH_PG_DIR (FAILS without it), for OwnStandby.
inline std::string shared_primary_dir() {
    const char* primary = std::getenv("POOLBENCH_PG_DIR");
    if (primary == nullptr || *primary == '\0') {
        FAIL("POOLBENCH_PG_DIR is not set: start the server with scripts/pg_sandbox.sh start (scripts/test.sh does)");
    }
    return primary;
}

/// A streaming standby of the shared primary, the test's own.
struct OwnStandby : OwnServer {
    OwnStandby() : OwnServer("start-standby " + shared_primary_dir(), "POOLBENCH_PG_STANDBY_URL", "POOLBENCH_PG_STANDBY_DIR") {}
};

/// A second primary: another cluster (its own initdb, so its own system identifier).
struct OwnPrimary : OwnServer {
    OwnPrimary() : OwnServer("start", "POOLBENCH_PG_URL", "POOLBENCH_PG_DIR") {}
};

}  // namespace pbtest
