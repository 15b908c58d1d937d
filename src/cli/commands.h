#pragma once
// Subcommands of the `kvbits` executable. Each registers its flags on the CLI11 app and returns
// a callable that runs it; errors propagate as kvbits::Error to main, which prints one line and
// exits non-zero.
#include <functional>

#include <CLI/CLI.hpp>

namespace kvbits::cli {

using Runner = std::function<int()>;

Runner add_run_command(CLI::App& app);
Runner add_chat_command(CLI::App& app);
Runner add_inspect_command(CLI::App& app);
Runner add_bench_command(CLI::App& app);
Runner add_synth_command(CLI::App& app);
Runner add_eval_command(CLI::App& app);
Runner add_report_command(CLI::App& app);
Runner add_train_command(CLI::App& app);
Runner add_sweep_command(CLI::App& app);

}  // namespace kvbits::cli
