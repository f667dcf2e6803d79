#pragma once
/// The "lanes" actor scheduler: CAF actors run on the node's io::lanes instead of
/// CAF's own worker threads.
///
/// An actor that becomes ready is posted to the lane of the thread that made it
/// ready (an HTTP handler submitting a turn, an actor sending to another), or round
/// robin when that thread is not a lane (the Redis client's thread, CAF's clock). So
/// a Bot API request, its conversation's turn and the answer's write run on one
/// thread, without the queue hand-off and wake-up of a second thread pool. Actors
/// must not block (they never do in Parley): a lane also serves sockets.
///
/// CAF stays behind this header. Call use_lanes() on the config before constructing
/// the actor_system; the lanes must be started before the first actor runs and
/// stopped only after the actor system is destroyed.

namespace caf {
class actor_system_config;
}
namespace parley::io {
class lanes;
}

namespace parley::actors {

/// Makes the actor system built from `cfg` schedule its actors on `lanes`.
/// `max_throughput`: messages an actor handles before its lane serves others.
void use_lanes(caf::actor_system_config& cfg, io::lanes& lanes, unsigned max_throughput = 64);

}  // namespace parley::actors
