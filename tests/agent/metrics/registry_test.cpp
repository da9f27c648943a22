#include "metrics/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace tierd::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(RegistryTest, RendersExactExposition) {
  Registry registry;
  ASSERT_TRUE(registry.describe("tierd_pages_promoted_total", Type::Counter, "Pages promoted."));
  ASSERT_TRUE(registry.describe("tierd_node_capacity_bytes", Type::Gauge,
                                "Capacity with a \\ backslash\nand a newline."));
  ASSERT_TRUE(registry.describe("tierd_agent_up", Type::Gauge, ""));

  // Labels given out of name order, series added out of order.
  registry.set("tierd_node_capacity_bytes", {{"node", "2"}, {"kind", "cxl"}}, 68719476736.0);
  registry.set("tierd_node_capacity_bytes", {{"kind", "dram"}, {"node", "0"}}, 2.5);
  registry.set("tierd_node_capacity_bytes", {{"kind", "a\"b\\c\nd"}, {"node", "9"}},
               std::numeric_limits<double>::quiet_NaN());
  registry.set("tierd_node_capacity_bytes", {{"kind", "far"}, {"node", "3"}},
               std::numeric_limits<double>::infinity());
  registry.add("tierd_pages_promoted_total", {{"node", "1"}}, 3);
  registry.add("tierd_pages_promoted_total", {{"node", "0"}}, 1e6);
  registry.add("tierd_pages_promoted_total", {{"node", "1"}}, 4);
  registry.set("tierd_agent_up", {}, 1);

  EXPECT_EQ(registry.renderText(),
            "# HELP tierd_agent_up\n"
            "# TYPE tierd_agent_up gauge\n"
            "tierd_agent_up 1\n"
            "# HELP tierd_node_capacity_bytes Capacity with a \\\\ backslash\\nand a newline.\n"
            "# TYPE tierd_node_capacity_bytes gauge\n"
            "tierd_node_capacity_bytes{kind=\"a\\\"b\\\\c\\nd\",node=\"9\"} NaN\n"
            "tierd_node_capacity_bytes{kind=\"cxl\",node=\"2\"} 68719476736\n"
            "tierd_node_capacity_bytes{kind=\"dram\",node=\"0\"} 2.5\n"
            "tierd_node_capacity_bytes{kind=\"far\",node=\"3\"} +Inf\n"
            "# HELP tierd_pages_promoted_total Pages promoted.\n"
            "# TYPE tierd_pages_promoted_total counter\n"
            "tierd_pages_promoted_total{node=\"0\"} 1000000\n"
            "tierd_pages_promoted_total{node=\"1\"} 7\n");
}

TEST(RegistryTest, EmptyRegistryRendersNothing) {
  Registry registry;
  ASSERT_TRUE(registry.describe("tierd_x", Type::Gauge, "X."));
  EXPECT_EQ(registry.renderText(), "");
}

TEST(RegistryTest, LabelOrderDoesNotMakeANewSeries) {
  Registry registry;
  ASSERT_TRUE(registry.describe("tierd_x_total", Type::Counter, "X."));
  registry.add("tierd_x_total", {{"b", "2"}, {"a", "1"}}, 1);
  registry.add("tierd_x_total", {{"a", "1"}, {"b", "2"}}, 1);
  EXPECT_EQ(registry.renderText(),
            "# HELP tierd_x_total X.\n# TYPE tierd_x_total counter\n"
            "tierd_x_total{a=\"1\",b=\"2\"} 2\n");
}

TEST(RegistryTest, ClearFamilyDropsItsSeriesOnly) {
  Registry registry;
  ASSERT_TRUE(registry.describe("tierd_process_rss_bytes", Type::Gauge, "RSS."));
  ASSERT_TRUE(registry.describe("tierd_y", Type::Gauge, "Y."));
  registry.set("tierd_process_rss_bytes", {{"workload", "a"}}, 10);
  registry.set("tierd_process_rss_bytes", {{"workload", "b"}}, 20);
  registry.set("tierd_y", {}, 5);

  registry.clearFamily("tierd_process_rss_bytes");
  EXPECT_EQ(registry.renderText(), "# HELP tierd_y Y.\n# TYPE tierd_y gauge\ntierd_y 5\n");

  // Still described: re-publishing works without describe().
  registry.set("tierd_process_rss_bytes", {{"workload", "b"}}, 30);
  EXPECT_EQ(registry.renderText(),
            "# HELP tierd_process_rss_bytes RSS.\n# TYPE tierd_process_rss_bytes gauge\n"
            "tierd_process_rss_bytes{workload=\"b\"} 30\n"
            "# HELP tierd_y Y.\n# TYPE tierd_y gauge\ntierd_y 5\n");
  registry.clearFamily("tierd_never_described");  // no effect, no crash
}

