#pragma once
/// Shard placement: which shard a conversation belongs to, and which up node owns a
/// shard. Pure functions, no I/O: every node of a region computes the same answers
/// from the same member list, with no coordinator.
///
/// The hashes are part of the region's protocol: every node of a region (and every
/// version in a rolling upgrade) must compute them alike, so they are spelled out here
/// (FNV-1a 64 then splitmix64's finaliser) instead of std::hash, which differs between
/// standard libraries.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace parley::cluster {

/// FNV-1a 64 of `bytes` with splitmix64's finaliser (well spread in every bit).
uint64_t stable_hash(std::string_view bytes);

/// The shard of the conversation (tenant, conversation key), in [0, shards).
uint32_t shard_of(std::string_view tenant, std::string_view key, uint32_t shards);

/// Rendezvous (highest random weight) owner of `shard` among `members` (node ids):
/// the index of the member with the largest weight(node, shard), -1 when `members`
/// is empty. A member leaving moves only the shards it owned; one joining takes about
/// 1/(n+1) of the shards, from every other member alike.
int owner_of(uint32_t shard, const std::vector<std::string>& members);

/// The same with the members' hashes precomputed (stable_hash of each id): what a
/// node recomputes for all shards at each membership change.
int owner_of_hashed(uint32_t shard, const std::vector<uint64_t>& member_hashes);

/// owner_of for every shard: out[s] is the owner's index in `members`, or -1.
std::vector<int> assign(uint32_t shards, const std::vector<std::string>& members);

/// The shards whose owner differs between two assignments over two member lists
/// (compared by node id, not index).
std::vector<uint32_t> moved(const std::vector<int>& before,
                            const std::vector<std::string>& before_members,
                            const std::vector<int>& after,
                            const std::vector<std::string>& after_members);

}  // namespace parley::cluster
