#pragma once
/// Inbound messages and turn outcomes to and from the protobuf carried between nodes
/// (src/proto/cluster.proto). Pure functions: no CAF, no I/O.

#include <optional>
#include <string>

#include "actors/runtime/runtime.hpp"
#include "src/common/result.hpp"
#include "src/http/http.hpp"

namespace parley::cluster {

/// A ForwardedTurn, serialized.
std::string encode_forward(const actors::inbound& in, uint32_t hops, const std::string& from);

struct forwarded {
  actors::inbound in;
  uint32_t hops = 0;
  std::string from;
};
/// Fails (`bad_message`) on bytes that are no ForwardedTurn or name an unknown kind.
result<forwarded> decode_forward(const std::string& bytes);

/// A TurnAnswer, serialized (the program is left out: the receiver looks it up).
std::string encode_answer(const actors::turn_outcome& out);
/// Fails (`bad_message`) on bytes that are no TurnAnswer.
result<actors::turn_outcome> decode_answer(const std::string& bytes);

/// A message from a node of a peer region (cluster/region): a tenant query or an HTTP
/// request to run for a tenant of the receiver's region.
struct region_request {
  std::string from_region;
  std::string tenant_query;           ///< non-empty: "is this tenant's home your region?"
  std::optional<http::request> http;  ///< set: run it (path and query from its target)
};
std::string encode_region_request(const region_request& r);
/// Fails (`bad_message`) on bytes that are no RegionRequest, ask nothing, or carry a
/// request without a method or with a target that is not a path.
result<region_request> decode_region_request(const std::string& bytes);

struct region_answer {
  std::string region;  ///< the answering node's
  bool tenant_home = false;
  std::optional<http::response> http;
  std::string error;  ///< non-empty: the receiver could not answer (why)
};
std::string encode_region_answer(const region_answer& a);
/// Fails (`bad_message`) on bytes that are no RegionAnswer or carry a status outside
/// 100-599.
result<region_answer> decode_region_answer(const std::string& bytes);

}  // namespace parley::cluster
