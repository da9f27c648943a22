// A real server on a socket in a temp dir, with a fake Handler.
#include "control/server.h"

#include <grp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "client.h"
#include "fake_handler.h"
#include "unit/temp_tree.h"

namespace tierd::control {
namespace {

using namespace std::chrono_literals;
using test::FakeHandler;

Json reply(const std::string& line) {
  Json json = Json::parse(line, nullptr, false);
  EXPECT_FALSE(json.is_discarded()) << "not JSON: " << line;
  return json;
}

std::string errorCode(const std::string& line) {
  Json json = reply(line);
  if (!json.is_object() || !json.contains("error")) return "";
  return json["error"].value("code", "");
}

class ServerTest : public testing::Test {
 protected:
  void SetUp() override {
    auto proc = tier::FsRoot::open("/proc");
    ASSERT_TRUE(proc.has_value());
    proc_.emplace(std::move(*proc));
    path_ = (tree_.root() / "run" / "tierd" / "tierd.sock").string();
  }

  std::unique_ptr<Server> start(ServerOptions options = {}) {
    auto server = Server::start(path_, handler_, *proc_, options);
    EXPECT_TRUE(server.has_value()) << server.error().message();
    return server ? std::move(*server) : nullptr;
  }

  tier::Result<Json> call(const Request& request) {
    return tierctl::callAgent(path_, requestToJson(request), 10s);
  }