TEST(RegistryTest, ReplaceFamilySwapsAllSeriesAtOnce) {
  Registry registry;
  ASSERT_TRUE(registry.describe("tierd_process_rss_bytes", Type::Gauge, "RSS."));
  registry.set("tierd_process_rss_bytes", {{"workload", "gone"}}, 10);
  registry.replaceFamily("tierd_process_rss_bytes", {{{{"workload", "b"}, {"node", "1"}}, 20},
                                                     {{{"node", "0"}, {"workload", "a"}}, 30},
                                                     {{{"bad-label", "x"}}, 1},
                                                     {{{"node", "0"}, {"workload", "a"}}, 31}});
  registry.replaceFamily("tierd_never_described", {{{}, 1}});
  EXPECT_EQ(registry.renderText(),
            "# HELP tierd_metrics_errors_total Metric updates the agent dropped (undescribed "
            "family, bad label, bad value).\n"
            "# TYPE tierd_metrics_errors_total counter\n"
            "tierd_metrics_errors_total{reason=\"bad_label\"} 1\n"
            "tierd_metrics_errors_total{reason=\"undescribed\"} 1\n"
            "# HELP tierd_process_rss_bytes RSS.\n# TYPE tierd_process_rss_bytes gauge\n"
            "tierd_process_rss_bytes{node=\"0\",workload=\"a\"} 31\n"
            "tierd_process_rss_bytes{node=\"1\",workload=\"b\"} 20\n");

  registry.replaceFamily("tierd_process_rss_bytes", {});
  EXPECT_THAT(registry.renderText(), Not(HasSubstr("tierd_process_rss_bytes")));
}

TEST(RegistryTest, RejectsInvalidMetricNames) {
  Registry registry;
  for (const char* name : {"", "1abc", "a-b", "a b", "tierd_é", "a{b}", "a\"b"}) {
    auto described = registry.describe(name, Type::Gauge, "bad");
    ASSERT_FALSE(described) << name;
    EXPECT_EQ(described.error().errnum, EINVAL);
    EXPECT_THAT(described.error().context, HasSubstr("\"" + std::string(name) + "\""));
  }
  for (const char* name : {"a", "_a", ":a", "tierd_a:b_total", "A9"}) {
    EXPECT_TRUE(registry.describe(name, Type::Gauge, "ok")) << name;
  }
}

TEST(RegistryTest, ValidatesLabelNames) {
  EXPECT_TRUE(validLabelName("node"));
  EXPECT_TRUE(validLabelName("_x9"));
  EXPECT_FALSE(validLabelName(""));
  EXPECT_FALSE(validLabelName("9x"));
  EXPECT_FALSE(validLabelName("a:b"));
  EXPECT_FALSE(validLabelName("a-b"));
  EXPECT_FALSE(validLabelName("__name__"));  // reserved
  EXPECT_TRUE(validMetricName("a:b"));
  EXPECT_FALSE(validMetricName("9"));
}

TEST(RegistryTest, RedescribingKeepsTypeAndReplacesHelp) {
  Registry registry;
  ASSERT_TRUE(registry.describe("tierd_x", Type::Gauge, "Old."));
  registry.set("tierd_x", {}, 1);
  ASSERT_TRUE(registry.describe("tierd_x", Type::Gauge, "New."));
  auto clash = registry.describe("tierd_x", Type::Counter, "Counter?");
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().errnum, EINVAL);
  EXPECT_THAT(clash.error().context, HasSubstr("tierd_x"));
  EXPECT_EQ(registry.renderText(), "# HELP tierd_x New.\n# TYPE tierd_x gauge\ntierd_x 1\n");
}

