#pragma once
/// Held-out evaluation of a program's intent classifier, for `parleyctl nlu`,
/// the unit tests and the benchmarks.

#include <string>
#include <vector>

#include "src/bot/bot.hpp"

namespace parley::bot {

struct nlu_evaluation {
  std::size_t train = 0;      // utterances the model was trained on
  std::size_t tested = 0;     // held-out utterances classified
  std::size_t correct = 0;    // top-1 intent right
  std::size_t confident = 0;  // top-1 right and above the confidence threshold
  double accuracy() const { return tested ? static_cast<double>(correct) / tested : 0; }
  /// "utterance: expected -> got (confidence)" for each miss.
  std::vector<std::string> misses;
};

/// Retrains the model without every `k`-th utterance of each intent (those at
/// positions offset, offset+k, ...; offset 1 by default so that each intent
/// keeps its first example) and classifies those held-out utterances.
/// Deterministic. k >= 2; offsets 0..k-1 give a k-fold cross-validation.
nlu_evaluation evaluate_holdout(const v1::Program& compiled, int k, int offset = 1);

}  // namespace parley::bot
