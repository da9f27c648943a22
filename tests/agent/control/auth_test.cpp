// Authorization from credentials and a fixture /proc.
#include "control/auth.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "unit/temp_tree.h"

namespace tierd::control {
namespace {

std::string status(uid_t real, uid_t effective, const char* cap_eff) {
  return fmt::format(
      "Name:\tworker\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t1\nPid:\t1\nPPid:\t0\n"
      "Uid:\t{0}\t{1}\t{1}\t{1}\nGid:\t100\t100\t100\t100\nCapInh:\t0000000000000000\n"
      "CapPrm:\t{2}\nCapEff:\t{2}\nCapBnd:\t000001ffffffffff\n",
      real, effective, cap_eff);
}

class Auth : public testing::Test {
 protected:
  void SetUp() override {
    tree_.file("100/status", status(1000, 1000, "0000000000000000"));  // plain user
    tree_.file("101/status", status(1000, 1000, "0000000000800000"));  // CAP_SYS_NICE
    tree_.file("102/status", status(1000, 1000, "0000000000200000"));  // CAP_SYS_ADMIN only
    tree_.file("103/status", status(1001, 1001, "000001ffffffffff"));  // someone else, all caps
    tree_.file("200/status", status(1001, 1001, "0000000000000000"));  // another user's target
    tree_.file("300/status", status(1000, 0, "0000000000000000"));     // ours (setuid: euid 0)
    tree_.file("400/status", "Name:\tbroken\n");                       // no Uid line
    tree_.file("1/status", status(0, 0, "000001ffffffffff"));
    auto proc = tier::FsRoot::open(tree_.root().string());
    ASSERT_TRUE(proc.has_value());
    proc_.emplace(std::move(*proc));
  }

  Caller caller(pid_t pid, uid_t uid) { return callerFromCredentials(pid, uid, 100, *proc_); }

