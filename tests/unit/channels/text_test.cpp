// Forms, splitting and numbered menus: what every text channel shares.

#include <gtest/gtest.h>

#include "src/channels/errors.hpp"
#include "src/channels/text/form.hpp"
#include "src/channels/text/menu.hpp"
#include "src/channels/text/split.hpp"
#include "src/common/utf8.hpp"

namespace text = parley::channels::text;
namespace v1 = parley::bot::v1;

namespace {

v1::Outbound menu(std::string text, std::vector<std::string> labels) {
  v1::Outbound o;
  o.set_text(std::move(text));
  for (auto& l : labels) {
    auto* c = o.add_choices();
    c->set_label(l);
    c->set_payload("p_" + l);
  }
  return o;
}

TEST(channels_form, decodes_plus_and_percent_in_names_and_values) {
  auto f = text::parse_form("Body=Hello+w%C3%B6rld%21&From=%2B15551234567&&empty=&bare&a%20b=1");
  ASSERT_TRUE(f.ok()) << f.err().message;
  ASSERT_EQ(f->size(), 5u);
  EXPECT_EQ((*f)[0], (std::pair<std::string, std::string>{"Body", "Hello w\xC3\xB6rld!"}));
  EXPECT_EQ((*f)[1].second, "+15551234567");
  EXPECT_EQ((*f)[2], (std::pair<std::string, std::string>{"empty", ""}));
  EXPECT_EQ((*f)[3], (std::pair<std::string, std::string>{"bare", ""}));
  EXPECT_EQ((*f)[4].first, "a b");
  EXPECT_EQ(*text::find(*f, "From"), "+15551234567");
  EXPECT_EQ(text::find(*f, "from"), nullptr);
  EXPECT_TRUE(text::parse_form("")->empty());
  // Only the first '=' splits.
  EXPECT_EQ(text::parse_form("a=b=c")->front().second, "b=c");
}

TEST(channels_form, malformed_percent_names_the_parameter) {
  for (const char* body : {"a=1&b=%G1", "a=1&b=%4", "a=1&b%=1", "a=1&b=%"}) {
    auto f = text::parse_form(body);
    ASSERT_FALSE(f.ok()) << body;
    EXPECT_EQ(f.err().code, parley::channels::bad_request);
    EXPECT_EQ(f.err().message, "parameter 2: malformed percent-encoding") << body;
    EXPECT_EQ(parley::channels::http_status(f.err()), 400);
  }
}

TEST(channels_form, encoding_round_trips_any_bytes) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  text::form f = {{"Body", all}, {"To", "+1 555"}, {"a&b=c", "x+y%z"}};
  const std::string body = text::encode_form(f);
  EXPECT_EQ(body.find(' '), std::string::npos);
  EXPECT_NE(body.find("To=%2B1+555"), std::string::npos) << body;
  auto back = text::parse_form(body);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, f);
  std::string path;
  text::append_percent_encoded(path, "AC 1/~x");
  EXPECT_EQ(path, "AC%201%2F~x");
}

TEST(channels_split, counts_utf16_units) {
  EXPECT_EQ(text::utf16_length(""), 0u);
  EXPECT_EQ(text::utf16_length("abc"), 3u);
  EXPECT_EQ(text::utf16_length("\xC3\xA9"), 1u);          // é
  EXPECT_EQ(text::utf16_length("\xE2\x82\xAC"), 1u);      // €
  EXPECT_EQ(text::utf16_length("\xF0\x9F\x98\x80"), 2u);  // 😀, a surrogate pair
  EXPECT_EQ(text::utf16_length("\xFF\xC3"), 2u);          // ill-formed bytes count 1 each
}

TEST(channels_split, short_text_is_one_part_and_blank_text_none) {
  EXPECT_EQ(text::split_text("  hello world \n", 1600), std::vector<std::string>{"hello world"});
  EXPECT_TRUE(text::split_text("", 1600).empty());
  EXPECT_TRUE(text::split_text(" \n\t ", 1600).empty());
  const std::string exact(1600, 'a');
  EXPECT_EQ(text::split_text(exact, 1600), std::vector<std::string>{exact});
}

