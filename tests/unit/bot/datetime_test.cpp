// The datetime system entity and the bot's time zone: every form the docs list,
// daylight-saving shifts, refusals, and the compiler's check of the zone.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "src/bot/bot.hpp"
#include "src/bot/nlu.hpp"
#include "src/bot/text.hpp"
#include "src/bot/zone.hpp"
#include "tests/unit/bot/build_program.hpp"

namespace bot = parley::bot;
namespace d = parley::bot::detail;
namespace v1 = parley::bot::v1;

namespace {

constexpr std::int64_t thursday_10am = 1795651200 + 10 * 3600;  // 2026-11-26T10:00:00Z
constexpr std::int64_t late_thursday = 1795735800;              // 2026-11-26T23:30:00Z
constexpr std::int64_t before_spring = 1806148800;  // 2027-03-27T12:00:00Z, Paris shifts tomorrow
constexpr std::int64_t before_autumn = 1824897600;  // 2027-10-30T12:00:00Z, Paris shifts tomorrow

std::shared_ptr<const d::zone> zone(const std::string& name) {
  std::string why;
  auto z = d::zone::locate(name, why);
  EXPECT_TRUE(z) << why;
  return z;
}

std::string dt(std::string_view text, std::int64_t now = thursday_10am,
               const d::zone* z = nullptr) {
  d::entity_hit h;
  auto norm = d::normalize(text);
  return d::extract_datetime(text, norm, now, h, z) ? h.value : "-";
}

std::string date(std::string_view text, std::int64_t now, const d::zone* z) {
  d::entity_hit h;
  auto norm = d::normalize(text);
  return d::extract_date(text, norm, now, h, z) ? h.value : "-";
}

}  // namespace

TEST(datetime, absolute_dates_with_times) {
  EXPECT_EQ(dt("Dec 3 10:30"), "2026-12-03T10:30:00+00:00");
  EXPECT_EQ(dt("3 December 2027 at 9am"), "2027-12-03T09:00:00+00:00");
  EXPECT_EQ(dt("2026-12-03 14:00"), "2026-12-03T14:00:00+00:00");
  EXPECT_EQ(dt("2026-12-03T14:00"), "2026-12-03T14:00:00+00:00");
  EXPECT_EQ(dt("2026-12-03T14:00:15"), "2026-12-03T14:00:15+00:00");
  EXPECT_EQ(dt("on 12/24/2026 at 6:15 pm please"), "2026-12-24T18:15:00+00:00");
}

TEST(datetime, relative_days_with_times) {
  EXPECT_EQ(dt("tomorrow at 3pm"), "2026-11-27T15:00:00+00:00");
  EXPECT_EQ(dt("today 17:45"), "2026-11-26T17:45:00+00:00");
  EXPECT_EQ(dt("today at 8:00"), "2026-11-26T08:00:00+00:00") << "a named day keeps its date";
  EXPECT_EQ(dt("monday at noon"), "2026-11-30T12:00:00+00:00");
  EXPECT_EQ(dt("tonight"), "2026-11-26T20:00:00+00:00");
  EXPECT_EQ(dt("tonight at 8"), "2026-11-26T20:00:00+00:00");
  EXPECT_EQ(dt("tomorrow at midnight"), "2026-11-27T00:00:00+00:00");
}

TEST(datetime, offsets_from_now) {
  EXPECT_EQ(dt("in 2 hours"), "2026-11-26T12:00:00+00:00");
  EXPECT_EQ(dt("in 30 minutes"), "2026-11-26T10:30:00+00:00");
  EXPECT_EQ(dt("in 3 days"), "2026-11-29T10:00:00+00:00");
  EXPECT_EQ(dt("in an hour"), "2026-11-26T11:00:00+00:00");
  EXPECT_EQ(dt("in half an hour"), "2026-11-26T10:30:00+00:00");
  EXPECT_EQ(dt("in two weeks"), "2026-12-10T10:00:00+00:00");
  EXPECT_EQ(dt("call me in 90 mins"), "2026-11-26T11:30:00+00:00");
}

