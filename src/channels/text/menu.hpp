#pragma once
/// parley::channels::text — a bot's choices as numbered text, for channels without
/// buttons (SMS, and Messenger when its quick replies cannot hold the menu), and
/// the user's answer mapped back to a choice.
///
/// The format, one sentence after the message's text on its own line:
///
///     Which department?
///     Reply 1 for Billing, 2 for Shipping or 3 for Returns.
///
/// ("Reply 1 for Billing." for one choice). Labels are written with their blanks
/// collapsed to single spaces. Pure functions, any thread.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "src/proto/bot.pb.h"

namespace parley::channels::text {

/// The sentence for `choices` ("Reply 1 for A, 2 for B or 3 for C."); empty when
/// there are none.
std::string numbered_menu(
    const google::protobuf::RepeatedPtrField<::parley::bot::v1::Choice>& choices);

/// The message's text, then a line break and numbered_menu of its choices (the
/// text alone without choices, the menu alone without text).
std::string with_numbered_menu(const ::parley::bot::v1::Outbound& message);

/// The 0-based index of the choice of `offered` that `answer` names, or nullopt.
/// Blanks around the answer are ignored. A number names the choice it is listed
/// with: "2", "#2", "2." and "2)" all name the second; a number outside the menu
/// names nothing by number. Otherwise the answer names the first choice whose
/// label equals it, ASCII case ignored and blanks collapsed ("  billing " names
/// "Billing").
std::optional<std::size_t> match_choice(std::string_view answer,
                                        const ::parley::bot::v1::Outbound& offered);

}  // namespace parley::channels::text
