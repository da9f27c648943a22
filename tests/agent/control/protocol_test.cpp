// The control protocol: requests in, replies out, and every rejection naming
// what was wrong.
#include "control/protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tierd::control {
namespace {

Request parsed(std::string_view line) {
  auto request = parseRequest(line);
  EXPECT_TRUE(request.has_value()) << line << ": " << request.error().message();
  return request.value_or(StatusRequest{});
}

TEST(Protocol, ParsesEveryRequestWithItsArguments) {
  EXPECT_TRUE(std::holds_alternative<StatusRequest>(parsed(R"({"version":1,"request":"status"})")));
  EXPECT_TRUE(std::holds_alternative<ConfigShowRequest>(
      parsed(R"({"version":1,"request":"config-show"})")));
  EXPECT_TRUE(std::holds_alternative<ConfigReloadRequest>(
      parsed(R"({"request":"config-reload","version":1})")));

  auto ps = std::get<PsRequest>(parsed(R"({"version":1,"request":"ps"})"));
  EXPECT_FALSE(ps.pid.has_value());
  ps = std::get<PsRequest>(parsed(R"({"version":1,"request":"ps","pid":1234})"));
  EXPECT_EQ(ps.pid, 1234);

  auto migrate = std::get<MigrateRequest>(parsed(
      R"({"version":1,"request":"migrate","pid":42,"range":{"start":4096,"end":8192},"to_node":2})"));
  EXPECT_EQ(migrate.pid, 42);
  ASSERT_TRUE(migrate.range.has_value());
  EXPECT_EQ(migrate.range->start, 4096u);
  EXPECT_EQ(migrate.range->end, 8192u);
  EXPECT_EQ(migrate.to_node, 2);
  EXPECT_FALSE(migrate.to_tier.has_value());

  migrate = std::get<MigrateRequest>(
      parsed(R"({"version":1,"request":"migrate","pid":4194304,"to_tier":0})"));
  EXPECT_EQ(migrate.pid, 4194304);
  EXPECT_FALSE(migrate.range.has_value());
  EXPECT_EQ(migrate.to_tier, 0);

  auto pin = std::get<PinRequest>(parsed(
      R"({"version":1,"request":"pin","pid":7,"range":{"start":0,"end":18446744073709551615},"tier":1})"));
  EXPECT_EQ(pin.pid, 7);
  EXPECT_EQ(pin.range.start, 0u);
  EXPECT_EQ(pin.range.end, UINT64_MAX);
  EXPECT_EQ(pin.tier, 1);

  auto unpin = std::get<UnpinRequest>(
      parsed(R"({"version":1,"request":"unpin","pid":7,"range":{"start":1,"end":2}})"));
  EXPECT_EQ(unpin.range.end, 2u);
}

// The shim's line (libtier/preload/agent_link.cpp formatRegistration), as sent.
constexpr const char* kShimRegistration =
    R"({"version":1,"request":"register","pid":4242,"program":"python3",)"
    R"("library":"libtier-preload","policy":{"ratio":[{"tier":"fast","weight":1},)"
    R"({"tier":"far","weight":3}],"threshold":null,"rules":[{"low":0,"high":4096,)"
    R"("target":"fast"}]},"tiers":[{"rank":0,"nodes":[0],"reserved_bytes":33554432},)"
    R"({"rank":1,"nodes":[1,3],"reserved_bytes":0}]})"
    "\n";

TEST(Protocol, ParsesTheShimsRegistration) {
  auto registration = std::get<RegisterRequest>(parsed(kShimRegistration));
  EXPECT_EQ(registration.pid, 4242);
  EXPECT_EQ(registration.program, "python3");
  EXPECT_EQ(registration.library, "libtier-preload");
  EXPECT_EQ(registration.policy["ratio"][1]["weight"], 3);
  EXPECT_TRUE(registration.policy["threshold"].is_null());
  ASSERT_EQ(registration.tiers.size(), 2u);
  EXPECT_EQ(registration.tiers[0].rank, 0);
  EXPECT_EQ(registration.tiers[0].nodes, std::vector<int>{0});
  EXPECT_EQ(registration.tiers[0].reserved_bytes, 33554432u);
  EXPECT_EQ(registration.tiers[1].rank, 1);
  EXPECT_EQ(registration.tiers[1].nodes, (std::vector<int>{1, 3}));
  EXPECT_EQ(registration.tiers[1].reserved_bytes, 0u);

  auto bare = std::get<RegisterRequest>(parsed(
      R"({"version":1,"request":"register","pid":1,"program":"a","library":"b","tiers":[]})"));
  EXPECT_TRUE(bare.policy.is_object());
  EXPECT_TRUE(bare.policy.empty());
  EXPECT_TRUE(bare.tiers.empty());
}

TEST(Protocol, ParsesHotAndColdHints) {
  auto hot = std::get<HintRequest>(parsed(
      R"({"version":1,"request":"hint","pid":9,"range":{"start":4096,"end":12288},"hint":"hot"})"));
  EXPECT_EQ(hot.pid, 9);
  EXPECT_EQ(hot.range.start, 4096u);
  EXPECT_EQ(hot.range.end, 12288u);
  EXPECT_EQ(hot.hint, Hint::kHot);
  auto cold = std::get<HintRequest>(parsed(
      R"({"version":1,"request":"hint","pid":9,"range":{"start":0,"end":1},"hint":"cold"})"));
  EXPECT_EQ(cold.hint, Hint::kCold);
}

TEST(Protocol, AcceptsTheLineTerminatorAndWhitespace) {
  parsed("{\"version\":1,\"request\":\"status\"}\n");
  parsed("  { \"version\" : 1 , \"request\" : \"status\" }\r\n");
}

TEST(Protocol, RequestsRoundTripThroughJson) {
  std::vector<Request> requests{
      StatusRequest{},
      PsRequest{},
      PsRequest{.pid = 99},
      MigrateRequest{.pid = 5, .range = AddressRange{0x1000, 0x5000}, .to_node = 3},
      MigrateRequest{.pid = 5, .to_tier = 1},
      PinRequest{.pid = 6, .range = {0x7f0000000000, 0x7f0000200000}, .tier = 2},
      UnpinRequest{.pid = 6, .range = {1, UINT64_MAX}},
      RegisterRequest{.pid = 7,
                      .program = "llama-server",
                      .library = "libtier-preload",
                      .policy = Json{{"threshold", 65536}},
                      .tiers = {{.rank = 0, .nodes = {0, 1}, .reserved_bytes = 1 << 20},
                                {.rank = 1, .nodes = {2}, .reserved_bytes = 0}}},
      HintRequest{.pid = 8, .range = {0x1000, 0x3000}, .hint = Hint::kHot},
      HintRequest{.pid = 8, .range = {0x1000, 0x3000}, .hint = Hint::kCold},
      ConfigShowRequest{},
      ConfigReloadRequest{},
  };
  for (const auto& request : requests) {
    Json json = requestToJson(request);
    EXPECT_EQ(json["version"], 1);
    EXPECT_EQ(json["request"], std::string(requestName(request)));
    auto back = parseRequest(json.dump());
    ASSERT_TRUE(back.has_value()) << json.dump() << ": " << back.error().message();
    EXPECT_EQ(back->index(), request.index());
    EXPECT_EQ(requestToJson(*back), json);
  }
}

TEST(Protocol, RequestNamesAreTheWireNames) {
  EXPECT_EQ(requestName(StatusRequest{}), "status");
  EXPECT_EQ(requestName(PsRequest{}), "ps");
  EXPECT_EQ(requestName(MigrateRequest{}), "migrate");
  EXPECT_EQ(requestName(PinRequest{}), "pin");
  EXPECT_EQ(requestName(UnpinRequest{}), "unpin");
  EXPECT_EQ(requestName(ConfigShowRequest{}), "config-show");
  EXPECT_EQ(requestName(ConfigReloadRequest{}), "config-reload");
  EXPECT_EQ(requestName(RegisterRequest{}), "register");
  EXPECT_EQ(requestName(HintRequest{}), "hint");
}

struct Rejection {
  std::string line;
  std::vector<std::string> message_has;  // each must appear in the error message
};

class ProtocolRejects : public testing::TestWithParam<Rejection> {};

TEST_P(ProtocolRejects, WithEinvalNamingTheField) {
  auto request = parseRequest(GetParam().line);
  ASSERT_FALSE(request.has_value()) << GetParam().line;
  EXPECT_EQ(request.error().errnum, EINVAL);
  for (const auto& part : GetParam().message_has)
    EXPECT_NE(request.error().context.find(part), std::string::npos)
        << "\"" << part << "\" not in: " << request.error().context;
}

#define V R"("version":1,)"
INSTANTIATE_TEST_SUITE_P(
    Fields, ProtocolRejects,
    testing::Values(
        Rejection{"", {"invalid JSON"}}, Rejection{"{", {"invalid JSON"}},
        Rejection{"{\"version\":1,\"request\":\"status\"} {}", {"invalid JSON"}},
        Rejection{"{\"version\":1,\"request\":\"st\xff\"}", {"invalid JSON"}},
        Rejection{"[1,2]", {"must be a JSON object", "array"}},
        Rejection{"\"status\"", {"must be a JSON object", "string"}},
        Rejection{R"({"request":"status"})", {"missing field \"version\""}},
        Rejection{R"({"version":"1","request":"status"})", {"\"version\"", "integer", "string"}},
        Rejection{R"({"version":1.0,"request":"status"})", {"\"version\"", "integer"}},
        Rejection{R"({"version":2,"request":"status"})", {"\"version\"", "version 2", "speaks 1"}},
        Rejection{R"({"version":0,"request":"status"})", {"\"version\"", "version 0"}},
        Rejection{R"({"version":1})", {"missing field \"request\""}},
        Rejection{R"({"version":1,"request":7})", {"\"request\"", "must be a string"}},
        Rejection{R"({"version":1,"request":"frobnicate"})",
                  {"unknown request \"frobnicate\"", "\"request\"", "config-reload"}},
        Rejection{R"({"version":1,"request":"status","pid":1})",
                  {"unknown field \"pid\"", "\"status\"", "no arguments"}},
        Rejection{"{" V R"("request":"ps","pdi":1})", {"unknown field \"pdi\"", "\"ps\""}},
        Rejection{"{" V R"("request":"unpin","pid":1,"range":{"start":1,"end":2},"tier":1})",
                  {"unknown field \"tier\"", "\"unpin\""}},
        Rejection{"{" V R"("request":"ps","pid":"12"})", {"\"pid\"", "integer", "string"}},
        Rejection{"{" V R"("request":"ps","pid":null})", {"\"pid\"", "integer", "null"}},
        Rejection{"{" V R"("request":"ps","pid":1.5})", {"\"pid\"", "integer"}},
        Rejection{"{" V R"("request":"ps","pid":0})",
                  {"\"pid\"", "between 1 and 4194304", "not 0"}},
        Rejection{"{" V R"("request":"ps","pid":-5})", {"\"pid\"", "not -5"}},
        Rejection{"{" V R"("request":"ps","pid":4194305})", {"\"pid\"", "not 4194305"}},
        Rejection{"{" V R"("request":"ps","pid":18446744073709551615})", {"\"pid\""}},
        Rejection{"{" V R"("request":"ps","pid":1,"pid":2})", {"duplicate field \"pid\""}},
        Rejection{"{" V R"("request":"migrate","to_node":1})", {"missing field \"pid\""}},
        Rejection{"{" V R"("request":"migrate","pid":1})",
                  {"\"to_node\"", "\"to_tier\"", "neither"}},
        Rejection{"{" V R"("request":"migrate","pid":1,"to_node":1,"to_tier":1})",
                  {"\"to_node\"", "\"to_tier\"", "both"}},
        Rejection{"{" V R"("request":"migrate","pid":1,"to_node":-1})", {"\"to_node\"", "not -1"}},
        Rejection{"{" V R"("request":"migrate","pid":1,"to_node":1024})", {"\"to_node\""}},
        Rejection{"{" V R"("request":"migrate","pid":1,"to_tier":"fast"})",
                  {"\"to_tier\"", "string"}},
        Rejection{"{" V R"("request":"migrate","pid":1,"to_node":1,"range":[1,2]})",
                  {"\"range\"", "object", "array"}},
        Rejection{"{" V
                  R"("request":"migrate","pid":1,"to_node":1,"range":{"start":8192,"end":4096}})",
                  {"\"range\"", "start 0x2000", "below end 0x1000"}},
        Rejection{"{" V
                  R"("request":"migrate","pid":1,"to_node":1,"range":{"start":4096,"end":4096}})",
                  {"\"range\"", "below"}},
        Rejection{
            "{" V
            R"("request":"migrate","pid":1,"to_node":1,"range":{"start":"0x1000","end":8192}})",
            {"\"range.start\"", "integer", "string"}},
        Rejection{"{" V
                  R"("request":"migrate","pid":1,"to_node":1,"range":{"start":-1,"end":8192}})",
                  {"\"range.start\"", "non-negative", "-1"}},
        Rejection{"{" V R"("request":"migrate","pid":1,"to_node":1,"range":{"start":0,"end":1.5}})",
                  {"\"range.end\""}},
        Rejection{
            "{" V
            R"("request":"migrate","pid":1,"to_node":1,"range":{"start":0,"end":18446744073709551616}})",
            {"\"range.end\""}},
        Rejection{"{" V R"("request":"migrate","pid":1,"to_node":1,"range":{"start":0}})",
                  {"missing field \"range.end\""}},
        Rejection{"{" V
                  R"("request":"migrate","pid":1,"to_node":1,"range":{"start":0,"end":9,"len":9}})",
                  {"unknown field \"range.len\""}},
        Rejection{
            "{" V
            R"("request":"migrate","pid":1,"to_node":1,"range":{"start":0,"start":1,"end":9}})",
            {"duplicate field \"start\""}},
        Rejection{"{" V R"("request":"pin","pid":1,"tier":1})", {"missing field \"range\""}},
        Rejection{"{" V R"("request":"pin","pid":1,"range":{"start":1,"end":2}})",
                  {"missing field \"tier\""}},
        Rejection{"{" V R"("request":"pin","pid":1,"range":{"start":1,"end":2},"tier":true})",
                  {"\"tier\"", "boolean"}},
        Rejection{"{" V R"("request":"unpin","pid":1})", {"missing field \"range\""}},
        Rejection{"{" V R"("request":"register","program":"a","library":"b","tiers":[]})",
                  {"missing field \"pid\""}},
        Rejection{"{" V R"("request":"register","pid":1,"library":"b","tiers":[]})",
                  {"missing field \"program\""}},
        Rejection{"{" V R"("request":"register","pid":1,"program":"","library":"b","tiers":[]})",
                  {"\"program\"", "1 to 256 bytes", "not 0"}},
        Rejection{"{" V R"("request":"register","pid":1,"program":7,"library":"b","tiers":[]})",
                  {"\"program\"", "string", "7"}},
        Rejection{"{" V R"("request":"register","pid":1,"program":"a","tiers":[]})",
                  {"missing field \"library\""}},
        Rejection{"{" V R"("request":"register","pid":1,"program":"a","library":"b"})",
                  {"missing field \"tiers\""}},
        Rejection{"{" V
                  R"("request":"register","pid":1,"program":"a","library":"b","tiers":{}})",
                  {"\"tiers\"", "array", "object"}},
        Rejection{"{" V
                  R"("request":"register","pid":1,"program":"a","library":"b","policy":[],"tiers":[]})",
                  {"\"policy\"", "object", "array"}},
        Rejection{"{" V
                  R"("request":"register","pid":1,"program":"a","library":"b","tiers":[7]})",
                  {"\"tiers[0]\"", "object", "7"}},
        Rejection{"{" V
                  R"("request":"register","pid":1,"program":"a","library":"b","tiers":[{"rank":0,"nodes":[0]}]})",
                  {"missing field \"tiers[0].reserved_bytes\""}},
        Rejection{
            "{" V
            R"("request":"register","pid":1,"program":"a","library":"b","tiers":[{"rank":0,"nodes":[0],"reserved_bytes":0,"speed":9}]})",
            {"unknown field \"tiers[0].speed\""}},
        Rejection{
            "{" V
            R"("request":"register","pid":1,"program":"a","library":"b","tiers":[{"rank":0,"nodes":[0],"reserved_bytes":0},{"rank":1,"nodes":[2,-1],"reserved_bytes":0}]})",
            {"\"tiers[1].nodes[1]\"", "not -1"}},
        Rejection{
            "{" V
            R"("request":"register","pid":1,"program":"a","library":"b","tiers":[{"rank":0,"nodes":3,"reserved_bytes":0}]})",
            {"\"tiers[0].nodes\"", "array", "3"}},
        Rejection{
            "{" V
            R"("request":"register","pid":1,"program":"a","library":"b","tiers":[{"rank":0,"nodes":[0],"reserved_bytes":-4}]})",
            {"\"tiers[0].reserved_bytes\"", "non-negative"}},
        Rejection{"{" V
                  R"("request":"register","pid":1,"program":"a","library":"b","tiers":[],"tier":1})",
                  {"unknown field \"tier\"", "\"register\""}},
        Rejection{"{" V R"("request":"hint","pid":1,"hint":"hot"})", {"missing field \"range\""}},
        Rejection{"{" V R"("request":"hint","pid":1,"range":{"start":1,"end":2}})",
                  {"missing field \"hint\""}},
        Rejection{"{" V R"("request":"hint","pid":1,"range":{"start":1,"end":2},"hint":"warm"})",
                  {"\"hint\"", "\"hot\" or \"cold\"", "\"warm\""}},
        Rejection{"{" V R"("request":"hint","pid":1,"range":{"start":1,"end":2},"hint":1})",
                  {"\"hint\"", "\"hot\" or \"cold\"", "1"}},
        Rejection{"{" V R"("request":"hint","range":{"start":1,"end":2},"hint":"hot"})",
                  {"missing field \"pid\""}},
        Rejection{"{" V
                  R"("request":"hint","pid":1,"range":{"start":2,"end":1},"hint":"cold"})",
                  {"\"range\"", "below"}}));
#undef V

TEST(Protocol, LongFieldNamesAreShortenedInMessages) {
  std::string name(10000, 'x');
  auto request = parseRequest(R"({"version":1,"request":"ps",")" + name + R"(":1})");
  ASSERT_FALSE(request.has_value());
  EXPECT_LT(request.error().context.size(), 300u) << request.error().context;
  EXPECT_NE(request.error().context.find("xxx...\""), std::string::npos);
}

TEST(Protocol, LinesOver64KiBAreEmsgsize) {
  std::string line = R"({"version":1,"request":"status"})";
  line += std::string(kMaxRequestBytes - line.size(), ' ');
  ASSERT_EQ(line.size(), kMaxRequestBytes);
  EXPECT_TRUE(parseRequest(line).has_value());         // exactly the limit
  EXPECT_TRUE(parseRequest(line + "\n").has_value());  // plus its terminator
  auto over = parseRequest(line + " ");
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().errnum, EMSGSIZE);
  EXPECT_NE(over.error().context.find("65536"), std::string::npos);
}

