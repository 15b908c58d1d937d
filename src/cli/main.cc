// kvbits: command-line entry point. The only place that decides exit codes.
#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "util/error.h"
#include "util/version.h"

int main(int argc, char** argv) {
  CLI::App app{"kvbits: small language models on CPUs with a per-token mixed-precision KV cache"};
  app.set_version_flag("--version", std::string("kvbits ") + kvbits::kVersion + " (" + kvbits::kGitCommit + ")");
  app.require_subcommand(1);
  std::map<CLI::App*, kvbits::cli::Runner> runners;
  const auto add = [&](const char* name, const char* help, kvbits::cli::Runner (*make)(CLI::App&)) {
    CLI::App* cmd = app.add_subcommand(name, help);
    runners[cmd] = make(*cmd);
  };
  add("run", "generate text from a prompt", kvbits::cli::add_run_command);
  add("chat", "interactive multi-turn chat", kvbits::cli::add_chat_command);
  add("inspect", "print a GGUF file's metadata and tensor table", kvbits::cli::add_inspect_command);
  add("bench", "measure prefill and decode speed (JSON)", kvbits::cli::add_bench_command);
  add("synth", "write a random-weight model of a given shape (tests, benchmarks)", kvbits::cli::add_synth_command);
  add("eval", "accuracy or perplexity under a KV policy (result JSON)", kvbits::cli::add_eval_command);
  add("report", "merge evaluation results into tables and plots", kvbits::cli::add_report_command);
  add("train", "fit a learned precision controller to measured damage", kvbits::cli::add_train_command);
  add("sweep", "evaluate policies at several bit budgets, then report", kvbits::cli::add_sweep_command);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line: CLI11's message, then a pointer to --help.
    std::fprintf(stderr, "error: %s (see kvbits --help)\n", e.what());
    return 2;
  }
  try {
    for (auto& [cmd, run] : runners) {
      if (cmd->parsed()) return run();
    }
    return 2;
  } catch (const kvbits::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
