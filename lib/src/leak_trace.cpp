#include "leak_trace.hpp"

#include <boost/stacktrace.hpp>

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace poolbench::internal {

void capture_stack(RawStack& out) noexcept {
    const std::size_t n = boost::stacktrace::safe_dump_to(0, out.frames.data(), sizeof(out.frames));
    out.depth = std::min(n, out.frames.size());
}

namespace {
bool is_pool_frame(const std::string& name) {
    return name.rfind("poolbench::internal::", 0) == 0 || name.rfind("poolbench::Pool::", 0) == 0 ||
           name.rfind("poolbench::Lease::", 0) == 0;
}
}  // namespace

std::vector<std::string> symbolize(const RawStack& stack, std::size_t max_frames) {
    std::vector<std::string> out;
    bool in_pool_prefix = true;
    for (std::size_t i = 0; i < stack.depth && out.size() < max_frames; ++i) {
        const boost::stacktrace::frame f(stack.frames[i]);
        std::string name = f.name();
        if (name.empty()) continue;
        if (in_pool_prefix && is_pool_frame(name)) continue;
        in_pool_prefix = false;
        const std::string file = f.source_file();
        if (!file.empty()) name += " at " + file + ":" + std::to_string(f.source_line());
        out.push_back(std::move(name));
    }
    return out;
}

long current_thread_id() noexcept {
    thread_local const long id = static_cast<long>(::syscall(SYS_gettid));
    return id;
}

const std::string& current_thread_name() {
    thread_local const std::string name = [] {
        char buf[17] = {};
        if (::prctl(PR_GET_NAME, buf, 0, 0, 0) != 0) return std::string{};
        return std::string(buf);
    }();
    return name;
}

}  // namespace poolbench::internal
