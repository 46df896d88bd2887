// poolbench/internal/mutex.hpp — a std::mutex that Clang's thread-safety analysis can see.
//
// Fields say which mutex guards them (POOLBENCH_GUARDED_BY(mu_)), functions say which
// they need held (POOLBENCH_REQUIRES(mu_)), and `clang++ -fsyntax-only -Wthread-safety`
// (scripts/test.sh runs it over lib/) proves every access holds it. GCC ignores the
// attributes. The wrappers follow google/benchmark's src/mutex.h: the analysis needs an
// annotated type, and std::mutex is not one in libstdc++.
//
// Thread-safety: Mutex is a mutex. A MutexLock belongs to the thread that made it.
#pragma once

#include <mutex>

#if defined(__clang__)
#define POOLBENCH_TSA(x) __attribute__((x))
#else
#define POOLBENCH_TSA(x)
#endif

#define POOLBENCH_CAPABILITY(x) POOLBENCH_TSA(capability(x))
#define POOLBENCH_SCOPED_CAPABILITY POOLBENCH_TSA(scoped_lockable)
#define POOLBENCH_GUARDED_BY(x) POOLBENCH_TSA(guarded_by(x))
#define POOLBENCH_PT_GUARDED_BY(x) POOLBENCH_TSA(pt_guarded_by(x))
#define POOLBENCH_REQUIRES(...) POOLBENCH_TSA(requires_capability(__VA_ARGS__))
#define POOLBENCH_EXCLUDES(...) POOLBENCH_TSA(locks_excluded(__VA_ARGS__))
#define POOLBENCH_ACQUIRE(...) POOLBENCH_TSA(acquire_capability(__VA_ARGS__))
#define POOLBENCH_RELEASE(...) POOLBENCH_TSA(release_capability(__VA_ARGS__))
#define POOLBENCH_RETURN_CAPABILITY(x) POOLBENCH_TSA(lock_returned(x))
#define POOLBENCH_NO_THREAD_SAFETY_ANALYSIS POOLBENCH_TSA(no_thread_safety_analysis)

namespace poolbench::internal {

class POOLBENCH_CAPABILITY("mutex") Mutex {
public:
    void lock() POOLBENCH_ACQUIRE() { mu_.lock(); }
    void unlock() POOLBENCH_RELEASE() { mu_.unlock(); }
    /// For condition variables (through MutexLock::native()).
    std::mutex& native() noexcept POOLBENCH_RETURN_CAPABILITY(this) { return mu_; }

private:
    std::mutex mu_;
};

/// Holds a Mutex for its scope; unlock()/lock() let go of it and take it back in between.
class POOLBENCH_SCOPED_CAPABILITY MutexLock {
public:
    explicit MutexLock(Mutex& mu) POOLBENCH_ACQUIRE(mu) : lk_(mu.native()) {}
    ~MutexLock() POOLBENCH_RELEASE() {}
    MutexLock(const MutexLock&) = delete;
    MutexLock& operator=(const MutexLock&) = delete;

    void lock() POOLBENCH_ACQUIRE() { lk_.lock(); }
    void unlock() POOLBENCH_RELEASE() { lk_.unlock(); }
    /// For std::condition_variable::wait*: the analysis cannot follow the wait's unlock and
    /// relock, which is what it must assume anyway (the mutex is held before and after).
    std::unique_lock<std::mutex>& native() noexcept { return lk_; }

private:
    std::unique_lock<std::mutex> lk_;
};

}  // namespace poolbench::internal
