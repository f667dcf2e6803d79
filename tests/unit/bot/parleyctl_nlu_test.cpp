// `parleyctl nlu FILE --oos FILE`, through the real command line on the sample bots.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace {

struct run_result {
  int exit_code = -1;
  std::string output;
};

run_result run(const std::string& args) {
  run_result r;
  std::string cmd = std::string(PARLEYCTL_PATH) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

const std::string bots = PARLEY_BOTS_DIR;

std::string temp_dir() {
  char tmpl[] = "/tmp/parley-nlu-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  return d ? d : "/tmp";
}

}  // namespace

TEST(parleyctl_nlu, reports_the_held_out_split_with_an_out_of_scope_set_as_json) {
  auto r = run("nlu " + bots + "/help-desk.yaml --oos " + bots + "/oos.txt --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.output;
  EXPECT_EQ(j["intents"], 33);
  EXPECT_EQ(j["utterances"], 990);
  EXPECT_EQ(j["held_out"], 198);
  EXPECT_EQ(j["trained"], 792);
  EXPECT_GE(j["top1_accuracy"].get<double>(), 0.88);
  EXPECT_GE(j["oos_messages"].get<int>(), 200);
  EXPECT_DOUBLE_EQ(j["at_threshold"]["threshold"].get<double>(), j["threshold"].get<double>());
  // In-scope accuracy at the threshold is at most top-1, and at least the kept share of it.
  double top1 = j["top1_accuracy"], acc = j["at_threshold"]["in_scope_accuracy"],
         kept = j["at_threshold"]["correct_kept"];
  EXPECT_LE(acc, top1);
  EXPECT_NEAR(acc, top1 * kept, 1e-9);
  EXPECT_GE(j["at_threshold"]["oos_recall"].get<double>(), 0.6);
  ASSERT_EQ(j["oos_halves"].size(), 2u);
  for (const auto& h : j["oos_halves"]) {
    EXPECT_GE(h["oos_recall"].get<double>(), 0.6);
  }
  // The curve: 0 to 1 by 0.05; at 0 every right answer is kept and nothing is rejected.
  const auto& c = j["curve"];
  ASSERT_EQ(c.size(), 21u);
  EXPECT_DOUBLE_EQ(c[0]["threshold"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(c[0]["correct_kept"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(c[0]["oos_recall"].get<double>(), 0.0);
  EXPECT_NEAR(c[20]["threshold"].get<double>(), 1.0, 1e-9);
  for (std::size_t i = 1; i < c.size(); ++i) {
    EXPECT_LE(c[i]["correct_kept"].get<double>(), c[i - 1]["correct_kept"].get<double>());
    EXPECT_GE(c[i]["oos_recall"].get<double>(), c[i - 1]["oos_recall"].get<double>());
  }
  // The most confused pairs name two different intents, most frequent first.
  ASSERT_FALSE(j["confused"].empty());
  EXPECT_LE(j["confused"].size(), 10u);
  for (std::size_t i = 0; i < j["confused"].size(); ++i) {
    const auto& p = j["confused"][i];
    EXPECT_NE(p["expected"], p["got"]);
    EXPECT_GE(p["count"].get<int>(), 1);
    if (i) {
      EXPECT_LE(p["count"].get<int>(), j["confused"][i - 1]["count"].get<int>());
    }
  }
}

TEST(parleyctl_nlu, prints_the_report_as_text_on_the_large_sample_bot) {
  auto r = run("nlu " + bots + "/assistant.yaml --oos " + bots + "/oos.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("152 intents"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("top-1 accuracy"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("out-of-scope recall"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("threshold  in-scope acc  correct kept  oos recall"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("     0.50 "), std::string::npos) << r.output;
}

TEST(parleyctl_nlu, refuses_an_out_of_scope_file_it_cannot_use) {
  auto dir = temp_dir();
  auto missing = run("nlu " + bots + "/help-desk.yaml --oos " + dir + "/none.txt");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("--oos: cannot read " + dir + "/none.txt"), std::string::npos)
      << missing.output;
  std::ofstream(dir + "/empty.txt") << "# only a comment\n\n";
  auto empty = run("nlu " + bots + "/help-desk.yaml --oos " + dir + "/empty.txt");
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_NE(empty.output.find("has no messages"), std::string::npos) << empty.output;
  std::remove((dir + "/empty.txt").c_str());
  std::remove(dir.c_str());
}
