// libFuzzer target for the control protocol's request parser (and the
// client's reply parser). Beyond "no crash, no UB, no hang", it checks what
// must hold whenever parseRequest accepts or refuses a line.
// Built as `control_request_fuzz` with Clang, and with any compiler as
// `control_request_fuzz_regression`, which replays corpus/ through the same
// entry point (tests/fuzz/regression_main.cpp).
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "control/protocol.h"

namespace {

// Invariant violations abort so that libFuzzer records the input.
#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

using namespace tierd::control;

bool validRange(const AddressRange& range) {
  return range.start < range.end;
}

void checkAccepted(const Request& request) {
  if (const auto* ps = std::get_if<PsRequest>(&request)) {
    if (ps->pid) FUZZ_CHECK(*ps->pid >= 1 && *ps->pid <= kMaxPid);
  } else if (const auto* migrate = std::get_if<MigrateRequest>(&request)) {
    FUZZ_CHECK(migrate->pid >= 1 && migrate->pid <= kMaxPid);
    FUZZ_CHECK(migrate->to_node.has_value() != migrate->to_tier.has_value());
    int target = migrate->to_node ? *migrate->to_node : *migrate->to_tier;
    FUZZ_CHECK(target >= 0 && target <= kMaxNodeId);
    if (migrate->range) FUZZ_CHECK(validRange(*migrate->range));
  } else if (const auto* pin = std::get_if<PinRequest>(&request)) {
    FUZZ_CHECK(pin->pid >= 1 && pin->pid <= kMaxPid);
    FUZZ_CHECK(pin->tier >= 0 && pin->tier <= kMaxNodeId);
    FUZZ_CHECK(validRange(pin->range));
  } else if (const auto* unpin = std::get_if<UnpinRequest>(&request)) {
    FUZZ_CHECK(unpin->pid >= 1 && unpin->pid <= kMaxPid);
    FUZZ_CHECK(validRange(unpin->range));
  }
  // What a client would send for it parses back to the same request.
  Json json = requestToJson(request);
  auto again = parseRequest(json.dump());
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->index() == request.index());
  FUZZ_CHECK(requestToJson(*again) == json);
  // And the reply a server would send is one line a client can read.
  std::string reply = formatReply(json);
  FUZZ_CHECK(!reply.empty() && reply.back() == '\n');
  FUZZ_CHECK(reply.find('\n') == reply.size() - 1);
  auto result = parseReply(reply);
  FUZZ_CHECK(result.has_value() && *result == json);
}

void checkRefused(const tier::Error& error, size_t size) {
  FUZZ_CHECK(error.errnum == EINVAL || error.errnum == EMSGSIZE);
  FUZZ_CHECK(!error.context.empty());
  FUZZ_CHECK(error.context.size() < 600);  // user text in messages is shortened
  if (error.errnum == EMSGSIZE) FUZZ_CHECK(size > kMaxRequestBytes);
  std::string reply = formatReply(std::unexpected(error));
  FUZZ_CHECK(reply.find('\n') == reply.size() - 1);
  auto back = parseReply(reply);
  FUZZ_CHECK(!back.has_value() && back.error().errnum == error.errnum);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto request = parseRequest(line);
  if (request)
    checkAccepted(*request);
  else
    checkRefused(request.error(), size);
  // The client's side must survive anything a server (or impostor) sends.
  auto reply = parseReply(line);
  if (!reply) FUZZ_CHECK(reply.error().errnum > 0);
  return 0;
}
