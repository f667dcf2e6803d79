#include "cluster/placement/placement.hpp"

namespace parley::cluster {
namespace {

uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t fnv1a(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

constexpr uint64_t fnv_offset = 0xcbf29ce484222325ULL;

}  // namespace

uint64_t stable_hash(std::string_view bytes) { return mix(fnv1a(fnv_offset, bytes)); }

uint32_t shard_of(std::string_view tenant, std::string_view key, uint32_t shards) {
  if (shards == 0) return 0;
  uint64_t h = fnv1a(fnv_offset, tenant);
  h = fnv1a(h, std::string_view("\0", 1));  // ("ab","c") and ("a","bc") differ
  h = mix(fnv1a(h, key));
  return static_cast<uint32_t>(h % shards);
}

int owner_of_hashed(uint32_t shard, const std::vector<uint64_t>& member_hashes) {
  int best = -1;
  uint64_t best_weight = 0;
  const uint64_t s = mix(static_cast<uint64_t>(shard) * 0x9e3779b97f4a7c15ULL + 1);
  for (std::size_t i = 0; i < member_hashes.size(); ++i) {
    uint64_t w = mix(member_hashes[i] ^ s);
    // Ties (astronomically rare) go to the lower hash, so every node agrees.
    if (best < 0 || w > best_weight ||
        (w == best_weight && member_hashes[i] < member_hashes[static_cast<std::size_t>(best)])) {
      best = static_cast<int>(i);
      best_weight = w;
    }
  }
  return best;
}

int owner_of(uint32_t shard, const std::vector<std::string>& members) {
  std::vector<uint64_t> hashes;
  hashes.reserve(members.size());
  for (const auto& m : members) hashes.push_back(stable_hash(m));
  return owner_of_hashed(shard, hashes);
}

std::vector<int> assign(uint32_t shards, const std::vector<std::string>& members) {
  std::vector<uint64_t> hashes;
  hashes.reserve(members.size());
  for (const auto& m : members) hashes.push_back(stable_hash(m));
  std::vector<int> out(shards);
  for (uint32_t s = 0; s < shards; ++s) out[s] = owner_of_hashed(s, hashes);
  return out;
}

std::vector<uint32_t> moved(const std::vector<int>& before,
                            const std::vector<std::string>& before_members,
                            const std::vector<int>& after,
                            const std::vector<std::string>& after_members) {
  std::vector<uint32_t> out;
  const std::string none;
  auto id = [&none](const std::vector<std::string>& m, int i) -> const std::string& {
    return i < 0 ? none : m[static_cast<std::size_t>(i)];
  };
  for (std::size_t s = 0; s < before.size() && s < after.size(); ++s)
    if (id(before_members, before[s]) != id(after_members, after[s]))
      out.push_back(static_cast<uint32_t>(s));
  return out;
}

}  // namespace parley::cluster