TEST(datetime, a_bare_time_is_the_next_one) {
  EXPECT_EQ(dt("at 3pm"), "2026-11-26T15:00:00+00:00") << "still ahead today";
  EXPECT_EQ(dt("15:30"), "2026-11-26T15:30:00+00:00");
  EXPECT_EQ(dt("3:30 pm"), "2026-11-26T15:30:00+00:00");
  EXPECT_EQ(dt("at 9am"), "2026-11-27T09:00:00+00:00") << "already past today: tomorrow";
  EXPECT_EQ(dt("10:00"), "2026-11-27T10:00:00+00:00") << "now itself is not ahead";
  EXPECT_EQ(dt("noon"), "2026-11-26T12:00:00+00:00");
  EXPECT_EQ(dt("midnight"), "2026-11-27T00:00:00+00:00");
  EXPECT_EQ(dt("12am"), "2026-11-27T00:00:00+00:00");
  EXPECT_EQ(dt("12pm"), "2026-11-26T12:00:00+00:00");
}

TEST(datetime, a_date_alone_is_its_midnight) {
  EXPECT_EQ(dt("Dec 24"), "2026-12-24T00:00:00+00:00");
  EXPECT_EQ(dt("tomorrow"), "2026-11-27T00:00:00+00:00");
  EXPECT_EQ(dt("2027-01-05"), "2027-01-05T00:00:00+00:00");
}

TEST(datetime, impossible_times_and_dates_are_refused) {
  EXPECT_EQ(dt("25:00"), "-");
  EXPECT_EQ(dt("tomorrow at 25:00"), "-");
  EXPECT_EQ(dt("at 13pm"), "-");
  EXPECT_EQ(dt("at 0am"), "-");
  EXPECT_EQ(dt("10:75"), "-");
  EXPECT_EQ(dt("Feb 30 at 10am"), "-");
  EXPECT_EQ(dt("2026-02-30 10:00"), "-");
  EXPECT_EQ(dt("at 24"), "-");
  EXPECT_EQ(dt("whenever suits you"), "-");
  EXPECT_EQ(dt("a table for 2 people"), "-") << "a number alone is no time";
  EXPECT_EQ(dt("in a while"), "-");
}

TEST(datetime, is_a_function_of_the_text_and_the_clock) {
  EXPECT_EQ(dt("tomorrow at 3pm"), dt("tomorrow at 3pm"));
  EXPECT_EQ(dt("tomorrow at 3pm", thursday_10am + 86400), "2026-11-28T15:00:00+00:00");
  EXPECT_EQ(dt("in 2 hours", thursday_10am + 61), "2026-11-26T12:01:01+00:00");
  EXPECT_EQ(dt("at 3pm", thursday_10am + 6 * 3600), "2026-11-27T15:00:00+00:00");
}

TEST(datetime, local_time_in_the_bots_zone) {
  auto paris = zone("Europe/Paris");
  auto ny = zone("America/New_York");
  EXPECT_EQ(dt("tomorrow at 3pm", thursday_10am, paris.get()), "2026-11-27T15:00:00+01:00");
  EXPECT_EQ(dt("tomorrow at 3pm", thursday_10am, ny.get()), "2026-11-27T15:00:00-05:00");
  EXPECT_EQ(dt("in 2 hours", thursday_10am, paris.get()), "2026-11-26T13:00:00+01:00");
  // 23:30 UTC is already Friday 00:30 in Paris: "today" and bare times follow the zone.
  EXPECT_EQ(date("today", late_thursday, nullptr), "2026-11-26");
  EXPECT_EQ(date("today", late_thursday, paris.get()), "2026-11-27");
  EXPECT_EQ(dt("at 9am", late_thursday, paris.get()), "2026-11-27T09:00:00+01:00");
  EXPECT_EQ(dt("at 9am", late_thursday, ny.get()), "2026-11-27T09:00:00-05:00");
}