  tier::test::TempTree tree_;
  std::optional<tier::FsRoot> proc_;
  std::string path_;
  FakeHandler handler_;
};

TEST_F(ServerTest, ServesEveryRequest) {
  auto server = start();
  ASSERT_TRUE(server);

  auto status = call(StatusRequest{});
  ASSERT_TRUE(status.has_value()) << status.error().message();
  EXPECT_EQ(*status, test::cannedStatus());

  auto ps = call(PsRequest{});
  ASSERT_TRUE(ps.has_value());
  EXPECT_EQ(*ps, test::cannedPs());

  pid_t self = ::getpid();
  auto migrate =
      call(MigrateRequest{.pid = self, .range = AddressRange{0x1000, 0x3000}, .to_node = 1});
  ASSERT_TRUE(migrate.has_value()) << migrate.error().message();
  EXPECT_EQ((*migrate)["pages_moved"], 2560);

  EXPECT_TRUE(call(PinRequest{.pid = self, .range = {0x1000, 0x2000}, .tier = 1}).has_value());
  EXPECT_TRUE(call(UnpinRequest{.pid = self, .range = {0x1000, 0x2000}}).has_value());
  EXPECT_EQ(call(ConfigShowRequest{}).value_or(Json())["interval_ms"], 1000);
  EXPECT_TRUE(call(ConfigReloadRequest{}).has_value());

  auto calls = handler_.calls();
  ASSERT_EQ(calls.size(), 7u);
  EXPECT_EQ(calls[2].what, "migrate");
  EXPECT_EQ(calls[2].request, (Json{{"pid", self}, {"range", {0x1000, 0x3000}}, {"to_node", 1}}));
  EXPECT_EQ(calls[2].caller.pid, self);  // SO_PEERCRED
  EXPECT_EQ(calls[2].caller.uid, ::geteuid());
  EXPECT_EQ(calls[2].caller.privileged, ::geteuid() == 0);

  auto stats = server->stats();
  EXPECT_EQ(stats.requests["status"]["ok"], 1u);
  EXPECT_EQ(stats.requests["migrate"]["ok"], 1u);
  EXPECT_EQ(stats.requests["config-reload"]["ok"], 1u);
  EXPECT_EQ(stats.connections, 7u);
}

TEST_F(ServerTest, CreatesTheDirectoryAndLetsEveryoneConnect) {
  auto server = start();
  ASSERT_TRUE(server);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  ASSERT_EQ(::stat((tree_.root() / "run" / "tierd").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
}

TEST_F(ServerTest, MalformedRequestsGetAnErrorAndTheServerGoesOn) {
  auto server = start();
  ASSERT_TRUE(server);
  std::string line = test::exchange(path_, "this is not json\n");
  EXPECT_EQ(errorCode(line), "EINVAL") << line;
  EXPECT_NE(line.find("invalid JSON"), std::string::npos);

  line = test::exchange(path_, R"({"version":1,"request":"migrate","pid":0,"to_node":1})"
                               "\n");
  EXPECT_EQ(errorCode(line), "EINVAL");
  EXPECT_NE(line.find("pid"), std::string::npos);

  line = test::exchange(path_, "\n");
  EXPECT_EQ(errorCode(line), "EINVAL");

  // Closing without sending anything is no request at all.
  int fd = test::connectTo(path_);
  ASSERT_GE(fd, 0);
  ::shutdown(fd, SHUT_WR);
  EXPECT_EQ(test::readReply(fd), "");
  ::close(fd);

  EXPECT_TRUE(call(StatusRequest{}).has_value());
  auto stats = server->stats();
  EXPECT_EQ(stats.requests["unknown"]["invalid"], 3u);
  EXPECT_EQ(stats.requests["status"]["ok"], 1u);
  EXPECT_EQ(stats.empty, 1u);
}

TEST_F(ServerTest, ARequestWithoutNewlineBeforeEofIsServed) {
  auto server = start();
  ASSERT_TRUE(server);
  int fd = test::connectTo(path_);
  ASSERT_GE(fd, 0);
  test::sendAll(fd, R"({"version":1,"request":"status"})");
  ::shutdown(fd, SHUT_WR);
  std::string line = test::readReply(fd);
  ::close(fd);
  EXPECT_EQ(reply(line)["ok"], true) << line;
}

TEST_F(ServerTest, OversizedRequestsAreRefusedAndClosed) {
  auto server = start();
  ASSERT_TRUE(server);
  std::string huge = R"({"version":1,"request":"status","x":")" + std::string(70000, 'a') + "\"}\n";
  std::string line = test::exchange(path_, huge);
  EXPECT_EQ(errorCode(line), "EMSGSIZE") << line;
  EXPECT_NE(line.find("65536"), std::string::npos);

  // A line of exactly 64 KiB is still a request.
  std::string request = R"({"version":1,"request":"status"})";
  request += std::string(kMaxRequestBytes - request.size(), ' ') + "\n";
  line = test::exchange(path_, request);
  EXPECT_EQ(reply(line)["ok"], true) << line.substr(0, 200);

  EXPECT_TRUE(call(StatusRequest{}).has_value());
  EXPECT_EQ(server->stats().oversized, 1u);
}

TEST_F(ServerTest, SlowClientsTimeOutWithoutBlockingOthers) {
  auto server = start({.read_timeout = 400ms});
  ASSERT_TRUE(server);
  int slow = test::connectTo(path_);
  ASSERT_GE(slow, 0);
  test::sendAll(slow, R"({"version":1,)");

  // A drip-feeding client does not extend its deadline byte by byte.
  std::atomic<bool> dripping{true};
  int drip = test::connectTo(path_);
  ASSERT_GE(drip, 0);
  std::thread dripper([&] {
    std::string text = R"({"version":1,"request":"status"})";
    for (size_t i = 0; dripping && i < text.size(); ++i) {
      test::sendAll(drip, text.substr(i, 1));
      std::this_thread::sleep_for(50ms);
    }
  });

  auto start_time = std::chrono::steady_clock::now();
  EXPECT_TRUE(call(StatusRequest{}).has_value());  // served meanwhile
  EXPECT_LT(std::chrono::steady_clock::now() - start_time, 300ms);

  std::string line = test::readReply(slow, 3s);
  EXPECT_EQ(errorCode(line), "ETIMEDOUT") << line;
  std::string drip_line = test::readReply(drip, 3s);
  EXPECT_EQ(errorCode(drip_line), "ETIMEDOUT") << drip_line;
  EXPECT_LT(std::chrono::steady_clock::now() - start_time, 1200ms);
  dripping = false;
  dripper.join();
  ::close(slow);
  ::close(drip);
  EXPECT_EQ(server->stats().timeouts, 2u);
}

TEST_F(ServerTest, FortyConcurrentConnectionsGetSixteenWorkersAndEbusy) {
  auto server = start();  // default cap: 16
  ASSERT_TRUE(server);
  handler_.closeGate();
  std::string request =
      requestToJson(MigrateRequest{.pid = ::getpid(), .to_node = 1}).dump() + "\n";
  std::vector<int> fds;
  for (int i = 0; i < 40; ++i) {
    int fd = test::connectTo(path_);
    ASSERT_GE(fd, 0) << i;
    test::sendAll(fd, request);
    fds.push_back(fd);
  }
  ASSERT_TRUE(handler_.waitForWaiting(16, 10s));
  for (int i = 0; i < 100 && server->stats().busy < 24; ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(server->stats().busy, 24u);
  EXPECT_EQ(server->stats().active, 16u);
  handler_.openGate();

  int ok = 0, busy = 0;
  for (int fd : fds) {
    std::string line = test::readReply(fd);
    ::close(fd);
    Json json = reply(line);
    if (json.value("ok", false)) ++ok;
    if (errorCode(line) == "EBUSY") ++busy;
  }
  EXPECT_EQ(ok, 16);
  EXPECT_EQ(busy, 24);
  EXPECT_TRUE(call(StatusRequest{}).has_value());
  for (int i = 0; i < 100 && server->stats().active > 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(server->stats().active, 0u);
}

TEST_F(ServerTest, EbusyReachesTheClientThroughCallAgent) {
  auto server = start({.max_connections = 1});
  ASSERT_TRUE(server);
  handler_.closeGate();
  std::thread holder([&] { (void)call(MigrateRequest{.pid = ::getpid(), .to_node = 1}); });
  ASSERT_TRUE(handler_.waitForWaiting(1, 10s));
  auto busy = call(StatusRequest{});
  ASSERT_FALSE(busy.has_value());
  EXPECT_EQ(busy.error().errnum, EBUSY);
  EXPECT_NE(busy.error().message().find("busy"), std::string::npos);
  handler_.openGate();
  holder.join();
}

TEST_F(ServerTest, ASecondServerOnTheSamePathIsRefused) {
  auto first = start();
  ASSERT_TRUE(first);
  FakeHandler other;
  auto second = Server::start(path_, other, *proc_, {});
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().errnum, EADDRINUSE);
  EXPECT_NE(second.error().message().find("already listening on " + path_), std::string::npos);
  EXPECT_TRUE(call(StatusRequest{}).has_value());  // the first one is untouched
  EXPECT_EQ(handler_.calls().size(), 1u);
}

// Binds a unix socket at `path`; listens if asked. Returns the fd.
int bindAt(const std::string& path, bool listening) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  EXPECT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
  if (listening) {
    EXPECT_EQ(::listen(fd, 4), 0);
  }
  return fd;
}

TEST_F(ServerTest, AForeignListenerIsNotReplaced) {
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  int foreign = bindAt(path_, true);
  auto server = Server::start(path_, handler_, *proc_, {});
  ASSERT_FALSE(server.has_value());
  EXPECT_EQ(server.error().errnum, EADDRINUSE);
  EXPECT_NE(server.error().message().find("already listening"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(path_));
  ::close(foreign);
}

TEST_F(ServerTest, AStaleSocketFileIsReplaced) {
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  ::close(bindAt(path_, false));  // the file stays, nobody listens
  ASSERT_TRUE(std::filesystem::is_socket(path_));
  auto server = start();
  ASSERT_TRUE(server);
  EXPECT_TRUE(call(StatusRequest{}).has_value());
}

TEST_F(ServerTest, AFileThatIsNotASocketIsLeftAlone) {
  tree_.file("run/tierd/tierd.sock", "precious");
  auto server = Server::start(path_, handler_, *proc_, {});
  ASSERT_FALSE(server.has_value());
  EXPECT_EQ(server.error().errnum, EEXIST);
  EXPECT_NE(server.error().message().find("not a socket"), std::string::npos);
  std::ifstream in(path_);
  std::string text;
  in >> text;
  EXPECT_EQ(text, "precious");
}

TEST_F(ServerTest, TooLongPathIsAClearError) {
  std::string path = "/tmp/" + std::string(200, 'x') + ".sock";
  auto server = Server::start(path, handler_, *proc_, {});
  ASSERT_FALSE(server.has_value());
  EXPECT_EQ(server.error().errnum, ENAMETOOLONG);
}

TEST_F(ServerTest, StopUnlinksTheSocketAndANewServerCanStart) {
  auto server = start();
  ASSERT_TRUE(server);
  EXPECT_TRUE(server->stop().has_value());
  EXPECT_FALSE(std::filesystem::exists(path_));
  auto gone = call(StatusRequest{});
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().message(),
            "cannot reach tierd at " + path_ + ": No such file or directory (is tierd running?)");
  EXPECT_TRUE(server->stop().has_value());  // idempotent
  auto next = start();
  ASSERT_TRUE(next);
  EXPECT_TRUE(call(StatusRequest{}).has_value());
}

TEST_F(ServerTest, StopCancelsHandlersThatListen) {
  auto server = start({.stop_timeout = 5s});
  ASSERT_TRUE(server);
  handler_.closeGate(/*honor_stop=*/true);
  tier::Result<Json> result;
  std::thread client([&] { result = call(MigrateRequest{.pid = ::getpid(), .to_node = 1}); });
  ASSERT_TRUE(handler_.waitForWaiting(1, 10s));
  auto begin = std::chrono::steady_clock::now();
  EXPECT_TRUE(server->stop().has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 2s);
  client.join();
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().errnum, ECANCELED);
}

TEST_F(ServerTest, StopWaitsWithADeadlineForHandlersThatDoNot) {
  auto server = start({.stop_timeout = 300ms});
  ASSERT_TRUE(server);
  handler_.closeGate(/*honor_stop=*/false);
  std::thread client([&] { (void)call(MigrateRequest{.pid = ::getpid(), .to_node = 1}); });
  ASSERT_TRUE(handler_.waitForWaiting(1, 10s));
  auto begin = std::chrono::steady_clock::now();
  auto stopped = server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 2s);
  ASSERT_FALSE(stopped.has_value());
  EXPECT_EQ(stopped.error().errnum, ETIMEDOUT);
  EXPECT_NE(stopped.error().context.find("migrate"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path_));  // unlinked even so
  handler_.openGate();
  client.join();
  server.reset();  // joins the worker that finished late
}

TEST_F(ServerTest, HandlerExceptionsBecomeErrorReplies) {
  auto server = start();
  ASSERT_TRUE(server);
  handler_.throwOnPin();
  auto pin = call(PinRequest{.pid = ::getpid(), .range = {0x1000, 0x2000}, .tier = 0});
  ASSERT_FALSE(pin.has_value());
  EXPECT_EQ(pin.error().errnum, EIO);
  EXPECT_NE(pin.error().message().find("pin table corrupted"), std::string::npos);
  EXPECT_TRUE(call(StatusRequest{}).has_value());
  auto stats = server->stats();
  EXPECT_EQ(stats.handler_exceptions, 1u);
  EXPECT_EQ(stats.requests["pin"]["failed"], 1u);
}

TEST_F(ServerTest, HandlerErrorsAndDenialsAreCounted) {
  auto server = start();
  ASSERT_TRUE(server);
  auto busy = call(MigrateRequest{.pid = 4321, .to_node = 1});
  // pid 4321 is probably not running here: either way the reply is an error.
  ASSERT_FALSE(busy.has_value());
  auto gone = call(MigrateRequest{.pid = kMaxPid, .to_node = 1});
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().errnum, ESRCH);
  EXPECT_EQ(gone.error().context, "process 4194304 does not exist");
  EXPECT_GE(server->stats().requests["migrate"]["denied"], 1u);
}

