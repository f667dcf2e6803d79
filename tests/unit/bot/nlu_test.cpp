#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "src/bot/bot.hpp"
#include "src/bot/nlu.hpp"
#include "src/bot/nlu_eval.hpp"
#include "src/bot/text.hpp"

namespace bot = parley::bot;
namespace d = parley::bot::detail;

namespace {

constexpr std::int64_t thursday = 1795651200;  // 2026-11-26T00:00:00Z

std::string date(std::string_view text) {
  d::entity_hit h;
  auto norm = bot::detail::normalize(text);
  return d::extract_date(text, norm, thursday, h) ? h.value : "-";
}

}  // namespace

TEST(text, words_split_short_and_long_texts) {
  // Up to 24 words live inside the list; more spill to the heap, in order.
  auto few = d::words("a  b c");
  ASSERT_EQ(few.size(), 3u);
  EXPECT_EQ(few[0], "a");
  EXPECT_EQ(few[2], "c");
  std::string text;
  for (int i = 0; i < 30; ++i) text += "w" + std::to_string(i) + " ";
  auto many = d::words(text);
  ASSERT_EQ(many.size(), 30u);
  for (int i = 0; i < 30; ++i)
    EXPECT_EQ(many[static_cast<std::size_t>(i)], "w" + std::to_string(i));
  std::size_t n = 0;
  for (auto w : many) n += !w.empty();
  EXPECT_EQ(n, 30u);
  auto moved = std::move(many);
  EXPECT_EQ(moved.size(), 30u);
  EXPECT_EQ(moved[29], "w29");
  EXPECT_TRUE(d::words("").empty());
}

TEST(entities, dates) {
  EXPECT_EQ(date("today"), "2026-11-26");
  EXPECT_EQ(date("tomorrow morning"), "2026-11-27");
  EXPECT_EQ(date("the day after tomorrow"), "2026-11-28");
  EXPECT_EQ(date("next monday"), "2026-11-30");
  EXPECT_EQ(date("on Thursday"), "2026-12-03") << "a weekday named on that day is next week";
  EXPECT_EQ(date("2027-02-03"), "2027-02-03");
  EXPECT_EQ(date("12/24/2026"), "2026-12-24");
  EXPECT_EQ(date("Dec 3rd"), "2026-12-03");
  EXPECT_EQ(date("3 January"), "2027-01-03") << "a past day this year means next year";
  EXPECT_EQ(date("3 December 2027"), "2027-12-03") << "the year after a day written first";
  EXPECT_EQ(date("the 3rd of December 2028"), "2028-12-03");
  EXPECT_EQ(date("February 30"), "-");
  EXPECT_EQ(date("whenever"), "-");
  EXPECT_EQ(date("the mayor"), "-");
}

TEST(entities, numbers_emails_phones_money_yes_no) {
  d::entity_hit h;
  ASSERT_TRUE(d::extract_number("I need 3 of them", h));
  EXPECT_EQ(h.value, "3");
  ASSERT_TRUE(d::extract_number("about 1,250.50 total", h));
  EXPECT_EQ(h.value, "1250.5");
  ASSERT_TRUE(d::extract_number("twelve please", h));
  EXPECT_EQ(h.value, "12");
  EXPECT_FALSE(d::extract_number("AB123 only", h)) << "digits inside a word are not a number";

  ASSERT_TRUE(d::extract_email("write to Jane.Doe+x@Mail.example.com.", h));
  EXPECT_EQ(h.value, "jane.doe+x@mail.example.com");
  EXPECT_FALSE(d::extract_email("me@localhost", h));

  ASSERT_TRUE(d::extract_phone("call +1 (555) 010-9999 today", h));
  EXPECT_EQ(h.value, "+15550109999");
  EXPECT_FALSE(d::extract_phone("room 12", h));

  ASSERT_TRUE(d::extract_money("it cost $12.50", h));
  EXPECT_EQ(h.value, "12.5");
  ASSERT_TRUE(d::extract_money("about 40 dollars", h));
  EXPECT_EQ(h.value, "40");
  EXPECT_FALSE(d::extract_money("40 shirts", h));

  ASSERT_TRUE(d::extract_yes_no("yeah sure", h));
  EXPECT_EQ(h.value, "yes");
  ASSERT_TRUE(d::extract_yes_no("nope", h));
  EXPECT_EQ(h.value, "no");
  ASSERT_TRUE(d::extract_yes_no("i do not think so", h));
  EXPECT_EQ(h.value, "no") << "'not' wins over 'i' being nothing";
  EXPECT_FALSE(d::extract_yes_no("maybe", h));
}