TEST(datetime, daylight_saving_shifts) {
  auto paris = zone("Europe/Paris");
  // 2027-03-28: 02:00 CET becomes 03:00 CEST.
  EXPECT_EQ(dt("tomorrow at 1:30am", before_spring, paris.get()), "2027-03-28T01:30:00+01:00");
  EXPECT_EQ(dt("tomorrow at 2:30am", before_spring, paris.get()), "2027-03-28T03:30:00+02:00")
      << "a time the shift skips moves past it";
  EXPECT_EQ(dt("tomorrow at 3pm", before_spring, paris.get()), "2027-03-28T15:00:00+02:00");
  EXPECT_EQ(dt("in 24 hours", before_spring, paris.get()), "2027-03-28T14:00:00+02:00");
  EXPECT_EQ(dt("in 1 day", before_spring, paris.get()), "2027-03-28T13:00:00+02:00")
      << "days keep the wall-clock time";
  // 2027-10-31: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
  EXPECT_EQ(dt("tomorrow at 2:30am", before_autumn, paris.get()), "2027-10-31T02:30:00+02:00")
      << "the earlier of the two";
  EXPECT_EQ(dt("tomorrow at 3:30am", before_autumn, paris.get()), "2027-10-31T03:30:00+01:00");
}

TEST(datetime, zones_are_checked_by_name) {
  std::string why;
  EXPECT_FALSE(d::zone::locate("Mars/Olympus_Mons", why));
  EXPECT_NE(why.find("unknown time zone 'Mars/Olympus_Mons'"), std::string::npos) << why;
  EXPECT_TRUE(d::zone::locate("UTC", why));
  EXPECT_TRUE(d::zone::locate("Asia/Kolkata", why));
}

namespace {

const char* const booking = R"(bot:
  name: booking
  timezone: Europe/Paris
  welcome: ask
variables:
  when: datetime
  note: text
dialogs:
  ask:
    steps:
      - question: {prompt: "When?", entity: datetime, into: when}
      - message: "Booked for {{when}}"
)";

std::string last_text(const v1::TurnResult& r) {
  std::string out;
  for (const auto& m : r.messages())
    if (!m.text().empty()) out = m.text();
  return out;
}

}  // namespace

TEST(datetime, a_question_fills_a_datetime_variable_in_the_bots_zone) {
  auto p = bot::testing::build(booking);
  ASSERT_TRUE(p);
  auto r = bot::start(*p, {}, thursday_10am);
  EXPECT_EQ(last_text(r), "When?");
  auto r2 = bot::resume(*p, r.state(), bot::text_input("tomorrow at 3pm", thursday_10am));
  EXPECT_EQ(last_text(r2), "Booked for 2026-11-27T15:00:00+01:00");
  auto r3 = bot::resume(*p, r.state(), bot::text_input("at 25:00", thursday_10am));
  EXPECT_EQ(last_text(r3), "When?") << "an impossible time asks again";
  EXPECT_EQ(r3.state().status(), v1::AWAITING_INPUT);
}

TEST(datetime, the_compiler_names_an_unknown_zone_and_its_line) {
  std::string bad = booking;
  bad.replace(bad.find("Europe/Paris"), 12, "Europe/Pariss");
  auto r = bot::compile(bad, "booking.yaml");
  EXPECT_FALSE(r.ok());
  bool found = false;
  for (const auto& dg : r.diagnostics)
    if (dg.line == 3 &&
        dg.message.find("'timezone': unknown time zone 'Europe/Pariss'") != std::string::npos)
      found = true;
  EXPECT_TRUE(found);
  auto ok = bot::compile(booking, "booking.yaml");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.program->timezone(), "Europe/Paris");
  std::string utc = booking;
  utc.replace(utc.find("  timezone: Europe/Paris\n"), 25, "");
  auto u = bot::compile(utc, "booking.yaml");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u.program->timezone(), "") << "UTC by default, stored as before the setting";
}
