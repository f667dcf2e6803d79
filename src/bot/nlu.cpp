#include "src/bot/nlu.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <random>
#include <unordered_map>

#include "src/bot/text.hpp"

namespace parley::bot::detail {

namespace {

constexpr std::uint32_t mask = nlu_buckets - 1;
// Feature families are hashed with distinct seeds so they never collide by
// construction, only by chance.
constexpr std::uint32_t seed_word = 0x811C9DC5u;
constexpr std::uint32_t seed_bigram = 0x01000193u;
constexpr std::uint32_t seed_char = 0x5bd1e995u;
// Relative weights of the feature families, chosen on the held-out split of
// config/bots/help-desk.yaml (see bench/README.md).
constexpr float word_weight = 1.0f;
constexpr float bigram_weight = 0.6f;
constexpr float char_weight = 0.35f;

void compact(sparse& v) {
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::size_t o = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (o > 0 && v[o - 1].first == v[i].first)
      v[o - 1].second += v[i].second;
    else
      v[o++] = v[i];
  }
  v.resize(o);
}

// Sublinear TF (square root of the weighted count) times IDF, L2-normalized.
template <class Idf>
void weigh(sparse& v, const Idf& idf) {
  double norm = 0;
  for (auto& [b, w] : v) {
    w = std::sqrt(w) * idf(b);
    norm += static_cast<double>(w) * w;
  }
  if (norm <= 0) return;
  auto inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (auto& e : v) e.second *= inv;
}

}  // namespace

void featurize(std::string_view norm, sparse& out) {
  auto ws = words(norm);
  std::string buf;
  for (std::size_t i = 0; i < ws.size(); ++i) {
    auto w = ws[i];
    out.emplace_back(fnv1a32(w, seed_word) & mask, word_weight);
    if (i + 1 < ws.size()) {
      buf.assign(w).push_back(' ');
      buf.append(ws[i + 1]);
      out.emplace_back(fnv1a32(buf, seed_bigram) & mask, bigram_weight);
    }
    buf.assign("<").append(w).push_back('>');
    for (std::size_t n = 3; n <= 4; ++n)
      for (std::size_t p = 0; p + n <= buf.size(); ++p)
        out.emplace_back(fnv1a32(std::string_view(buf).substr(p, n), seed_char + n) & mask,
                         char_weight);
  }
  compact(out);
}

namespace {

/// score[c] += x * row[c]: the inner loop of training. Built twice, for AVX2 and
/// for any x86-64 (picked when the program loads); without FMA, so both give the
/// same bits.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void axpy(float x, const float* row, float* score, std::size_t k) {
  for (std::size_t c = 0; c < k; ++c) score[c] += x * row[c];
}

/// The training table: one weight per (feature, intent). A feature that occurs in
/// many intents gets a dense row of k floats; one that occurs in a few (most of
/// them: rare words and character n-grams) a short list of (intent, weight),
/// which grows only where the perceptron moves weight. A dense table of every
/// feature was 60 MB at 760 intents, and scoring one example read a 3 KB row
/// per feature, mostly zeros, from memory: the hybrid computes the same sums in
/// the same order (bit-identical models) at a fraction of the reads.
class weights {
 public:
  /// Rows of features in at least this many intents are dense.
  static constexpr std::uint32_t dense_from = 48;

  weights(std::size_t k, const std::vector<std::uint32_t>& intents_of) : k_(k) {
    row_.resize(intents_of.size());
    std::size_t dense = 0;
    for (std::size_t f = 0; f < intents_of.size(); ++f)
      row_[f] = intents_of[f] >= dense_from || intents_of[f] * 4 >= k ? dense++ : npos;
    dense_.assign(dense * k, 0.0f);
    list_.resize(intents_of.size());
  }

