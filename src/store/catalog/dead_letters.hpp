#pragma once
/// Dead letters, receipts and handoffs: replies to asynchronous channels that were never delivered
/// (cluster/node/outbox_drain writes them; operators read them).
///
/// Each function makes a job (job.hpp): run it with run_job or run_job_sync.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/store/catalog/job.hpp"

namespace parley::store {

struct dead_letter {
  std::int64_t id = 0;  ///< set by the store
  std::string tenant;
  std::string session_id;
  std::int64_t sequence = 0;  ///< the turn that produced the reply
  int reply_index = 0;        ///< its place among the turn's replies
  std::string channel;
  std::string address;
  std::string body;    ///< the reply's text
  std::string reason;  ///< why it was not delivered (no secret in it)
  int attempts = 0;
  std::int64_t created_at_ms = 0;  ///< set by the store
};

/// Keeps a reply that was not delivered. Written again (the drain retried after a
/// crash), it stays one row. Result: whether a row was added.
catalog_job<bool> insert_dead_letter(dead_letter letter);

/// A tenant's dead letters, oldest first, at most `limit`.
catalog_job<std::vector<dead_letter>> list_dead_letters(std::string tenant, int limit = 100);

/// A provider's word on messages sent: a Twilio status callback (one message) or a
/// Messenger delivery or read (every message to the address up to `watermark_ms`).
struct message_receipt {
  std::string tenant;
  std::string bot;
  std::string channel;
  std::string address;
  std::string provider_message_id;  ///< Twilio's MessageSid, a Messenger mid, or ""
  std::string status;
  std::optional<std::int64_t> error_code;
  std::optional<std::int64_t> watermark_ms;
};

/// Keeps receipts (one transaction). Result: how many.
catalog_job<std::size_t> insert_receipts(std::vector<message_receipt> receipts);

/// The receipts of an address, oldest first, at most `limit`.
catalog_job<std::vector<message_receipt>> list_receipts(std::string tenant, std::string address,
                                                        int limit = 100);

/// A conversation handed to a human agent.
struct handoff_record {
  std::string tenant;
  std::string session_id;
  std::int64_t sequence = 0;  ///< the turn that handed it over
  std::string bot;
  std::string channel;
  std::string address;
  std::string queue;
  std::vector<std::string> targets;
  std::int64_t opened_at_ms = 0;  ///< set by the store
  bool closed = false;
  std::string outcome;  ///< resolved, returned_to_bot (closed only)
};

/// Records a handoff; again (the drain retried), it stays one row. Result: whether
/// a row was added.
catalog_job<bool> open_handoff(handoff_record h);

/// A tenant's handoffs, oldest first: the open ones, or all of them.
catalog_job<std::vector<handoff_record>> list_handoffs(std::string tenant, bool open_only,
                                                       int limit = 100);

/// Closes the open handoff of a session with `outcome`. Result: whether one was open.
catalog_job<bool> close_handoff(std::string tenant, std::string session_id, std::string outcome);

}  // namespace parley::store
