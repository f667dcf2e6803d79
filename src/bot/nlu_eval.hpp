#pragma once
/// Held-out evaluation of a program's intent classifier, for `parleyctl nlu`,
/// the unit tests and the benchmarks.

#include <istream>
#include <string>
#include <utility>
#include <vector>

#include "src/bot/bot.hpp"

namespace parley::bot {

struct nlu_evaluation {
  std::size_t train = 0;      // utterances the model was trained on
  std::size_t tested = 0;     // held-out utterances classified
  std::size_t correct = 0;    // top-1 intent right
  std::size_t confident = 0;  // top-1 right and above the confidence threshold
  double threshold = 0;       // the bot's confidence_threshold
  double accuracy() const { return tested ? static_cast<double>(correct) / tested : 0; }
  /// "utterance: expected -> got (confidence)" for each miss.
  std::vector<std::string> misses;
  /// Each held-out utterance's top confidence (0 when nothing scored) and whether
  /// the top intent was right, in the order they were held out.
  std::vector<std::pair<float, bool>> in_scope;
  /// Each out-of-scope message's top confidence (0 when nothing scored), in order.
  std::vector<float> oos;
  /// For each of `in_scope` and `oos`: the top intent's own confidence_threshold
  /// minus the bot's (0 when the intent has none). rates_at(t) applies t plus this
  /// offset: at the bot's threshold, each intent's own; along the curve, every
  /// threshold moved by the same amount.
  std::vector<float> in_scope_offset, oos_offset;
  /// (expected, got) intent pairs of the misses with their counts, most first
  /// (ties by names).
  struct confusion {
    std::string expected, got;
    std::size_t count = 0;
  };
  std::vector<confusion> confusions;
};

/// Retrains the model without every `k`-th utterance of each intent (those at
/// positions offset, offset+k, ...; offset 1 by default so that each intent
/// keeps its first example) and classifies those held-out utterances, and the
/// out-of-scope messages `oos` (which no intent should take). Deterministic.
/// k >= 2; offsets 0..k-1 give a k-fold cross-validation.
nlu_evaluation evaluate_holdout(const v1::Program& compiled, int k, int offset = 1,
                                const std::vector<std::string>& oos = {});

/// What a confidence threshold does on an evaluation.
struct threshold_rates {
  double threshold = 0;
  /// Held-out in-scope utterances whose top intent is right and at or above the
  /// threshold (answered right), over all held-out utterances.
  double in_scope_accuracy = 0;
  /// Of the right top-1 answers, those the threshold keeps (not sent to fallback).
  double correct_kept = 0;
  /// Out-of-scope messages below the threshold (sent to fallback), over all of
  /// them; 0 when there are none.
  double oos_recall = 0;
};
/// `oos_part`: -1 every out-of-scope message, 0 the first half (messages 1, 3,
/// 5... of the file), 1 the second half (2, 4, 6...).
threshold_rates rates_at(const nlu_evaluation& ev, double threshold, int oos_part = -1);
/// rates_at for each threshold, in order.
std::vector<threshold_rates> threshold_curve(const nlu_evaluation& ev,
                                             const std::vector<double>& thresholds);

/// Reads an out-of-scope set: one message per line; blank lines and lines
/// starting with '#' are skipped; surrounding spaces and a '\r' are trimmed.
std::vector<std::string> read_oos(std::istream& in);

}  // namespace parley::bot
