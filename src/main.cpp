// main.cpp — the poolbench executable: everything happens in run_cli().
#include "cli.hpp"

int main(int argc, char** argv) { return poolbench::cli::run_cli(argc, argv); }
