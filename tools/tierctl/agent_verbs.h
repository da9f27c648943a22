// The verbs that ask the running agent through its control socket:
// status, ps, migrate, pin, unpin, config show|reload. Each attach function
// fits main.cpp's verb table: it declares the verb's flags on `cmd` (and the
// global --socket PATH option, once) and returns the action. Actions print
// text for people or, with -j, the reply's result as JSON; an error reply is
// one "tierctl: <message>" line on stderr and exit status 1.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string_view>

#include "base/result.h"
#include "control/handler.h"
#include "roots.h"

namespace tierctl {

std::function<int()> attachStatusVerb(CLI::App& cmd, const RootOptions& roots);
std::function<int()> attachPsVerb(CLI::App& cmd, const RootOptions& roots);
std::function<int()> attachMigrateVerb(CLI::App& cmd, const RootOptions& roots);
std::function<int()> attachPinVerb(CLI::App& cmd, const RootOptions& roots);
std::function<int()> attachUnpinVerb(CLI::App& cmd, const RootOptions& roots);
std::function<int()> attachConfigVerb(CLI::App& cmd, const RootOptions& roots);

// "START-END", each hex with 0x or decimal; START < END.
tier::Result<tierd::control::AddressRange> parseRangeArgument(std::string_view text);

}  // namespace tierctl
