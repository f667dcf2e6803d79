// The per-tenant attachment limits every gateway checks before a message reaches the bot.

#include <gtest/gtest.h>

#include "src/channels/text/attachments.hpp"

namespace text = parley::channels::text;

namespace {

std::string reason(const text::attachment_verdict& v) {
  return v.refused ? std::string(text::refusal_name(*v.refused)) : std::string("accepted");
}

TEST(channels_attachments, defaults_accept_common_media_over_http_and_https) {
  text::attachment_limits limits;
  auto v = text::check_attachments(limits, {{"https://cdn.example/a.png", "image/png"},
                                            {"http://cdn.example/b.pdf", "application/pdf"},
                                            {"HTTPS://cdn.example/c.mp3", "Audio/MPEG; rate=8000"},
                                            {"https://cdn.example/d.txt", "text/plain"}});
  ASSERT_EQ(v.size(), 4u);
  for (auto& x : v) EXPECT_EQ(reason(x), "accepted") << x.index << ": " << x.detail;
}

TEST(channels_attachments, refuses_dangerous_schemes_whatever_the_list_says) {
  text::attachment_limits limits;
  limits.schemes = {"https", "http", "javascript", "data", "file"};
  auto v = text::check_attachments(limits, {{"javascript:alert(1)", "image/png"},
                                            {"data:image/png;base64,AAAA", "image/png"},
                                            {"file:///etc/passwd", "image/png"},
                                            {"no-scheme-here", "image/png"},
                                            {"ftp://x/y.png", "image/png"}});
  ASSERT_EQ(v.size(), 5u);
  for (auto& x : v) EXPECT_EQ(reason(x), "scheme") << x.index;
  EXPECT_EQ(v[0].detail, "scheme \"javascript\" is not allowed");
  EXPECT_EQ(v[3].detail, "URL has no scheme");
}

TEST(channels_attachments, https_only_refuses_http) {
  text::attachment_limits limits;
  limits.schemes = {"https"};
  auto v = text::check_attachments(
      limits, {{"http://x/a.png", "image/png"}, {"https://x/a.png", "image/png"}});
  EXPECT_EQ(reason(v[0]), "scheme");
  EXPECT_EQ(reason(v[1]), "accepted");
}

TEST(channels_attachments, too_many_refuses_those_after_the_limit_in_order) {
  text::attachment_limits limits;
  limits.max_attachments = 2;
  auto v = text::check_attachments(limits, {{"https://x/1.png", "image/png"},
                                            {"https://x/2.png", "image/png"},
                                            {"https://x/3.png", "image/png"}});
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(reason(v[0]), "accepted");
  EXPECT_EQ(reason(v[1]), "accepted");
  EXPECT_EQ(reason(v[2]), "too_many");
  EXPECT_EQ(v[2].index, 2u);
  EXPECT_EQ(v[2].detail, "more than 2 attachments");
}

TEST(channels_attachments, url_length_is_counted_in_bytes) {
  text::attachment_limits limits;
  limits.max_url_bytes = 20;
  std::string exact = "https://x/" + std::string(10, 'a');  // 20 bytes
  auto v = text::check_attachments(limits, {{exact, "image/png"}, {exact + "a", "image/png"}});
  EXPECT_EQ(reason(v[0]), "accepted");
  EXPECT_EQ(reason(v[1]), "url_too_long");
  EXPECT_EQ(v[1].detail, "URL of 21 bytes, more than 20");
}

TEST(channels_attachments, content_type_patterns) {
  EXPECT_TRUE(text::content_type_matches("image/*", "image/png"));
  EXPECT_FALSE(text::content_type_matches("image/*", "image/"));
  EXPECT_FALSE(text::content_type_matches("image/*", "imagex/png"));
  EXPECT_TRUE(text::content_type_matches("application/pdf", "application/pdf"));
  EXPECT_FALSE(text::content_type_matches("application/pdf", "application/pdfx"));
  EXPECT_TRUE(text::content_type_matches("*/*", "application/zip"));
  EXPECT_FALSE(text::content_type_matches("*/*", ""));

  text::attachment_limits limits;
  auto v = text::check_attachments(limits,
                                   {{"https://x/a.zip", "application/zip"}, {"https://x/a", ""}});
  EXPECT_EQ(reason(v[0]), "content_type");
  EXPECT_EQ(v[0].detail, "content type \"application/zip\" is not allowed");
  EXPECT_EQ(reason(v[1]), "content_type");
  limits.content_types = {"*/*"};
  EXPECT_EQ(reason(text::check_attachments(limits, {{"https://x/a.zip", "application/zip"}})[0]),
            "accepted");
}

TEST(channels_attachments, validates_what_an_operator_sets) {
  EXPECT_FALSE(text::invalid_scheme("https"));
  EXPECT_FALSE(text::invalid_scheme("http"));
  EXPECT_TRUE(text::invalid_scheme("javascript"));
  EXPECT_TRUE(text::invalid_scheme("HTTPS"));
  EXPECT_FALSE(text::invalid_content_type_pattern("image/*"));
  EXPECT_FALSE(text::invalid_content_type_pattern("*/*"));
  EXPECT_FALSE(text::invalid_content_type_pattern("application/vnd.ms-excel"));
  EXPECT_TRUE(text::invalid_content_type_pattern("image"));
  EXPECT_TRUE(text::invalid_content_type_pattern("*/png"));
  EXPECT_TRUE(text::invalid_content_type_pattern("Image/PNG"));
  EXPECT_TRUE(text::invalid_content_type_pattern("image/"));
  EXPECT_TRUE(text::invalid_content_type_pattern("/png"));
}

TEST(channels_attachments, no_attachments_no_verdicts) {
  EXPECT_TRUE(text::check_attachments({}, {}).empty());
}

}  // namespace
