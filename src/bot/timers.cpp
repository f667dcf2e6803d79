// Timer inputs and deadlines (bot.hpp); the VM's handling of them is in vm.cpp.

#include "src/bot/bot.hpp"

namespace parley::bot {

v1::Input timer_input(std::int64_t due_ms, std::int64_t now_unix) {
  v1::Input i;
  i.set_timer_ms(due_ms);
  i.set_now_unix(now_unix);
  return i;
}

std::int64_t next_timer_ms(const v1::State& state) {
  // An ended (or transferred) conversation's timers can never fire, whatever the
  // state still holds (the caller's end of a session keeps the state as it was).
  if (state.status() != v1::AWAITING_INPUT) return 0;
  const auto n = state.nudge_at_ms(), c = state.close_at_ms();
  if (n > 0 && c > 0) return n < c ? n : c;
  return n > 0 ? n : c;
}

}  // namespace parley::bot
