#include "metrics/http_exporter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <cerrno>
#include <string>

#include "metrics/registry.h"

namespace tierd::metrics {
namespace {

using ::testing::HasSubstr;

class HttpExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(registry_.describe("tierd_pages_promoted_total", Type::Counter, "Promoted."));
    registry_.add("tierd_pages_promoted_total", {{"node", "2"}}, 12345);
    auto started = HttpExporter::start("127.0.0.1:0", [this] { return registry_.renderText(); });
    ASSERT_TRUE(started) << started.error().message();
    exporter_ = std::move(*started);
  }

  httplib::Client client() const {
    httplib::Client client("127.0.0.1", exporter_->boundPort());
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(5, 0);
    return client;
  }

  Registry registry_;
  std::unique_ptr<HttpExporter> exporter_;
};

TEST_F(HttpExporterTest, ServesMetricsOnTheChosenPort) {
  EXPECT_GT(exporter_->boundPort(), 0);
  EXPECT_EQ(exporter_->address(), "127.0.0.1:" + std::to_string(exporter_->boundPort()));

  auto response = client().Get("/metrics");
  ASSERT_TRUE(response) << httplib::to_string(response.error());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(response->body, registry_.renderText());
  EXPECT_THAT(response->body, HasSubstr("tierd_pages_promoted_total{node=\"2\"} 12345\n"));

  // Each scrape renders anew.
  registry_.add("tierd_pages_promoted_total", {{"node", "2"}}, 1);
  response = client().Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_THAT(response->body, HasSubstr("tierd_pages_promoted_total{node=\"2\"} 12346\n"));
}

TEST_F(HttpExporterTest, ServesSeveralRequestsOnOneConnection) {
  auto cli = client();
  cli.set_keep_alive(true);
  for (int i = 0; i < 5; ++i) {
    auto response = cli.Get("/metrics");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
  }
}

TEST_F(HttpExporterTest, IndexLinksToMetrics) {
  auto response = client().Get("/");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->get_header_value("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(response->body, HasSubstr("<a href=\"/metrics\">"));
}

TEST_F(HttpExporterTest, HeadHasNoBody) {
  auto response = client().Head("/metrics");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "");
}

TEST_F(HttpExporterTest, OtherPathsAre404) {
  for (const char* path : {"/metric", "/metrics/", "/metrics/x", "/index.html", "/../etc/passwd"}) {
    auto response = client().Get(path);
    ASSERT_TRUE(response) << path;
    EXPECT_EQ(response->status, 404) << path;
  }
}

TEST_F(HttpExporterTest, OtherMethodsAre405) {
  auto response = client().Post("/metrics", "x=1", "application/x-www-form-urlencoded");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 405);
  EXPECT_EQ(response->get_header_value("Allow"), "GET, HEAD");

  response = client().Delete("/metrics");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 405);
}

TEST_F(HttpExporterTest, OversizedBodyIsRefused) {
  auto response = client().Post("/metrics", std::string(64 * 1024, 'x'), "text/plain");
  // Refused either by method (405) before the body is read, or by size (413);
  // never served.
  if (response) {
    EXPECT_NE(response->status, 200);
  }
}

TEST_F(HttpExporterTest, SecondBindOnTheSamePortIsEaddrinuse) {
  std::string listen = "127.0.0.1:" + std::to_string(exporter_->boundPort());
  auto second = HttpExporter::start(listen, [] { return std::string(); });
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().errnum, EADDRINUSE);
  EXPECT_THAT(second.error().context, HasSubstr(listen));
  EXPECT_THAT(second.error().message(), HasSubstr("Address already in use"));
}

TEST_F(HttpExporterTest, StopReleasesThePort) {
  int port = exporter_->boundPort();
  exporter_->stop();
  exporter_->stop();  // idempotent
  EXPECT_FALSE(client().Get("/metrics"));

  auto again = HttpExporter::start("127.0.0.1:" + std::to_string(port), [] { return "x 1\n"; });
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ((*again)->boundPort(), port);
  auto response = client().Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->body, "x 1\n");
}

TEST(HttpExporterStartTest, BadListenStringsAreNamed) {
  for (const char* listen :
       {"nonsense", "1.2.3.4:99999", "[::1]:x", "", ":", "127.0.0.1:", "127.0.0.1:-1",
        "127.0.0.1:+80", "::1:9464", "[::1]", "[::1", "[127.0.0.1]:80", "300.1.1.1:80",
        "example.com:80", "127.0.0.1:123456"}) {
    auto started = HttpExporter::start(listen, [] { return std::string(); });
    ASSERT_FALSE(started) << listen;
    EXPECT_EQ(started.error().errnum, EINVAL) << listen;
    EXPECT_THAT(started.error().context, HasSubstr("\"" + std::string(listen) + "\"")) << listen;
  }
}

TEST(HttpExporterStartTest, UnavailableAddressIsNamed) {
  // 192.0.2.1 (TEST-NET-1) is not an address of this host.
  auto started = HttpExporter::start("192.0.2.1:0", [] { return std::string(); });
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().errnum, EADDRNOTAVAIL);
  EXPECT_THAT(started.error().context, HasSubstr("192.0.2.1:0"));
}

TEST(ParseListenAddressTest, AcceptedForms) {
  auto full = parseListenAddress("127.0.0.1:9464");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->host, "127.0.0.1");
  EXPECT_EQ(full->port, 9464);
  EXPECT_FALSE(full->ipv6);

  for (const char* listen : {"9464", ":9464", "localhost:9464"}) {
    auto parsed = parseListenAddress(listen);
    ASSERT_TRUE(parsed) << listen;
    EXPECT_EQ(parsed->host, "127.0.0.1") << listen;
    EXPECT_EQ(parsed->port, 9464) << listen;
  }

  auto v6 = parseListenAddress("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  EXPECT_TRUE(v6->ipv6);

  auto any = parseListenAddress("0.0.0.0:65535");
  ASSERT_TRUE(any);
  EXPECT_EQ(any->port, 65535);
}

TEST(HttpExporterStartTest, DestructorStopsARunningServer) {
  int port = 0;
  {
    auto started = HttpExporter::start("127.0.0.1:0", [] { return std::string("a 1\n"); });
    ASSERT_TRUE(started);
    port = (*started)->boundPort();
    httplib::Client client("127.0.0.1", port);
    ASSERT_TRUE(client.Get("/metrics"));
  }
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1, 0);
  EXPECT_FALSE(client.Get("/metrics"));
}

}  // namespace
}  // namespace tierd::metrics