TEST(Protocol, DeepNestingIsAnErrorNotACrash) {
  std::string deep = R"({"version":1,"request":"ps","pid":)" + std::string(30000, '[') +
                     std::string(30000, ']') + "}";
  auto request = parseRequest(deep);
  ASSERT_FALSE(request.has_value());
  EXPECT_NE(request.error().context.find("\"pid\""), std::string::npos);
}

TEST(Protocol, FormatsOkReplies) {
  EXPECT_EQ(formatReply(Json{{"pid", 1}}), "{\"ok\":true,\"result\":{\"pid\":1}}\n");
}

TEST(Protocol, FormatsErrorRepliesWithTheErrnoName) {
  std::string line = formatReply(tier::fail(EPERM, "process 1 belongs to uid 0, not to you"));
  EXPECT_EQ(line,
            "{\"ok\":false,\"error\":{\"code\":\"EPERM\",\"errno\":1,\"message\":\"process 1 "
            "belongs to uid 0, not to you\"}}\n");
  Json busy = Json::parse(formatReply(tier::fail(EBUSY, "busy")));
  EXPECT_EQ(busy["error"]["code"], "EBUSY");
  EXPECT_EQ(busy["error"]["errno"], EBUSY);
}

TEST(Protocol, ErrorsWithoutAKnownErrnoAreEinval) {
  for (int errnum : {0, -3, 100000}) {
    Json reply = Json::parse(formatReply(tier::fail(errnum, "odd")));
    EXPECT_EQ(reply["error"]["code"], "EINVAL");
    EXPECT_EQ(reply["error"]["errno"], EINVAL);
    EXPECT_EQ(reply["error"]["message"], "odd");
  }
}

