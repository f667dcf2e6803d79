#include "src/bot/nlu_eval.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include "src/bot/nlu.hpp"

namespace parley::bot {

nlu_evaluation evaluate_holdout(const v1::Program& compiled, int k, int offset,
                                const std::vector<std::string>& oos) {
  nlu_evaluation out;
  out.threshold = compiled.confidence_threshold();
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
  // How far the top intent's own threshold lies from the bot's (0 without one).
  auto offset_of = [&](const auto& scores) {
    if (scores.empty()) return 0.0f;
    for (const auto& in : prog.proto().intents())
      if (in.name() == scores[0].name() && in.has_confidence_threshold())
        return in.confidence_threshold() - prog.proto().confidence_threshold();
    return 0.0f;
  };
  std::map<std::pair<std::string, std::string>, std::size_t> confused;
  for (const auto& [text, intent] : held) {
    ++out.tested;
    auto scores = classify(prog, text, 1);
    const auto& want = prog.proto().intents(intent).name();
    float conf = scores.empty() ? 0.0f : scores[0].confidence();
    bool right = !scores.empty() && scores[0].name() == want;
    out.in_scope.emplace_back(conf, right);
    out.in_scope_offset.push_back(offset_of(scores));
    if (right) {
      ++out.correct;
      if (conf >= prog.proto().confidence_threshold() + out.in_scope_offset.back()) ++out.confident;
    } else {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", conf);
      std::string got = scores.empty() ? std::string("(none)") : scores[0].name();
      out.misses.push_back(text + ": " + want + " -> " + got + " (" + buf + ")");
      ++confused[{want, got}];
    }
  }
  for (const auto& text : oos) {
    auto scores = classify(prog, text, 1);
    out.oos.push_back(scores.empty() ? 0.0f : scores[0].confidence());
    out.oos_offset.push_back(offset_of(scores));
  }
  for (const auto& [pair, n] : confused) out.confusions.push_back({pair.first, pair.second, n});
  std::stable_sort(out.confusions.begin(), out.confusions.end(),
                   [](const auto& a, const auto& b) { return a.count > b.count; });
  return out;
}

namespace {
float offset(const std::vector<float>& offsets, std::size_t i) {
  return i < offsets.size() ? offsets[i] : 0.0f;
}
}  // namespace

threshold_rates rates_at(const nlu_evaluation& ev, double threshold, int oos_part) {
  threshold_rates r;
  r.threshold = threshold;
  std::size_t right = 0, kept = 0;
  for (std::size_t i = 0; i < ev.in_scope.size(); ++i) {
    const auto& [conf, ok] = ev.in_scope[i];
    if (!ok) continue;
    ++right;
    if (conf >= threshold + offset(ev.in_scope_offset, i)) ++kept;
  }
  if (!ev.in_scope.empty()) r.in_scope_accuracy = static_cast<double>(kept) / ev.in_scope.size();
  if (right) r.correct_kept = static_cast<double>(kept) / right;
  std::size_t oos = 0, rejected = 0;
  for (std::size_t i = 0; i < ev.oos.size(); ++i) {
    if (oos_part >= 0 && static_cast<int>(i % 2) != oos_part) continue;
    ++oos;
    if (ev.oos[i] < threshold + offset(ev.oos_offset, i)) ++rejected;
  }
  if (oos) r.oos_recall = static_cast<double>(rejected) / oos;
  return r;
}

std::vector<threshold_rates> threshold_curve(const nlu_evaluation& ev,
                                             const std::vector<double>& thresholds) {
  std::vector<threshold_rates> out;
  out.reserve(thresholds.size());
  for (double t : thresholds) out.push_back(rates_at(ev, t));
  return out;
}

std::vector<std::string> read_oos(std::istream& in) {
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    auto e = line.find_last_not_of(" \t\r");
    out.push_back(line.substr(b, e - b + 1));
  }
  return out;
}

}  // namespace parley::bot
