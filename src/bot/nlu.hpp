#pragma once
/// Intent classifier and entity extractors (internal to src/bot).
///
/// Classifier: TF-IDF over hashed features — words, word bigrams and character
/// 3- and 4-grams inside word boundaries (which make it robust to typos) — and
/// nearest centroid by cosine similarity. Confidence is a softmax over the
/// cosine similarities. Training is one pass over the utterances (no iterative
/// optimisation), so it is fast and deterministic.

#include <cstdint>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/proto/bot.pb.h"

namespace parley::bot::detail {

inline constexpr std::uint32_t nlu_buckets = 1u << 20;

/// Sparse vector: (bucket, weight) sorted by bucket.
using sparse = std::vector<std::pair<std::uint32_t, float>>;

/// Appends the raw (unweighted, counted) features of a normalized text.
void featurize(std::string_view normalized, sparse& out);

/// Trains the model from the intents' (normalized) utterances.
::parley::bot::v1::NluModel train(
    const google::protobuf::RepeatedPtrField<::parley::bot::v1::Intent>& intents);

/// A model prepared for fast scoring: an inverted index bucket -> intents.
class classifier {
 public:
  classifier() = default;
  explicit classifier(const ::parley::bot::v1::Program& p);

  struct scored {
    int intent;
    float confidence;
    float similarity;
  };
  /// Best first, at most `top`. Empty when the model has no intents or the text
  /// has no known feature.
  std::vector<scored> classify(std::string_view normalized, std::size_t top) const;
  /// Exact (normalized) utterance match; -1 when none.
  int exact(std::string_view normalized) const;

 private:
  float idf(std::uint32_t bucket) const;
  std::vector<std::uint32_t> idf_bucket_;
  std::vector<float> idf_weight_;
  float default_idf_ = 1;
  std::vector<std::uint32_t> post_bucket_;  // sorted unique buckets
  std::vector<std::uint32_t> post_start_;   // size post_bucket_ + 1
  std::vector<std::pair<std::uint32_t, float>> postings_;  // (intent, weight)
  std::vector<std::pair<std::string, int>> exact_;  // sorted by text
  std::size_t intents_ = 0;
};

/// Entity extraction.
struct entity_hit {
  std::string value;  // canonical value
  std::string text;   // matched text
};

class extractor {
 public:
  extractor() = default;
  explicit extractor(const ::parley::bot::v1::Entity& e);
  /// First match in the input, if any. `raw` is the user's text, `norm` its
  /// normalized form.
  bool extract(std::string_view raw, std::string_view norm, std::int64_t now_unix,
               entity_hit& out) const;

 private:
  const ::parley::bot::v1::Entity* e_ = nullptr;
  std::regex re_;
  bool has_re_ = false;
  // (" synonym ", canonical value), longest synonym first
  std::vector<std::pair<std::string, std::string>> synonyms_;
};

/// System extractors, exposed for tests.
bool extract_number(std::string_view raw, entity_hit& out);
bool extract_email(std::string_view raw, entity_hit& out);
bool extract_phone(std::string_view raw, entity_hit& out);
bool extract_date(std::string_view raw, std::string_view norm, std::int64_t now_unix,
                  entity_hit& out);
bool extract_yes_no(std::string_view norm, entity_hit& out);
bool extract_money(std::string_view raw, entity_hit& out);

}  // namespace parley::bot::detail
