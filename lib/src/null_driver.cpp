// null_driver.cpp — the null:// backend: no database at all, so a benchmark against it
// measures the pool itself. Every statement succeeds at once; query() returns one row
// holding the integer 1 so "SELECT 1"-style checks pass.
#include "drivers_internal.hpp"
#include "poolbench/diagnostics.hpp"

namespace poolbench::internal {

namespace {

class NullConnection final : public Connection {
public:
    void execute(std::string_view) override {}

    Rows query(std::string_view, std::span<const Value>) override {
        Rows r;
        r.rows.emplace_back(1, Value{std::int64_t{1}});
        return r;
    }

    bool ping() noexcept override { return true; }
    void reset() override {}
    void interrupt() noexcept override {}
    [[nodiscard]] bool is_broken() const noexcept override { return false; }
    [[nodiscard]] bool in_transaction() const noexcept override { return false; }
};

class NullDriver final : public Driver {
public:
    std::unique_ptr<Connection> connect(std::chrono::steady_clock::time_point) override {
        return std::make_unique<NullConnection>();
    }
    [[nodiscard]] Backend backend() const noexcept override { return Backend::null; }
    [[nodiscard]] std::string describe() const override { return "null://"; }
    [[nodiscard]] Diagnosis diagnose(const DiagnoseOptions& /*options*/) override {
        Diagnosis d;
        d.server = "none (null://: no database)";
        d.local = true;
        return d;
    }
};

}  // namespace

std::shared_ptr<Driver> make_null_driver() { return std::make_shared<NullDriver>(); }

}  // namespace poolbench::internal
