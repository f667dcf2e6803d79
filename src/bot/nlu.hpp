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
};

/// std::regex_traits<char> with the per-character locale lookups of the
/// standard traits cached: libstdc++ looks up the "w" class (string compares
/// and a dynamic_cast) for every \b test and the ctype facet for every
/// case-insensitive comparison. Semantics are those of the "C" locale, which
/// is what the regexes of a bot file are documented to use.
struct fast_regex_traits : std::regex_traits<char> {
  fast_regex_traits();
  template <class It>
  char_class_type lookup_classname(It first, It last, bool icase = false) const {
    if (last - first == 1 && *first == 'w') return word_;
    return std::regex_traits<char>::lookup_classname(first, last, icase);
  }
  bool isctype(char c, char_class_type f) const {
    if (f == word_) {
      auto u = static_cast<unsigned char>(c);
      return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u == '_';
    }
    return std::regex_traits<char>::isctype(c, f);
  }
  char translate_nocase(char c) const {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }

 private:
  char_class_type word_;
};
using fast_regex = std::basic_regex<char, fast_regex_traits>;

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
  fast_regex re_;
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
