#pragma once
/// Inbound messages and turn outcomes to and from the protobuf carried between nodes
/// (src/proto/cluster.proto). Pure functions: no CAF, no I/O.

#include <string>

#include "actors/runtime/runtime.hpp"
#include "src/common/result.hpp"

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

}  // namespace parley::cluster