// ---- an unprivileged caller, for real --------------------------------------

// Raw, allocation-free request for a forked child: sends `request` and copies
// the reply line into `out`.
void childExchange(const char* path, const char* request, char* out, size_t size) {
  out[0] = '\0';
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path, sizeof(address.sun_path) - 1);
  if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    std::snprintf(out, size, "connect failed: errno %d\n", errno);
    return;
  }
  (void)!::write(fd, request, std::strlen(request));
  size_t used = 0;
  while (used + 1 < size) {
    ssize_t n = ::read(fd, out + used, size - 1 - used);
    if (n <= 0) break;
    used += static_cast<size_t>(n);
    if (std::memchr(out, '\n', used) != nullptr) break;
  }
  out[used] = '\0';
  ::close(fd);
}

TEST_F(ServerTest, UnprivilegedUserMayMoveOnlyTheirOwnProcesses) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become uid 65534";
  auto server = start();
  ASSERT_TRUE(server);
  // The temp dir is 0700; let uid 65534 reach the socket.
  std::filesystem::permissions(tree_.root(), std::filesystem::perms::owner_all |
                                                 std::filesystem::perms::group_exec |
                                                 std::filesystem::perms::others_exec);
  std::filesystem::permissions(tree_.root() / "run", std::filesystem::perms(0755));

  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    gid_t nogroup = 65534;
    if (::setgroups(1, &nogroup) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0)
      ::_exit(3);
    pid_t grandchild = ::fork();  // a process of our own, uid 65534 too
    if (grandchild == 0) {
      ::pause();
      ::_exit(0);
    }
    static char request[256], out[4096];
    const char* lines[] = {
        R"({"version":1,"request":"migrate","pid":1,"to_node":0})"
        "\n",
        nullptr,  // our own grandchild, filled in below
        R"({"version":1,"request":"ps"})"
        "\n",
        R"({"version":1,"request":"config-reload"})"
        "\n",
    };
    std::snprintf(request, sizeof(request),
                  R"({"version":1,"request":"migrate","pid":%d,"to_node":0})"
                  "\n",
                  grandchild);
    lines[1] = request;
    for (const char* line : lines) {
      childExchange(path_.c_str(), line, out, sizeof(out));
      (void)!::write(pipe_fds[1], out, std::strlen(out));
      if (out[0] == '\0' || out[std::strlen(out) - 1] != '\n') (void)!::write(pipe_fds[1], "\n", 1);
    }
    ::kill(grandchild, SIGKILL);
    ::waitpid(grandchild, nullptr, 0);
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string output;
  char buffer[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof(buffer))) > 0;)
    output.append(buffer, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "setresuid failed";

  std::vector<std::string> replies;
  for (size_t pos = 0, end; (end = output.find('\n', pos)) != std::string::npos; pos = end + 1)
    replies.push_back(output.substr(pos, end - pos));
  ASSERT_EQ(replies.size(), 4u) << output;

  EXPECT_EQ(errorCode(replies[0]), "EPERM") << replies[0];
  EXPECT_NE(replies[0].find("process 1 belongs to uid 0, not to you (uid 65534)"),
            std::string::npos)
      << replies[0];
  EXPECT_EQ(reply(replies[1])["ok"], true) << replies[1];
  EXPECT_EQ(reply(replies[2])["ok"], true) << replies[2];
  EXPECT_EQ(errorCode(replies[3]), "EPERM") << replies[3];

  auto calls = handler_.calls();
  ASSERT_EQ(calls.size(), 2u);  // the own migrate and ps; the denied ones never reach it
  EXPECT_EQ(calls[0].what, "migrate");
  EXPECT_EQ(calls[0].caller.uid, 65534u);
  EXPECT_EQ(calls[0].caller.gid, 65534u);
  EXPECT_FALSE(calls[0].caller.privileged);
  EXPECT_EQ(calls[0].caller.pid, child);
  EXPECT_EQ(calls[1].what, "ps");
  EXPECT_FALSE(calls[1].caller.privileged);
}

}  // namespace
}  // namespace tierd::control
