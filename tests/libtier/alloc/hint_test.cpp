// tier_hint against a stand-in agent on a unix socket that parses each line
// with the agent's own protocol parser (agent/control/protocol.h) and answers
// as the agent does: pin/unpin and hint (hot/cold) must parse. No agent at
// all: -ENOTCONN.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <variant>

#include "control/protocol.h"
#include "tier/tier.h"

namespace {

class StandInAgent {
 public:
  StandInAgent() {
    dir_ = std::filesystem::temp_directory_path() /
           ("tier-hint-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "tierd.sock").string();
    listener_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    strcpy(address.sun_path, path_.c_str());
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(listen(listener_, 4), 0);
    setenv("LIBTIER_TIERD_SOCKET", path_.c_str(), 1);
  }
  ~StandInAgent() {
    unsetenv("LIBTIER_TIERD_SOCKET");
    close(listener_);
    std::filesystem::remove_all(dir_);
  }

  // Serves one connection; `last` is what the agent's parser made of it.
  void serveOne() {
    server_ = std::thread([this] {
      int fd = accept(listener_, nullptr, nullptr);
      std::string line;
      char c;
      while (read(fd, &c, 1) == 1 && c != '\n') line += c;
      line_ = line;
      auto request = tierd::control::parseRequest(line);
      parsed_ = request.has_value();
      if (parsed_) request_ = *request;
      std::string reply = parsed_ ? R"({"ok":true,"result":{}})"
                                  : R"({"ok":false,"error":{"code":"EINVAL","errno":22,"message":")" +
                                        std::string(request.error().message()) + "\"}}";
      reply += '\n';
      EXPECT_EQ(write(fd, reply.data(), reply.size()), static_cast<ssize_t>(reply.size()));
      close(fd);
    });
  }
  void wait() { server_.join(); }

  std::string line_;
  bool parsed_ = false;
  tierd::control::Request request_;

 private:
  std::filesystem::path dir_;
  std::string path_;
  int listener_ = -1;
  std::thread server_;
};

TEST(Hint, PinAndUnpinAreRequestsTheAgentParses) {
  StandInAgent agent;
  auto* block = static_cast<char*>(tier_malloc(TIER_FAST, 3 * 4096));
  ASSERT_NE(block, nullptr);
  agent.serveOne();
  EXPECT_EQ(tier_hint(block + 10, 5000, TIER_HINT_PIN), 0);
  agent.wait();
  ASSERT_TRUE(agent.parsed_) << agent.line_;
  auto* pin = std::get_if<tierd::control::PinRequest>(&agent.request_);
  ASSERT_NE(pin, nullptr) << agent.line_;
  EXPECT_EQ(pin->pid, getpid());
  EXPECT_EQ(pin->range.start, reinterpret_cast<uintptr_t>(block + 10) & ~uintptr_t{4095});
  EXPECT_EQ(pin->range.end, (reinterpret_cast<uintptr_t>(block + 5010) + 4095) & ~uintptr_t{4095});
  EXPECT_EQ(pin->tier, tier_of(block));

  agent.serveOne();
  EXPECT_EQ(tier_hint(block, 4096, TIER_HINT_UNPIN), 0);
  agent.wait();
  ASSERT_TRUE(agent.parsed_) << agent.line_;
  EXPECT_NE(std::get_if<tierd::control::UnpinRequest>(&agent.request_), nullptr) << agent.line_;
  tier_free(block);
}

TEST(Hint, HotAndColdAreHintRequestsTheAgentParses) {
  StandInAgent agent;
  int value = 0;
  for (tier_hint_t hint : {TIER_HINT_HOT, TIER_HINT_COLD}) {
    agent.serveOne();
    EXPECT_EQ(tier_hint(&value, sizeof value, hint), 0);
    agent.wait();
    ASSERT_TRUE(agent.parsed_) << agent.line_;
    auto* request = std::get_if<tierd::control::HintRequest>(&agent.request_);
    ASSERT_NE(request, nullptr) << agent.line_;
    EXPECT_EQ(request->pid, getpid());
    EXPECT_EQ(request->hint,
              hint == TIER_HINT_HOT ? tierd::control::Hint::kHot : tierd::control::Hint::kCold);
    EXPECT_EQ(request->range.start, reinterpret_cast<uintptr_t>(&value) & ~uintptr_t{4095});
  }
}

TEST(Hint, NoAgentIsENotConnAndBadArgumentsAreEinval) {
  setenv("LIBTIER_TIERD_SOCKET", "/nonexistent/tierd.sock", 1);
  int value = 0;
  EXPECT_EQ(tier_hint(&value, sizeof value, TIER_HINT_PIN), -ENOTCONN);
  unsetenv("LIBTIER_TIERD_SOCKET");
  EXPECT_EQ(tier_hint(&value, 0, TIER_HINT_PIN), -EINVAL);
  EXPECT_EQ(tier_hint(&value, 4, static_cast<tier_hint_t>(0)), -EINVAL);
}

}  // namespace