TEST(RegistryTest, DroppedUpdatesAreCountedByReason) {
  Registry registry;
  ASSERT_TRUE(registry.describe("tierd_c_total", Type::Counter, "C."));
  ASSERT_TRUE(registry.describe("tierd_g", Type::Gauge, "G."));
  const double nan = std::numeric_limits<double>::quiet_NaN();

  registry.add("tierd_undescribed_total", {}, 1);                        // undescribed
  registry.set("tierd_undescribed", {{"a", "b"}}, 1);                    // undescribed
  registry.add("tierd_c_total", {}, -1);                                 // bad_value
  registry.add("tierd_c_total", {}, nan);                                // bad_value
  registry.set("tierd_c_total", {}, -5);                                 // bad_value
  registry.add("tierd_g", {}, std::numeric_limits<double>::infinity());  // bad_value
  registry.set("tierd_g", {{"bad-name", "x"}}, 1);                       // bad_label
  registry.set("tierd_g", {{"a", "1"}, {"a", "2"}}, 1);                  // bad_label (duplicate)
  registry.set("tierd_g", {{"__name__", "x"}}, 1);                       // bad_label (reserved)

  // Valid: gauges go down, gauges hold NaN, counters are set from kernel totals.
  registry.add("tierd_g", {{"k", "down"}}, -2.5);
  registry.set("tierd_g", {{"k", "nan"}}, nan);
  registry.set("tierd_c_total", {}, 42);

  EXPECT_EQ(registry.renderText(),
            "# HELP tierd_c_total C.\n# TYPE tierd_c_total counter\ntierd_c_total 42\n"
            "# HELP tierd_g G.\n# TYPE tierd_g gauge\n"
            "tierd_g{k=\"down\"} -2.5\n"
            "tierd_g{k=\"nan\"} NaN\n"
            "# HELP tierd_metrics_errors_total Metric updates the agent dropped (undescribed "
            "family, bad label, bad value).\n"
            "# TYPE tierd_metrics_errors_total counter\n"
            "tierd_metrics_errors_total{reason=\"bad_label\"} 3\n"
            "tierd_metrics_errors_total{reason=\"bad_value\"} 4\n"
            "tierd_metrics_errors_total{reason=\"undescribed\"} 2\n");
}

TEST(RegistryTest, InvalidUtf8InLabelValuesIsReplaced) {
  Registry registry;
  ASSERT_TRUE(registry.describe("tierd_x", Type::Gauge, "X."));
  registry.set("tierd_x", {{"comm", "caf\xc3\xa9\xff\xc3"}}, 1);
  EXPECT_THAT(registry.renderText(),
              HasSubstr("tierd_x{comm=\"caf\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\"} 1\n"));
}

TEST(FormatValueTest, IntegersWithoutExponentOthersShortest) {
  EXPECT_EQ(formatValue(0), "0");
  EXPECT_EQ(formatValue(-0.0), "0");
  EXPECT_EQ(formatValue(7), "7");
  EXPECT_EQ(formatValue(-3), "-3");
  EXPECT_EQ(formatValue(1e6), "1000000");
  EXPECT_EQ(formatValue(1e19), "10000000000000000000");
  EXPECT_EQ(formatValue(1e20), "1e+20");  // beyond 2^64: shortest form
  EXPECT_EQ(formatValue(18446744073709551615.0), "18446744073709551616");  // 2^64 as a double
  EXPECT_EQ(formatValue(9007199254740993.0), "9007199254740992");          // 2^53+1 rounds
  EXPECT_EQ(formatValue(1e300), "1e+300");
  EXPECT_EQ(formatValue(0.1), "0.1");
  EXPECT_EQ(formatValue(2.5), "2.5");
  EXPECT_EQ(formatValue(1.5e-7), "1.5e-07");
  EXPECT_EQ(formatValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(formatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(formatValue(-std::numeric_limits<double>::infinity()), "-Inf");
}

TEST(RegistryTest, ConcurrentAddsSumExactly) {
  Registry registry;
  ASSERT_TRUE(registry.describe("tierd_ops_total", Type::Counter, "Ops."));
  ASSERT_TRUE(registry.describe("tierd_level", Type::Gauge, "Level."));
  constexpr int kThreads = 4, kAdds = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&registry, t] {
      Labels mine{{"thread", std::to_string(t)}};
      for (int i = 0; i < kAdds; ++i) {
        registry.add("tierd_ops_total", {}, 1);
        registry.add("tierd_ops_total", mine, 1);
        registry.add("tierd_level", {}, (i % 2 == 0) ? 2 : -2);
        if (i % 1000 == 0) (void)registry.renderText();  // readers race with writers
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  std::string text = registry.renderText();
  EXPECT_THAT(text, HasSubstr("\ntierd_ops_total 80000\n"));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_THAT(text, HasSubstr("tierd_ops_total{thread=\"" + std::to_string(t) + "\"} 20000\n"));
  }
  EXPECT_THAT(text, HasSubstr("\ntierd_level 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("errors")));
}

}  // namespace
}  // namespace tierd::metrics