TEST(entities, custom_lists_and_regexes) {
  auto r = bot::compile(R"(bot: {name: e, welcome: w}
entities:
  color: {values: {red: [crimson, scarlet], "light blue": [sky blue, baby blue]}}
  ticket: {regex: '\bT-\d{4}\b'}
  sku: {regex: '\bSKU\d+\b', case_sensitive: true}
  code: {regex: '\b[a-z]{3}_\d\b'}
dialogs: {w: [{message: hi}]}
)");
  ASSERT_TRUE(r.ok());
  auto p = *bot::load(*r.program);
  auto find = [&](const std::string& text, const std::string& entity) -> std::string {
    for (const auto& m : bot::extract_entities(*p, text, thursday))
      if (m.entity() == entity) return m.value();
    return "-";
  };
  EXPECT_EQ(find("I'd like it in Scarlet", "color"), "red");
  EXPECT_EQ(find("baby-blue please", "color"), "light blue");
  EXPECT_EQ(find("redness", "color"), "-") << "whole words only";
  EXPECT_EQ(find("ticket t-1234 is stuck", "ticket"), "t-1234");
  EXPECT_EQ(find("sku12", "sku"), "-");
  EXPECT_EQ(find("SKU12", "sku"), "SKU12");
  EXPECT_EQ(find("code ABC_1.", "code"), "ABC_1") << "icase ranges, '_' is a word character";
  EXPECT_EQ(find("xABC_1", "code"), "-") << "no word boundary before A";
}

TEST(nlu, robust_to_case_punctuation_and_typos) {
  auto r = bot::compile_file(std::string(PARLEY_BOTS_DIR) + "/order-status.yaml");
  ASSERT_TRUE(r.ok());
  auto p = *bot::load(*r.program);
  for (const char* text :
       {"WHERE IS MY ORDER???", "were is my ordr", "wheres my pakage", "track my oder pls"}) {
    auto s = bot::classify(*p, text, 1);
    ASSERT_FALSE(s.empty()) << text;
    EXPECT_EQ(s[0].name(), "order_status") << text;
    EXPECT_GE(s[0].confidence(), r.program->confidence_threshold()) << text;
  }
  auto agent = bot::classify(*p, "let me speak to a human being", 1);
  EXPECT_EQ(agent[0].name(), "talk_to_agent");
}

TEST(nlu, out_of_domain_text_has_low_confidence) {
  auto r = bot::compile_file(std::string(PARLEY_BOTS_DIR) + "/order-status.yaml");
  ASSERT_TRUE(r.ok());
  auto p = *bot::load(*r.program);
  for (const char* text :
       {"purple elephants dance quietly", "what is the capital of peru", "whenever"}) {
    auto s = bot::classify(*p, text, 1);
    if (!s.empty()) {
      EXPECT_LT(s[0].confidence(), r.program->confidence_threshold()) << text;
    }
  }
}

TEST(nlu, training_is_deterministic) {
  auto a = bot::compile_file(std::string(PARLEY_BOTS_DIR) + "/help-desk.yaml");
  auto b = bot::compile_file(std::string(PARLEY_BOTS_DIR) + "/help-desk.yaml");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a.program->nlu().SerializeAsString(), b.program->nlu().SerializeAsString());
}

TEST(nlu, held_out_accuracy_of_the_large_sample_bot) {
  auto r = bot::compile_file(std::string(PARLEY_BOTS_DIR) + "/help-desk.yaml");
  ASSERT_TRUE(r.ok());
  ASSERT_GE(r.program->intents_size(), 30);
  std::size_t utterances = 0;
  for (const auto& in : r.program->intents()) utterances += in.utterances_size();
  ASSERT_GE(utterances, 600u);
  auto ev = bot::evaluate_holdout(*r.program, 5);
  EXPECT_EQ(ev.tested, utterances / 5);
  std::string misses;
  for (const auto& m : ev.misses) misses += "  " + m + "\n";
  // Measured 0.894 (177/198). The issue's goal is 0.90; this guards against
  // regressions at the level reached (see bench/README.md).
  EXPECT_GE(ev.accuracy(), 0.88) << misses;
}