  void add(std::size_t f, std::uint32_t c, float v) {
    if (row_[f] != npos) {
      dense_[row_[f] * k_ + c] += v;
      return;
    }
    for (auto& e : list_[f])
      if (e.first == c) {
        e.second += v;
        return;
      }
    list_[f].emplace_back(c, 0.0f + v);
  }

  /// score[c] += x * weight(f, c) for every intent c.
  void score(std::size_t f, float x, float* score) const {
    if (row_[f] != npos) {
      axpy(x, &dense_[row_[f] * k_], score, k_);
      return;
    }
    for (auto [c, v] : list_[f]) score[c] += x * v;
  }

  /// Calls fn(c, weight) for the intents of row f, ascending in c for dense rows
  /// (list rows in insertion order: callers only need each c's own order over f).
  template <class Fn>
  void for_each(std::size_t f, Fn&& fn) const {
    if (row_[f] != npos) {
      const float* row = &dense_[row_[f] * k_];
      for (std::size_t c = 0; c < k_; ++c) fn(c, row[c]);
      return;
    }
    for (auto [c, v] : list_[f]) fn(c, v);
  }

  void scale(std::size_t f, const std::vector<float>& by) {
    if (row_[f] != npos) {
      float* row = &dense_[row_[f] * k_];
      for (std::size_t c = 0; c < k_; ++c) row[c] *= by[c];
      return;
    }
    for (auto& [c, v] : list_[f]) v *= by[c];
  }

 private:
  static constexpr std::size_t npos = ~std::size_t{0};
  std::size_t k_;
  std::vector<std::size_t> row_;  // feature -> dense row, or npos
  std::vector<float> dense_;
  std::vector<std::vector<std::pair<std::uint32_t, float>>> list_;
};