TEST(Protocol, RepliesNeverThrowOnBadUtf8) {
  std::string line = formatReply(tier::fail(EINVAL, "bad \xff\xfe bytes"));
  EXPECT_EQ(line.back(), '\n');
  EXPECT_TRUE(Json::accept(line));
  EXPECT_TRUE(Json::accept(formatReply(Json{{"comm", "\xc3"}})));
}

TEST(Protocol, ParseReplyInvertsFormatReply) {
  auto ok = parseReply(formatReply(Json{{"a", 1}}));
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, (Json{{"a", 1}}));

  auto error = parseReply(formatReply(tier::fail(ESRCH, "process 9 does not exist")));
  ASSERT_FALSE(error.has_value());
  EXPECT_EQ(error.error().errnum, ESRCH);
  EXPECT_EQ(error.error().context, "process 9 does not exist");
  EXPECT_EQ(error.error().message(), "process 9 does not exist: No such process");
}

TEST(Protocol, MalformedRepliesAreEproto) {
  for (std::string_view line :
       {"", "garbage", "[]", R"({"ok":"yes"})", R"({"ok":true})", R"({"ok":false})",
        R"({"ok":false,"error":"x"})", R"({"ok":false,"error":{"errno":"1","message":"m"}})",
        R"({"ok":false,"error":{"errno":1}})"}) {
    auto reply = parseReply(line);
    ASSERT_FALSE(reply.has_value()) << line;
    EXPECT_EQ(reply.error().errnum, EPROTO) << line;
    EXPECT_NE(reply.error().context.find("malformed reply"), std::string::npos);
  }
}

TEST(Protocol, ErrnoNames) {
  EXPECT_EQ(errnoName(EPERM), "EPERM");
  EXPECT_EQ(errnoName(ESRCH), "ESRCH");
  EXPECT_EQ(errnoName(EBUSY), "EBUSY");
  EXPECT_EQ(errnoName(0), "EINVAL");
  EXPECT_EQ(errnoName(99999), "EINVAL");
}

}  // namespace
}  // namespace tierd::control