namespace {

bot::nlu_evaluation made_up(std::vector<std::pair<float, bool>> in_scope, std::vector<float> oos) {
  bot::nlu_evaluation ev;
  ev.in_scope = std::move(in_scope);
  ev.oos = std::move(oos);
  return ev;
}

}  // namespace

TEST(nlu_eval, rates_at_a_threshold) {
  // Four held out: three right (0.9, 0.6, 0.2), one wrong (0.7). Out of scope:
  // 0.1, 0.5, 0.3, 0.8 (halves: 0.1 and 0.3; 0.5 and 0.8).
  auto ev =
      made_up({{0.9f, true}, {0.6f, true}, {0.2f, true}, {0.7f, false}}, {0.1f, 0.5f, 0.3f, 0.8f});
  auto r = bot::rates_at(ev, 0.5);
  EXPECT_DOUBLE_EQ(r.threshold, 0.5);
  EXPECT_DOUBLE_EQ(r.in_scope_accuracy, 2.0 / 4);  // 0.9 and 0.6 answered right
  EXPECT_DOUBLE_EQ(r.correct_kept, 2.0 / 3);       // 0.2 went to fallback
  EXPECT_DOUBLE_EQ(r.oos_recall, 2.0 / 4);         // 0.1 and 0.3 went to fallback
  EXPECT_DOUBLE_EQ(bot::rates_at(ev, 0.5, 0).oos_recall, 1.0);
  EXPECT_DOUBLE_EQ(bot::rates_at(ev, 0.5, 1).oos_recall, 0.0);
  // A confidence equal to the threshold is kept, as the VM keeps it.
  EXPECT_DOUBLE_EQ(bot::rates_at(ev, 0.6).correct_kept, 2.0 / 3);
  auto none = bot::rates_at(made_up({}, {}), 0.5);
  EXPECT_EQ(none.in_scope_accuracy, 0);
  EXPECT_EQ(none.correct_kept, 0);
  EXPECT_EQ(none.oos_recall, 0);
}

TEST(nlu_eval, an_intents_own_threshold_applies_to_its_answers) {
  // The same figures as above, where the top intent of the 0.6 answer and of the
  // 0.5 out-of-scope message has its own threshold 0.2 above the bot's.
  auto ev =
      made_up({{0.9f, true}, {0.6f, true}, {0.2f, true}, {0.7f, false}}, {0.1f, 0.5f, 0.3f, 0.8f});
  ev.in_scope_offset = {0.0f, 0.2f, 0.0f, 0.0f};
  ev.oos_offset = {0.0f, 0.2f, 0.0f, 0.0f};
  auto r = bot::rates_at(ev, 0.5);
  EXPECT_DOUBLE_EQ(r.correct_kept, 1.0 / 3);  // 0.6 is below its intent's 0.7
  EXPECT_DOUBLE_EQ(r.oos_recall, 3.0 / 4);    // 0.5 is below 0.7 too
}

TEST(nlu_eval, the_curve_trades_kept_answers_for_out_of_scope_recall) {
  auto ev =
      made_up({{0.9f, true}, {0.6f, true}, {0.2f, true}, {0.7f, false}}, {0.1f, 0.5f, 0.3f, 0.8f});
  auto curve = bot::threshold_curve(ev, {0.0, 0.25, 0.5, 0.75, 1.0});
  ASSERT_EQ(curve.size(), 5u);
  EXPECT_DOUBLE_EQ(curve[0].correct_kept, 1.0);
  EXPECT_DOUBLE_EQ(curve[0].in_scope_accuracy, 3.0 / 4);
  EXPECT_DOUBLE_EQ(curve[0].oos_recall, 0.0);
  EXPECT_DOUBLE_EQ(curve[1].oos_recall, 1.0 / 4);
  EXPECT_DOUBLE_EQ(curve[3].correct_kept, 1.0 / 3);
  EXPECT_DOUBLE_EQ(curve[4].oos_recall, 1.0);
  EXPECT_DOUBLE_EQ(curve[4].correct_kept, 0.0);
  for (std::size_t i = 1; i < curve.size(); ++i) {
    EXPECT_LE(curve[i].correct_kept, curve[i - 1].correct_kept);
    EXPECT_GE(curve[i].oos_recall, curve[i - 1].oos_recall);
  }
}

TEST(nlu_eval, reads_an_out_of_scope_set) {
  std::istringstream in(
      "# a comment\n\nwhat's the weather\r\n   tell me a joke  \n  # indented "
      "comment\nwho won the game");
  auto oos = bot::read_oos(in);
  ASSERT_EQ(oos.size(), 3u);
  EXPECT_EQ(oos[0], "what's the weather");
  EXPECT_EQ(oos[1], "tell me a joke");
  EXPECT_EQ(oos[2], "who won the game");
}