v1::NluModel train_model(const google::protobuf::RepeatedPtrField<v1::Intent>& intents) {
  v1::NluModel m;
  m.set_buckets(nlu_buckets);
  std::vector<std::vector<sparse>> docs(intents.size());
  std::unordered_map<std::uint32_t, std::uint32_t> df;
  std::size_t n = 0;
  for (int i = 0; i < intents.size(); ++i) {
    for (const auto& u : intents[i].utterances()) {
      sparse v;
      featurize(u, v);
      for (const auto& e : v) ++df[e.first];
      docs[i].push_back(std::move(v));
      ++n;
    }
  }
  std::vector<std::pair<std::uint32_t, float>> idf;
  idf.reserve(df.size());
  for (auto [b, c] : df)
    idf.emplace_back(b, static_cast<float>(std::log((n + 1.0) / (c + 1.0)) + 1.0));
  std::sort(idf.begin(), idf.end());
  float default_idf = static_cast<float>(std::log(n + 1.0) + 1.0);
  m.set_default_idf(default_idf);
  for (auto& [b, w] : idf) {
    m.add_idf_bucket(b);
    m.add_idf_weight(w);
  }
  auto lookup = [&](std::uint32_t b) {
    auto it = std::lower_bound(idf.begin(), idf.end(), std::make_pair(b, -1e30f));
    return it != idf.end() && it->first == b ? it->second : default_idf;
  };
  // Working copy: feature id -> one weight per intent, starting from the
  // L2-normalized centroids (see `weights`).
  const std::size_t k = docs.size();
  std::unordered_map<std::uint32_t, std::uint32_t> fid;
  std::vector<std::uint32_t> fbucket;
  struct example {
    std::vector<std::pair<std::uint32_t, float>> x;  // (feature id, weight)
    std::uint32_t intent;
  };
  std::vector<example> examples;
  std::vector<std::uint32_t> intents_of;  // feature id -> distinct intents it occurs in
  std::vector<std::uint32_t> last_intent;
  for (std::size_t i = 0; i < k; ++i)
    for (auto& d : docs[i]) {
      weigh(d, lookup);
      example ex{{}, static_cast<std::uint32_t>(i)};
      for (auto& [b, w] : d) {
        auto [it, fresh] = fid.emplace(b, static_cast<std::uint32_t>(fbucket.size()));
        if (fresh) {
          fbucket.push_back(b);
          intents_of.push_back(0);
          last_intent.push_back(~0u);
        }
        if (last_intent[it->second] != i) {
          last_intent[it->second] = static_cast<std::uint32_t>(i);
          ++intents_of[it->second];
        }
        ex.x.emplace_back(it->second, w);
      }
      examples.push_back(std::move(ex));
    }
  weights w(k, intents_of);
  for (const auto& ex : examples)
    for (auto [f, x] : ex.x) w.add(f, ex.intent, x);
  {
    std::vector<double> norm(k, 0.0);
    for (std::size_t f = 0; f < fbucket.size(); ++f)
      w.for_each(f, [&](std::size_t c, float v) { norm[c] += double(v) * v; });
    std::vector<float> inv(k);
    for (std::size_t c = 0; c < k; ++c)
      inv[c] = norm[c] > 0 ? static_cast<float>(1.0 / std::sqrt(norm[c])) : 0.0f;
    for (std::size_t f = 0; f < fbucket.size(); ++f) w.scale(f, inv);
  }
  // Margin perceptron refinement: where an example's own intent does not beat
  // the best other intent by `margin`, move weight from that intent to its
  // own. It removes the weight of words shared by confusable intents (+4 to +6
  // points of held-out accuracy on the sample bots). Deterministic: a fixed
  // Fisher-Yates shuffle driven by std::mt19937 (whose sequence the standard
  // fixes).
  constexpr int epochs = 5;
  constexpr float rate = 0.1f;
  constexpr float margin = 0.2f;
  std::vector<std::uint32_t> order(examples.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::uint32_t>(i);
  std::mt19937 rng(20261126u);
  std::vector<float> score(k);
  // An epoch that moves nothing leaves every example past the margin, and so
  // would every later one: training stops there (same model, less time).
  std::size_t moved = 1;
  for (int e = 0; e < epochs && k > 1 && moved > 0; ++e) {
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
    moved = 0;
    for (auto idx : order) {
      const auto& ex = examples[idx];
      std::fill(score.begin(), score.end(), 0.0f);
      for (auto [f, x] : ex.x) w.score(f, x, score.data());
      std::size_t rival = ex.intent == 0 ? 1 : 0;
      for (std::size_t c = 0; c < k; ++c)
        if (c != ex.intent && score[c] > score[rival]) rival = c;
      if (score[ex.intent] - score[rival] >= margin) continue;
      ++moved;
      for (auto [f, x] : ex.x) {
        w.add(f, ex.intent, rate * x);
        w.add(f, static_cast<std::uint32_t>(rival), -rate * x);
      }
    }
  }
  // Sparse export, sorted by bucket.
  std::vector<std::uint32_t> by_bucket(fbucket.size());
  for (std::size_t f = 0; f < by_bucket.size(); ++f) by_bucket[f] = static_cast<std::uint32_t>(f);
  std::sort(by_bucket.begin(), by_bucket.end(),
            [&](auto a, auto b) { return fbucket[a] < fbucket[b]; });
  for (std::size_t c = 0; c < k; ++c) m.add_centroids();
  for (auto f : by_bucket)
    w.for_each(f, [&](std::size_t c, float v) {
      if (std::fabs(v) < 1e-4f) return;
      auto* cen = m.mutable_centroids(static_cast<int>(c));
      cen->add_bucket(fbucket[f]);
      cen->add_weight(v);
    });
  return m;
}

/// The calibration features of scored intent `i` of a classification.
std::pair<double, double> calibration_features(float sim, float other) {
  return {10.0 * sim, 10.0 * (sim - other)};
}

/// Logistic regression by Newton's method (3 parameters, L2 on the weights):
/// deterministic, a few milliseconds.
v1::Calibration fit_calibration(const std::vector<std::array<double, 3>>& xs,
                                const std::vector<double>& ys, const std::vector<double>& ws) {
  double w[3] = {0, 0, 0};
  constexpr double l2 = 1e-3;
  for (int it = 0; it < 25; ++it) {
    double g[3] = {0, 0, 0}, h[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
    double total = 0;
    for (std::size_t n = 0; n < xs.size(); ++n) {
      const auto& x = xs[n];
      double z = w[0] * x[0] + w[1] * x[1] + w[2] * x[2];
      double p = 1.0 / (1.0 + std::exp(-z));
      for (int a = 0; a < 3; ++a) {
        g[a] += ws[n] * (p - ys[n]) * x[a];
        for (int b = 0; b < 3; ++b) h[a][b] += ws[n] * p * (1 - p) * x[a] * x[b];
      }
      total += ws[n];
    }
    if (total <= 0) break;
    for (int a = 0; a < 3; ++a) {
      for (int b = 0; b < 3; ++b) h[a][b] /= total;
      g[a] /= total;
      if (a < 2) {
        g[a] += l2 * w[a];
        h[a][a] += l2;
      }
      h[a][a] += 1e-9;
    }
    // Solve h d = g (Gaussian elimination, 3x3).
    double m[3][4];
    for (int a = 0; a < 3; ++a) {
      for (int b = 0; b < 3; ++b) m[a][b] = h[a][b];
      m[a][3] = g[a];
    }
    for (int c = 0; c < 3; ++c) {
      int piv = c;
      for (int r = c + 1; r < 3; ++r)
        if (std::fabs(m[r][c]) > std::fabs(m[piv][c])) piv = r;
      for (int k = 0; k < 4; ++k) std::swap(m[c][k], m[piv][k]);
      if (std::fabs(m[c][c]) < 1e-12) return {};
      for (int r = 0; r < 3; ++r) {
        if (r == c) continue;
        double f = m[r][c] / m[c][c];
        for (int k = c; k < 4; ++k) m[r][k] -= f * m[c][k];
      }
    }
    for (int a = 0; a < 3; ++a) w[a] -= m[a][3] / m[a][a];
  }
  v1::Calibration c;
  c.set_similarity(static_cast<float>(w[0]));
  c.set_margin(static_cast<float>(w[1]));
  c.set_bias(static_cast<float>(w[2]));
  return c;
}

/// Near misses count for less than right answers: they stand for the out-of-scope
/// messages a bot sees, which are harder to tell apart than most.
constexpr double near_miss_weight = 0.05;
constexpr int calibration_holdout = 5;

}  // namespace

v1::NluModel train(const google::protobuf::RepeatedPtrField<v1::Intent>& intents) {
  v1::NluModel m = train_model(intents);
  if (intents.size() < 2) return m;
  // Calibration: retrain without every 5th utterance of each intent, and score
  // those held-out utterances with and without their own intent.
  v1::Program held;
  std::vector<std::pair<std::string, int>> tests;
  for (int i = 0; i < intents.size(); ++i) {
    auto* in = held.add_intents();
    for (int u = 0; u < intents[i].utterances_size(); ++u) {
      if (u % calibration_holdout == 1)
        tests.emplace_back(intents[i].utterances(u), i);
      else
        in->add_utterances(intents[i].utterances(u));
    }
  }
  if (tests.size() < 10) return m;
  *held.mutable_nlu() = train_model(held.intents());
  classifier c(held);
  std::vector<std::array<double, 3>> xs;
  std::vector<double> ys, ws;
  for (const auto& [text, want] : tests) {
    auto s = c.raw_similarities(text);
    if (s.empty()) continue;
    // The best, the second, and the best two other than the right intent.
    int best = -1, second = -1, ob = -1, os = -1;
    for (int k = 0; k < static_cast<int>(s.size()); ++k) {
      if (best < 0 || s[k] > s[best]) {
        second = best;
        best = k;
      } else if (second < 0 || s[k] > s[second]) {
        second = k;
      }
      if (k == want) continue;
      if (ob < 0 || s[k] > s[ob]) {
        os = ob;
        ob = k;
      } else if (os < 0 || s[k] > s[os]) {
        os = k;
      }
    }
    if (second < 0 || os < 0) continue;
    auto f = calibration_features(s[best], s[second]);
    xs.push_back({f.first, f.second, 1.0});
    ys.push_back(best == want ? 1.0 : 0.0);
    ws.push_back(1.0);
    f = calibration_features(s[ob], s[os]);
    xs.push_back({f.first, f.second, 1.0});
    ys.push_back(0.0);
    ws.push_back(near_miss_weight);
  }
  auto cal = fit_calibration(xs, ys, ws);
  if (cal.similarity() > 0 || cal.margin() > 0) *m.mutable_calibration() = cal;
  return m;
}

classifier::classifier(const v1::Program& p) {
  const auto& m = p.nlu();
  default_idf_ = m.default_idf();
  intents_ = static_cast<std::size_t>(m.centroids_size());
  if (m.has_calibration()) {
    calibrated_ = true;
    cal_similarity_ = m.calibration().similarity();
    cal_margin_ = m.calibration().margin();
    cal_bias_ = m.calibration().bias();
  }
  std::vector<std::tuple<std::uint32_t, std::uint32_t, float>> all;
  for (int i = 0; i < m.centroids_size(); ++i) {
    const auto& c = m.centroids(i);
    for (int j = 0; j < c.bucket_size() && j < c.weight_size(); ++j)
      all.emplace_back(c.bucket(j), static_cast<std::uint32_t>(i), c.weight(j));
  }
  std::sort(all.begin(), all.end());
  // The known buckets: those with an IDF, those with postings (adjacent in `all`).
  std::size_t distinct = 0;
  for (std::size_t i = 0; i < all.size(); ++i)
    distinct += i == 0 || std::get<0>(all[i]) != std::get<0>(all[i - 1]);
  std::size_t size = 8;
  while (size < 2 * (static_cast<std::size_t>(m.idf_bucket_size()) + distinct)) size *= 2;
  table_.assign(size, known_bucket{});
  table_mask_ = static_cast<std::uint32_t>(size - 1);
  for (int i = 0; i < m.idf_bucket_size() && i < m.idf_weight_size(); ++i) {
    auto& k = table_[probe(m.idf_bucket(i))];
    if (k.bucket == empty_bucket)
      k = {m.idf_bucket(i), m.idf_weight(i), 0, 0};  // a bucket's first IDF
  }
  for (auto& [b, intent, w] : all) {
    auto& k = table_[probe(b)];
    if (k.bucket == empty_bucket) k = {b, default_idf_, 0, 0};
    if (k.post_begin == k.post_end) k.post_begin = static_cast<std::uint32_t>(postings_.size());
    postings_.emplace_back(intent, w);
    k.post_end = static_cast<std::uint32_t>(postings_.size());
  }
  for (int i = 0; i < p.intents_size(); ++i)
    for (const auto& u : p.intents(i).utterances()) exact_.emplace_back(u, i);
  std::sort(exact_.begin(), exact_.end());
  // A text listed under two intents is not an exact match for either.
  std::vector<std::pair<std::string, int>> uniq;
  for (std::size_t i = 0; i < exact_.size(); ++i) {
    if (!uniq.empty() && uniq.back().first == exact_[i].first) {
      if (uniq.back().second != exact_[i].second) uniq.back().second = -1;
      continue;
    }
    uniq.push_back(exact_[i]);
  }
  exact_ = std::move(uniq);
}

std::size_t classifier::probe(std::uint32_t b) const {
  for (std::uint32_t h = (b * 0x9e3779b1u) & table_mask_;; h = (h + 1) & table_mask_)
    if (table_[h].bucket == b || table_[h].bucket == empty_bucket) return h;
}

const classifier::known_bucket* classifier::find(std::uint32_t b) const {
  if (table_.empty()) return nullptr;
  const auto& k = table_[probe(b)];
  return k.bucket == empty_bucket ? nullptr : &k;
}

float classifier::idf(std::uint32_t b) const {
  const auto* k = find(b);
  return k != nullptr ? k->idf : default_idf_;
}

int classifier::exact(std::string_view norm) const {
  auto it = std::lower_bound(exact_.begin(), exact_.end(), norm,
                             [](const auto& a, std::string_view b) { return a.first < b; });
  if (it != exact_.end() && it->first == norm) return it->second;
  return -1;
}

bool classifier::similarities(std::string_view norm, std::vector<float>& sim) const {
  sparse q;
  q.reserve(norm.size() * 3);
  featurize(norm, q);
  weigh(q, [this](std::uint32_t b) { return idf(b); });
  sim.assign(intents_, 0.0f);
  bool any = false;
  for (const auto& [b, w] : q) {
    const auto* k = find(b);
    if (k == nullptr) continue;
    for (auto p = k->post_begin; p < k->post_end; ++p) {
      sim[postings_[p].first] += w * postings_[p].second;
      any = true;
    }
  }
  return any;
}

std::vector<float> classifier::raw_similarities(std::string_view normalized) const {
  std::vector<float> sim;
  if (intents_ == 0 || !similarities(normalized, sim)) sim.clear();
  return sim;
}

std::vector<classifier::scored> classifier::classify(std::string_view norm, std::size_t top) const {
  std::vector<scored> out;
  if (intents_ == 0) return out;
  out.reserve(std::min(top, intents_));
  // Small fixed-size score array on the stack for typical bots.
  std::vector<float> sim;
  if (!similarities(norm, sim)) return out;
  top = std::min(top, intents_);
  std::vector<std::uint32_t> idx(intents_);
  for (std::size_t i = 0; i < intents_; ++i) idx[i] = static_cast<std::uint32_t>(i);
  const std::size_t sorted = std::min(std::max<std::size_t>(top, 2), intents_);
  std::partial_sort(idx.begin(), idx.begin() + static_cast<long>(sorted), idx.end(),
                    [&](auto a, auto b) { return sim[a] > sim[b] || (sim[a] == sim[b] && a < b); });
  if (calibrated_) {
    // The calibrated probability that the intent is the right one (see Calibration
    // in bot.proto): it depends on the intent's similarity and its lead over the
    // best other intent, not on how many intents the bot has.
    for (std::size_t i = 0; i < top; ++i) {
      auto k = idx[i];
      float other = intents_ < 2 ? 0.0f : sim[idx[i == 0 ? 1 : 0]];
      double z =
          cal_similarity_ * 10.0 * sim[k] + cal_margin_ * 10.0 * (sim[k] - other) + cal_bias_;
      out.push_back({static_cast<int>(k), static_cast<float>(1.0 / (1.0 + std::exp(-z))), sim[k]});
    }
    return out;
  }
  // Programs compiled before calibration: a softmax over similarities; the
  // temperature makes a clear winner confident while keeping near-ties uncertain.
  // A pseudo-intent "none of them" with a fixed similarity joins the softmax, so
  // that text far from every intent gets a low confidence even when one intent is
  // a little less far.
  constexpr float temperature = 12.0f;
  constexpr float none_similarity = 0.12f;
  float best = std::max(*std::max_element(sim.begin(), sim.end()), none_similarity);
  double z = std::exp(temperature * (none_similarity - best));
  for (float s : sim) z += std::exp(temperature * (s - best));
  for (std::size_t i = 0; i < top; ++i) {
    auto k = idx[i];
    out.push_back({static_cast<int>(k),
                   static_cast<float>(std::exp(temperature * (sim[k] - best)) / z), sim[k]});
  }
  return out;
}

}  // namespace parley::bot::detail