  tier::test::TempTree tree_;
  std::optional<tier::FsRoot> proc_;
};

TEST_F(Auth, RootIsPrivilegedWithoutReadingProc) {
  Caller root = caller(999, 0);  // no /proc entry at all
  EXPECT_TRUE(root.privileged);
  EXPECT_EQ(root.pid, 999);
  EXPECT_EQ(root.uid, 0u);
  EXPECT_EQ(root.gid, 100u);
}

TEST_F(Auth, CapSysNiceIsPrivileged) {
  EXPECT_TRUE(caller(101, 1000).privileged);
}

TEST_F(Auth, OtherCapabilitiesAreNot) {
  EXPECT_FALSE(caller(100, 1000).privileged);
  EXPECT_FALSE(caller(102, 1000).privileged);
}

TEST_F(Auth, CapabilitiesOfAProcessWithAnotherUidDoNotCount) {
  // pid 103 is not the connecting process any more (its uid differs): a
  // recycled pid must not lend its capabilities.
  EXPECT_FALSE(caller(103, 1000).privileged);
}

TEST_F(Auth, UnknownCallerPidIsUnprivileged) {
  EXPECT_FALSE(caller(0, 1000).privileged);    // pid from another namespace
  EXPECT_FALSE(caller(555, 1000).privileged);  // exited
}

TEST_F(Auth, StatusAndConfigShowAndPsOfEverythingAreForAnyone) {
  Caller user = caller(100, 1000);
  EXPECT_TRUE(authorize(user, StatusRequest{}, *proc_).has_value());
  EXPECT_TRUE(authorize(user, ConfigShowRequest{}, *proc_).has_value());
  EXPECT_TRUE(authorize(user, PsRequest{}, *proc_).has_value());
}

TEST_F(Auth, ConfigReloadNeedsPrivilege) {
  auto denied = authorize(caller(100, 1000), ConfigReloadRequest{}, *proc_);
  ASSERT_FALSE(denied.has_value());
  EXPECT_EQ(denied.error().errnum, EPERM);
  EXPECT_NE(denied.error().context.find("uid 1000"), std::string::npos);
  EXPECT_TRUE(authorize(caller(101, 1000), ConfigReloadRequest{}, *proc_).has_value());
  EXPECT_TRUE(authorize(caller(1, 0), ConfigReloadRequest{}, *proc_).has_value());
}

TEST_F(Auth, OwnProcessesByRealUid) {
  Caller user = caller(100, 1000);
  AddressRange range{0x1000, 0x2000};
  EXPECT_TRUE(authorize(user, PsRequest{.pid = 300}, *proc_).has_value());
  EXPECT_TRUE(authorize(user, MigrateRequest{.pid = 300, .to_node = 1}, *proc_).has_value());
  EXPECT_TRUE(authorize(user, PinRequest{.pid = 300, .range = range, .tier = 1}, *proc_));
  EXPECT_TRUE(authorize(user, UnpinRequest{.pid = 300, .range = range}, *proc_));
}

TEST_F(Auth, OtherUsersProcessesAreEpermNamingPidAndUids) {
  Caller user = caller(100, 1000);
  AddressRange range{0x1000, 0x2000};
  std::vector<Request> requests{PsRequest{.pid = 200}, MigrateRequest{.pid = 200, .to_tier = 1},
                                PinRequest{.pid = 200, .range = range, .tier = 1},
                                UnpinRequest{.pid = 200, .range = range}};
  for (const auto& request : requests) {
    auto denied = authorize(user, request, *proc_);
    ASSERT_FALSE(denied.has_value()) << requestName(request);
    EXPECT_EQ(denied.error().errnum, EPERM);
    EXPECT_EQ(denied.error().context, "process 200 belongs to uid 1001, not to you (uid 1000)");
  }
  auto root_owned = authorize(user, MigrateRequest{.pid = 1, .to_node = 0}, *proc_);
  ASSERT_FALSE(root_owned.has_value());
  EXPECT_EQ(root_owned.error().context, "process 1 belongs to uid 0, not to you (uid 1000)");
}

TEST_F(Auth, RegisterAndHintOnlyForTheCallersOwnProcess) {
  AddressRange range{0x1000, 0x2000};
  Caller process_300 = caller(300, 1000);
  EXPECT_TRUE(authorize(process_300, RegisterRequest{.pid = 300}, *proc_));
  EXPECT_TRUE(authorize(process_300, HintRequest{.pid = 300, .range = range}, *proc_));
  // 100 is the same user as 300's owner, but not process 300.
  Caller other = caller(100, 1000);
  for (const Request& request : {Request{RegisterRequest{.pid = 300}},
                                 Request{HintRequest{.pid = 300, .range = range}},
                                 Request{HintRequest{.pid = 200, .range = range}}}) {
    auto denied = authorize(other, request, *proc_);
    ASSERT_FALSE(denied.has_value()) << requestName(request);
    EXPECT_EQ(denied.error().errnum, EPERM);
    EXPECT_NE(denied.error().context.find(std::string(requestName(request)) + " names process "),
              std::string::npos)
        << denied.error().context;
  }
  EXPECT_TRUE(authorize(caller(101, 1000), HintRequest{.pid = 200, .range = range}, *proc_));
  EXPECT_TRUE(authorize(caller(7, 0), RegisterRequest{.pid = 200}, *proc_));
  auto gone = authorize(process_300, HintRequest{.pid = 4242, .range = range}, *proc_);
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().errnum, ESRCH);
}

TEST_F(Auth, PrivilegedCallersMayTouchAnyProcess) {
  EXPECT_TRUE(authorize(caller(101, 1000), MigrateRequest{.pid = 200, .to_node = 1}, *proc_));
  EXPECT_TRUE(authorize(caller(7, 0), MigrateRequest{.pid = 1, .to_node = 1}, *proc_));
}

TEST_F(Auth, VanishedTargetIsEsrchNamingThePid) {
  for (const Caller& who : {caller(100, 1000), caller(1, 0)}) {
    auto gone = authorize(who, MigrateRequest{.pid = 4242, .to_node = 1}, *proc_);
    ASSERT_FALSE(gone.has_value());
    EXPECT_EQ(gone.error().errnum, ESRCH);
    EXPECT_EQ(gone.error().context, "process 4242 does not exist");
  }
}

TEST_F(Auth, UnreadableOwnerDeniesUnprivilegedCallers) {
  auto denied = authorize(caller(100, 1000), MigrateRequest{.pid = 400, .to_node = 1}, *proc_);
  ASSERT_FALSE(denied.has_value());
  EXPECT_NE(denied.error().context.find("process 400"), std::string::npos);
  EXPECT_TRUE(authorize(caller(1, 0), MigrateRequest{.pid = 400, .to_node = 1}, *proc_));
}

TEST_F(Auth, ReadsTheIdentityLines) {
  auto identity = readProcessIdentity(300, *proc_);
  ASSERT_TRUE(identity.has_value());
  EXPECT_EQ(identity->real_uid, 1000u);
  EXPECT_EQ(identity->effective_uid, 0u);
  EXPECT_EQ(identity->cap_effective, 0u);
  identity = readProcessIdentity(101, *proc_);
  ASSERT_TRUE(identity.has_value());
  EXPECT_EQ(identity->cap_effective, 1u << kCapSysNice);
}

TEST_F(Auth, LiveProcFindsThisProcess) {
  auto live = tier::FsRoot::open("/proc");
  ASSERT_TRUE(live.has_value());
  auto identity = readProcessIdentity(::getpid(), *live);
  ASSERT_TRUE(identity.has_value()) << identity.error().message();
  EXPECT_EQ(identity->real_uid, ::getuid());
  EXPECT_EQ(identity->effective_uid, ::geteuid());
}

}  // namespace
}  // namespace tierd::control