TEST(nlu_eval, the_sample_out_of_scope_set_goes_to_fallback_on_help_desk) {
  auto r = bot::compile_file(std::string(PARLEY_BOTS_DIR) + "/help-desk.yaml");
  ASSERT_TRUE(r.ok());
  std::ifstream f(std::string(PARLEY_BOTS_DIR) + "/oos.txt");
  auto oos = bot::read_oos(f);
  ASSERT_GE(oos.size(), 200u);
  auto ev = bot::evaluate_holdout(*r.program, 5, 1, oos);
  ASSERT_EQ(ev.oos.size(), oos.size());
  ASSERT_EQ(ev.in_scope.size(), ev.tested);
  EXPECT_DOUBLE_EQ(ev.threshold, r.program->confidence_threshold());
  // The confusions account for every miss, most frequent first.
  std::size_t confused = 0;
  for (std::size_t i = 0; i < ev.confusions.size(); ++i) {
    confused += ev.confusions[i].count;
    EXPECT_NE(ev.confusions[i].expected, ev.confusions[i].got);
    if (i) {
      EXPECT_LE(ev.confusions[i].count, ev.confusions[i - 1].count);
    }
  }
  EXPECT_EQ(confused, ev.tested - ev.correct);
  EXPECT_EQ(ev.misses.size(), confused);
  auto at = bot::rates_at(ev, ev.threshold);
  EXPECT_DOUBLE_EQ(at.in_scope_accuracy, static_cast<double>(ev.confident) / ev.tested);
  // Both halves of the set: most of it must reach the fallback at the bot's threshold.
  EXPECT_GE(bot::rates_at(ev, ev.threshold, 0).oos_recall, 0.6);
  EXPECT_GE(bot::rates_at(ev, ev.threshold, 1).oos_recall, 0.6);
}

TEST(nlu_calibration, the_default_threshold_keeps_right_answers_and_refuses_out_of_scope) {
  std::ifstream f(std::string(PARLEY_BOTS_DIR) + "/oos.txt");
  auto oos = bot::read_oos(f);
  ASSERT_GE(oos.size(), 200u);
  for (const char* name : {"help-desk", "assistant"}) {
    auto r = bot::compile_file(std::string(PARLEY_BOTS_DIR) + "/" + name + ".yaml");
    ASSERT_TRUE(r.ok()) << name;
    ASSERT_TRUE(r.program->nlu().has_calibration()) << name;
    // help-desk uses the default threshold; so does the assistant.
    EXPECT_FLOAT_EQ(r.program->confidence_threshold(), 0.35f) << name;
    auto ev = bot::evaluate_holdout(*r.program, 5, 1, oos);
    auto at = bot::rates_at(ev, ev.threshold);
    EXPECT_GE(at.correct_kept, 0.98) << name;
    EXPECT_GE(bot::rates_at(ev, ev.threshold, 0).oos_recall, 0.6) << name;
    EXPECT_GE(bot::rates_at(ev, ev.threshold, 1).oos_recall, 0.6) << name;
  }
}

TEST(nlu_calibration, a_program_compiled_before_calibration_keeps_its_softmax) {
  auto r = bot::compile_file(std::string(PARLEY_BOTS_DIR) + "/help-desk.yaml");
  ASSERT_TRUE(r.ok());
  bot::v1::Program old = *r.program;
  old.mutable_nlu()->clear_calibration();
  auto loaded = bot::load(std::move(old));
  ASSERT_TRUE(loaded);
  auto calibrated = bot::load(bot::v1::Program(*r.program));
  ASSERT_TRUE(calibrated);
  auto a = bot::classify(**loaded, "my vpn keeps dropping when I work from home", 3);
  auto b = bot::classify(**calibrated, "my vpn keeps dropping when I work from home", 3);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  // Same ranking, different confidences; the softmax's sum to at most 1.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(a[i].name(), b[i].name());
  EXPECT_EQ(a[0].name(), "vpn_not_working");
  EXPECT_NE(a[0].confidence(), b[0].confidence());
  EXPECT_LE(a[0].confidence() + a[1].confidence() + a[2].confidence(), 1.0f + 1e-5f);
  EXPECT_GE(b[0].confidence(), 0.35f);
}