TEST(channels_split, cuts_at_word_boundaries) {
  // 400 words of 4 letters and a space: 2000 characters.
  std::string t;
  for (int i = 0; i < 400; ++i) t += "word ";
  auto parts = text::split_text(t, 1600);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_LE(text::utf16_length(parts[0]), 1600u);
  EXPECT_EQ(parts[0].back(), 'd');
  EXPECT_EQ(parts[1].front(), 'w');
  // Nothing lost but the blank at the cut.
  EXPECT_EQ(parts[0] + " " + parts[1] + " ", t);
  // The window's edge on a blank: the cut is there.
  EXPECT_EQ(text::split_text("aaaa bbbb", 4), (std::vector<std::string>{"aaaa", "bbbb"}));
  EXPECT_EQ(text::split_text("aa bb cc", 5), (std::vector<std::string>{"aa bb", "cc"}));
}

TEST(channels_split, prefers_a_line_break_in_the_second_half_of_the_window) {
  EXPECT_EQ(text::split_text("aaaaaa bb\ncc dd", 12),
            (std::vector<std::string>{"aaaaaa bb", "cc dd"}));
  // A line break early in the window loses to the last blank.
  EXPECT_EQ(text::split_text("a\nbbbbbb cc dd", 12),
            (std::vector<std::string>{"a\nbbbbbb cc", "dd"}));
}

TEST(channels_split, never_cuts_a_character) {
  // 😀 (4 bytes, 2 units) repeated with no blank: a hard cut between characters.
  std::string emoji;
  for (int i = 0; i < 1000; ++i) emoji += "\xF0\x9F\x98\x80";
  auto parts = text::split_text(emoji, 1599);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(text::utf16_length(parts[0]), 1598u);  // 799 pairs: the 800th does not fit
  EXPECT_EQ(text::utf16_length(parts[1]), 402u);
  for (const auto& p : parts) EXPECT_TRUE(parley::common::utf8::valid(p));
  // 3-byte characters, 1 unit each.
  std::string euro;
  for (int i = 0; i < 10; ++i) euro += "\xE2\x82\xAC";
  auto e = text::split_text(euro, 4);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0], "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC");
  EXPECT_EQ(e[2], "\xE2\x82\xAC\xE2\x82\xAC");
}

TEST(channels_split, ill_formed_utf8_is_replaced_before_cutting) {
  auto parts = text::split_text(
      "ab\xFF"
      "cd",
      1600);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0],
            "ab\xEF\xBF\xBD"
            "cd");
}

TEST(channels_menu, numbered_sentence) {
  EXPECT_EQ(text::with_numbered_menu(menu("Which department?", {"Billing", "Shipping", "Returns"})),
            "Which department?\nReply 1 for Billing, 2 for Shipping or 3 for Returns.");
  EXPECT_EQ(text::with_numbered_menu(menu("Go on?", {"Yes"})), "Go on?\nReply 1 for Yes.");
  EXPECT_EQ(text::with_numbered_menu(menu("", {"A", "B"})), "Reply 1 for A or 2 for B.");
  EXPECT_EQ(text::with_numbered_menu(menu("Just text", {})), "Just text");
  // Blanks inside a label are collapsed so the sentence stays on its line.
  EXPECT_EQ(text::numbered_menu(menu("", {" Track\nmy  order "}).choices()),
            "Reply 1 for Track my order.");
}

TEST(channels_menu, an_answer_by_number) {
  const auto m = menu("?", {"Billing", "Shipping", "Returns"});
  for (const char* a : {"1", " 1.", "#1", "1)", "\t1\r\n", " #1. "})
    EXPECT_EQ(text::match_choice(a, m), 0u) << a;
  EXPECT_EQ(text::match_choice("3", m), 2u);
  EXPECT_EQ(text::match_choice("03", m), 2u);
  for (const char* a : {"0", "4", "-1", "1.5", "1 2", "#", ".", "", "  ", "99999999999999999999"})
    EXPECT_FALSE(text::match_choice(a, m).has_value()) << a;
}

TEST(channels_menu, an_answer_by_label) {
  const auto m = menu("?", {"Billing", "Track my order", "2"});
  EXPECT_EQ(text::match_choice("billing", m), 0u);
  EXPECT_EQ(text::match_choice("  BILLING ", m), 0u);
  EXPECT_EQ(text::match_choice("track  my\norder", m), 1u);
  EXPECT_FALSE(text::match_choice("bill", m).has_value());
  EXPECT_FALSE(text::match_choice("billing please", m).has_value());
  // A number in range names by position first; a label "2" is reached by "3".
  EXPECT_EQ(text::match_choice("2", m), 1u);
  EXPECT_EQ(text::match_choice("3", m), 2u);
  // A number outside the menu may still be a label.
  const auto years = menu("?", {"1999", "2024"});
  EXPECT_EQ(text::match_choice("2024", years), 1u);
}

}  // namespace
