#include "src/bot/nlu_eval.hpp"

#include <cstdio>

#include "src/bot/nlu.hpp"

namespace parley::bot {

nlu_evaluation evaluate_holdout(const v1::Program& compiled, int k, int offset) {
  nlu_evaluation out;
  if (k < 2) k = 2;
  offset = ((offset % k) + k) % k;
  v1::Program p = compiled;
  std::vector<std::pair<std::string, int>> held;
  for (int i = 0; i < p.intents_size(); ++i) {
    auto* in = p.mutable_intents(i);
    google::protobuf::RepeatedPtrField<std::string> keep;
    for (int u = 0; u < in->utterances_size(); ++u) {
      if (u % k == offset)
        held.emplace_back(in->utterances(u), i);
      else
        *keep.Add() = in->utterances(u);
    }
    out.train += static_cast<std::size_t>(keep.size());
    in->mutable_utterances()->Swap(&keep);
  }
  *p.mutable_nlu() = detail::train(p.intents());
  auto loaded = load(std::move(p));
  if (!loaded) return out;
  const auto& prog = **loaded;
  for (const auto& [text, intent] : held) {
    ++out.tested;
    auto scores = classify(prog, text, 1);
    const auto& want = prog.proto().intents(intent).name();
    if (!scores.empty() && scores[0].name() == want) {
      ++out.correct;
      if (scores[0].confidence() >= prog.proto().confidence_threshold()) ++out.confident;
    } else {
      char conf[32];
      std::snprintf(conf, sizeof conf, "%.2f", scores.empty() ? 0.0 : scores[0].confidence());
      out.misses.push_back(text + ": " + want + " -> " +
                           (scores.empty() ? std::string("(none)") : scores[0].name()) + " (" +
                           conf + ")");
    }
  }
  return out;
}

}  // namespace parley::bot
