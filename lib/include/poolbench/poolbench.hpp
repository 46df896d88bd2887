// poolbench/poolbench.hpp — everything public in one include.
#pragma once
#include "poolbench/config.hpp"
#include "poolbench/connection.hpp"
#include "poolbench/diagnostics.hpp"
#include "poolbench/drivers.hpp"
#include "poolbench/error.hpp"
#include "poolbench/histogram.hpp"
#include "poolbench/pool.hpp"
#include "poolbench/prometheus.hpp"
#include "poolbench/stats.hpp"
#include "poolbench/transaction.hpp"
#include "poolbench/url.hpp"
#include "poolbench/writer_gate.hpp"
