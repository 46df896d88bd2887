// driver_factory.cpp — make_driver: from a URL to the backend that serves it.
#include "drivers_internal.hpp"
#include "poolbench/drivers.hpp"
#include "poolbench/error.hpp"

namespace poolbench {

std::shared_ptr<Driver> make_driver(const DbUrl& url) {
    switch (url.backend) {
        case Backend::sqlite: return internal::make_sqlite_driver(url);
        case Backend::null: return internal::make_null_driver();
        case Backend::postgresql: return internal::make_postgres_driver(url);
        case Backend::mariadb: return internal::make_mariadb_driver(url);
    }
    throw ConfigError("unknown backend in database URL '" + url.redacted + "'");
}

std::shared_ptr<Driver> make_driver(std::string_view url) { return make_driver(parse_db_url(url)); }

}  // namespace poolbench
