#pragma once
/// Intent classifier and entity extractors (internal to src/bot).
///
/// Classifier: TF-IDF over hashed features — words, word bigrams and character
/// 3- and 4-grams inside word boundaries (which make it robust to typos) — and
/// nearest centroid by cosine similarity. Confidence is a softmax over the
/// cosine similarities. Training is one pass over the utterances (no iterative
/// optimisation), so it is fast and deterministic.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/bot/zone.hpp"
#include "src/proto/bot.pb.h"

namespace re2 {
class RE2;
}

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
  /// Every intent's cosine similarity, by intent; empty when the text has no
  /// known feature (for calibration).
  std::vector<float> raw_similarities(std::string_view normalized) const;
  /// Exact (normalized) utterance match; -1 when none.
  int exact(std::string_view normalized) const;

 private:
  /// A feature bucket the model knows: its IDF and its postings.
  struct known_bucket {
    std::uint32_t bucket = empty_bucket;
    float idf = 0;
    std::uint32_t post_begin = 0, post_end = 0;  // in postings_
  };
  static constexpr std::uint32_t empty_bucket = 0xffffffffu;  // buckets are masked below it
  /// The slot of `bucket` in table_, or the empty slot where it would go (buckets are
  /// masked below empty_bucket, so it never looks for that).
  std::size_t probe(std::uint32_t bucket) const;
  /// The bucket's entry; null for one the model has not seen (default IDF, no postings).
  const known_bucket* find(std::uint32_t bucket) const;
  float idf(std::uint32_t bucket) const;
  // Open addressing, linear probing, a power of two at least twice the known buckets:
  // one or two probes per feature where binary searches of two sorted arrays took
  // half the classifier's time.
  std::vector<known_bucket> table_;
  std::uint32_t table_mask_ = 0;
  float default_idf_ = 1;
  std::vector<std::pair<std::uint32_t, float>> postings_;  // (intent, weight)
  std::vector<std::pair<std::string, int>> exact_;         // sorted by text
  std::size_t intents_ = 0;
  bool calibrated_ = false;
  float cal_similarity_ = 0, cal_margin_ = 0, cal_bias_ = 0;
  /// Fills `sim` (one per intent); false when the text has no known feature.
  bool similarities(std::string_view normalized, std::vector<float>& sim) const;
};

/// A bot file's regular expression compiled with RE2, which matches in time
/// linear in the input (no backtracking), so no pattern and no message can
/// stall the lane that runs a turn. The result is immutable and may be shared
/// by any number of threads. Null when RE2 cannot run the pattern; `why` then
/// says why in words for a diagnostic (a backreference, a lookaround, a syntax
/// error), starting with "regex".
std::shared_ptr<const re2::RE2> compile_regex(const std::string& pattern, bool case_sensitive,
                                              std::string& why);

/// Entity extraction.
struct entity_hit {
  std::string value;  // canonical value
  std::string text;   // matched text
};

class extractor {
 public:
  extractor() = default;
  /// `re` is the entity's compiled regex (compile_regex), null for an entity
  /// without one. `z` is the bot's time zone for dates and times, null for UTC.
  /// `e` and `z` must outlive the extractor.
  extractor(const ::parley::bot::v1::Entity& e, std::shared_ptr<const re2::RE2> re,
            const zone* z = nullptr);
  /// First match in the input, if any. `raw` is the user's text, `norm` its
  /// normalized form.
  bool extract(std::string_view raw, std::string_view norm, std::int64_t now_unix,
               entity_hit& out) const;

 private:
  const ::parley::bot::v1::Entity* e_ = nullptr;
  const zone* zone_ = nullptr;
  std::shared_ptr<const re2::RE2> re_;
  // (" synonym ", canonical value), longest synonym first
  std::vector<std::pair<std::string, std::string>> synonyms_;
};

/// System extractors, exposed for tests.
bool extract_number(std::string_view raw, entity_hit& out);
bool extract_email(std::string_view raw, entity_hit& out);
bool extract_phone(std::string_view raw, entity_hit& out);
/// `now_unix` is the turn's clock; "today" is the date of the wall clock in
/// `z` (null: UTC).
bool extract_date(std::string_view raw, std::string_view norm, std::int64_t now_unix,
                  entity_hit& out, const zone* z = nullptr);
/// A local date and time in `z` (null: UTC), as "YYYY-MM-DDTHH:MM:SS+HH:MM".
/// Forms and rules: docs/bot-format.md, "datetime". False for none or an
/// impossible one (25:00, 13pm, Feb 30).
bool extract_datetime(std::string_view raw, std::string_view norm, std::int64_t now_unix,
                      entity_hit& out, const zone* z = nullptr);
bool extract_yes_no(std::string_view norm, entity_hit& out);
bool extract_money(std::string_view raw, entity_hit& out);

}  // namespace parley::bot::detail
