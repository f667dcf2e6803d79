#include "src/store/catalog/transcripts.hpp"

#include <pqxx/tablewriter>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "src/store/catalog/detail.hpp"

namespace parley::store {

using namespace detail;

namespace {

/// Appends `text` (valid UTF-8, see clean_text) as a JSON string: quotes, backslashes
/// and control characters escaped, everything else as is (nlohmann's DOM and dump per
/// reply were the transcript path's largest cost). `for_copy`: inside a field of COPY's
/// text format, so every backslash is doubled (a JSON string holds no raw tab or line
/// end, so nothing else needs COPY's escaping).
void append_json_string(std::string& out, std::string_view text, bool for_copy) {
  static const char* hex = "0123456789abcdef";
  const std::string_view bs = for_copy ? "\\\\" : "\\";
  out += '"';
  std::size_t from = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + from, i - from);
    from = i + 1;
    out += bs;
    switch (c) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += bs;
        break;
      case '\n':
        out += 'n';
        break;
      case '\r':
        out += 'r';
        break;
      case '\t':
        out += 't';
        break;
      case '\b':
        out += 'b';
        break;
      case '\f':
        out += 'f';
        break;
      default:
        out += "u00";
        out += hex[c >> 4];
        out += hex[c & 15];
    }
  }
  out.append(text.data() + from, text.size() - from);
  out += '"';
}

/// Appends `v` as one field of COPY's text format: its delimiters (tab, newline,
/// carriage return) and the escape character (backslash) escaped, the rest as is.
void append_copy_field(std::string& line, std::string_view v) {
  std::size_t from = 0;
  for (auto at = v.find_first_of("\\\n\r\t"); at != std::string_view::npos;
       at = v.find_first_of("\\\n\r\t", at + 1)) {
    line.append(v.data() + from, at - from);
    line += '\\';
    const char c = v[at];
    line += c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : '\\';
    from = at + 1;
  }
  line.append(v.data() + from, v.size() - from);
}

/// Appends a time in milliseconds since the epoch as timestamptz text (UTC). The text
/// of the last second is kept per thread: turns of one batch share their seconds.
void append_timestamp(std::string& line, std::int64_t ms) {
  thread_local std::int64_t cached_second = -1;
  thread_local char cached[24];  // "YYYY-MM-DD HH:MM:SS."
  thread_local int cached_len = 0;
  if (ms < 0) ms = 0;
  const std::int64_t second = ms / 1000;
  if (second != cached_second) {
    std::time_t secs = static_cast<std::time_t>(second);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    cached_len =
        std::snprintf(cached, sizeof cached, "%04d-%02d-%02d %02d:%02d:%02d.", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_second = second;
  }
  line.append(cached, static_cast<std::size_t>(cached_len));
  const int milli = static_cast<int>(ms % 1000);
  line += static_cast<char>('0' + milli / 100);
  line += static_cast<char>('0' + milli / 10 % 10);
  line += static_cast<char>('0' + milli % 10);
  line += "+00";
}

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// `text` as clean_text would make it, without a copy when it is clean already.
template <class Fn>
void with_clean(std::string_view text, Fn&& fn) {
  for (unsigned char c : text)
    if (c == 0 || c >= 0x80) {
      auto cleaned = clean_text(std::string(text));
      return fn(std::string_view(cleaned));
    }
  fn(text);
}

/// Appends the first columns of a transcript_turns COPY line: tenant, session id and
/// sequence, each followed by its tab.
void append_line_head(std::string& out, std::string_view tenant, std::string_view session_id,
                      std::int64_t sequence) {
  with_clean(tenant, [&](std::string_view t) { append_copy_field(out, t); });
  out += '\t';
  with_clean(session_id, [&](std::string_view t) { append_copy_field(out, t); });
  out += '\t';
  char b[24];
  auto r = std::to_chars(b, b + sizeof b, sequence);
  out.append(b, r.ptr);
  out += '\t';
}

/// COPY into `table` (transcript_turns or a table like it) of the lines `each` hands to
/// the function it is given, in the column order of append_line_head and
/// transcript_line_builder.
template <class Each>
void copy_turn_lines(pqxx::transaction_base& tx, const std::string& table, Each&& each) {
  static const std::vector<std::string> columns = {"tenant_id",  "session_id",      "sequence",
                                                   "inbound",    "inbound_payload", "outbound",
                                                   "created_at", "replay"};
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  // pqxx 6.4's only public way to write COPY lines as they are (stream_to escapes every
  // field again, byte by byte).
  pqxx::tablewriter copy(tx, table, columns.begin(), columns.end());
#pragma GCC diagnostic pop
  // Lines go out many at a time: write_raw_line copies its argument to append the
  // newline and hands it to libpq as one CopyData message, and COPY's data stream
  // does not care where its messages split. Joined up to about 64 KiB (the newline
  // after the last line is write_raw_line's).
  constexpr std::size_t chunk = 64 * 1024;
  std::string joined;
  joined.reserve(chunk + 1024);
  each([&](const std::string& line) {
    if (!joined.empty()) joined += '\n';
    joined += line;
    // A line of a node from before migration 0013 (say, one that waited in Redis
    // through an upgrade) has no replay field: COPY takes it as NULL.
    if (std::count(line.begin(), line.end(), '\t') == 6) joined += "\t\\N";
    if (joined.size() >= chunk) {
      copy.write_raw_line(joined);
      joined.clear();
    }
  });
  if (!joined.empty()) copy.write_raw_line(joined);
  copy.complete();
}

/// The common case of a transcript batch, every turn new: one COPY into
/// transcript_turns, which inserts its rows in batches (one WAL record per heap page
/// instead of one per row) and parses no statement. COPY has no ON CONFLICT: a stored
/// turn fails it, and then the savepoint takes the transaction back to before it and
/// this returns false, for the caller's merging path.
template <class Each>
bool copied_as_new(pqxx::transaction_base& tx, Each&& each) {
  tx.exec0("SAVEPOINT parley_transcript");
  try {
    copy_turn_lines(tx, "transcript_turns", std::forward<Each>(each));
    return true;
  } catch (const pqxx::unique_violation&) {
    // Back to the top-level transaction (ROLLBACK TO keeps the savepoint open).
    tx.exec0("ROLLBACK TO SAVEPOINT parley_transcript");
    tx.exec0("RELEASE SAVEPOINT parley_transcript");
    return false;
  }
}

/// COPY of whole-turn lines. A stored turn fails the COPY (unique violation); then the
/// lines go through a temporary table and INSERT ... ON CONFLICT DO NOTHING, which
/// skips the stored turns. A batch with a line sent again (maybe_stored) takes that
/// path at once. Result: messages of the turns inserted.
catalog_job<std::size_t> transcript_lines_job(
    std::shared_ptr<const std::vector<transcript_line>> lines) {
  return [lines](pqxx::transaction_base& tx) -> std::size_t {
    if (lines->empty()) return 0;
    auto each = [&](auto&& write) {
      for (const auto& l : *lines) write(l.copy);
    };
    const bool maybe_stored = std::any_of(lines->begin(), lines->end(),
                                          [](const transcript_line& l) { return l.maybe_stored; });
    if (!maybe_stored && copied_as_new(tx, each)) {
      std::size_t messages = 0;
      for (const auto& l : *lines) messages += l.messages;
      return messages;
    }
    tx.exec0(
        "CREATE TEMPORARY TABLE IF NOT EXISTS parley_transcript_lines "
        "(LIKE transcript_turns INCLUDING DEFAULTS) ON COMMIT DELETE ROWS");
    copy_turn_lines(tx, "parley_transcript_lines", each);
    auto r = tx.exec(
        "WITH ins AS (INSERT INTO transcript_turns SELECT * FROM parley_transcript_lines "
        "ON CONFLICT (session_id, sequence) DO NOTHING "
        "RETURNING (inbound IS NOT NULL)::int + jsonb_array_length(outbound) AS m) "
        "SELECT coalesce(sum(m), 0) FROM ins");
    tx.exec0("TRUNCATE parley_transcript_lines");
    return r[0][0].as<std::size_t>();
  };
}

/// write_turn_lines: the conversation records, then `transcripts` (the lines' job).
catalog_job<std::size_t> with_conversations(std::vector<conversation_record> conversations,
                                            catalog_job<std::size_t> transcripts) {
  std::vector<conversation_record> started, ended;
  for (auto& c : conversations) (c.ended_at_ms ? ended : started).push_back(std::move(c));
  for (auto& c : started) {
    c.session_id = clean_text(c.session_id);
    c.bot = clean_text(c.bot);
    c.channel = clean_text(c.channel);
    c.external_key = clean_text(c.external_key);
  }
  return [started = std::move(started), ended = std::move(ended),
          transcripts = std::move(transcripts)](pqxx::transaction_base& tx) {
    if (!started.empty()) {
      array_literal tenants, sessions, bots, versions, channels, keys;
      for (const auto& c : started) {
        require_id("tenant id", c.tenant);
        if (c.session_id.empty())
          fail("invalid_argument", "conversation session id must not be empty");
        tenants.text(c.tenant);
        sessions.text(c.session_id);
        bots.text(c.bot);
        versions.number(c.version);
        channels.text(c.channel);
        keys.text(c.external_key);
      }
      // Prepared once per connection: a batch with new conversations every few
      // milliseconds paid for parsing and planning this statement each time.
      tx.conn().prepare("parley_conversations_insert",
                        "INSERT INTO conversations (tenant_id, session_id, bot_id, version, "
                        "channel, external_key, "
                        "started_at) SELECT t, s, b, v, c, k, now() FROM unnest($1::text[], "
                        "$2::text[], $3::text[], "
                        "$4::integer[], $5::text[], $6::text[]) AS u(t, s, b, v, c, k) "
                        "ON CONFLICT (tenant_id, session_id) DO NOTHING");
      tx.exec_prepared0("parley_conversations_insert", tenants.str(), sessions.str(), bots.str(),
                        versions.str(), channels.str(), keys.str());
    }
    for (const auto& e : ended)
      tx.exec_params(
          "UPDATE conversations SET ended_at = now(), end_reason = $3 "
          "WHERE tenant_id = $1 AND session_id = $2 AND ended_at IS NULL",
          e.tenant, clean_text(e.session_id), clean_text(e.end_reason));
    return transcripts(tx);
  };
}

}  // namespace

transcript_line_builder::transcript_line_builder(std::string_view tenant,
                                                 std::string_view session_id,
                                                 std::int64_t sequence) {
  line_.copy.reserve(256);
  append_line_head(line_.copy, tenant, session_id, sequence);
}

void transcript_line_builder::inbound(std::string_view text) {
  if (outbound_open_) return;  // only before the replies (see the header)
  with_clean(text, [&](std::string_view t) { append_copy_field(line_.copy, t); });
  line_.copy += "\t\\N\t[";
  outbound_open_ = true;
  ++line_.messages;
}

void transcript_line_builder::open_outbound() {
  if (outbound_open_) return;
  line_.copy += "\\N\t\\N\t[";
  outbound_open_ = true;
}

void transcript_line_builder::reply(std::string_view text) {
  open_outbound();
  if (line_.copy.back() != '[') line_.copy += ',';
  with_clean(text, [&](std::string_view t) { append_json_string(line_.copy, t, true); });
  ++line_.messages;
}

transcript_line transcript_line_builder::finish(std::int64_t at_ms, std::string_view replay) {
  open_outbound();
  line_.copy += "]\t";
  append_timestamp(line_.copy, at_ms > 0 ? at_ms : now_unix_ms());
  line_.copy += '\t';
  if (replay.empty())
    line_.copy += "\\N";
  else
    with_clean(replay, [&](std::string_view t) { append_copy_field(line_.copy, t); });
  return std::move(line_);
}

catalog_job<std::size_t> write_turn_lines(
    std::vector<conversation_record> conversations,
    std::shared_ptr<const std::vector<transcript_line>> lines) {
  return with_conversations(std::move(conversations), transcript_lines_job(std::move(lines)));
}

catalog_job<std::size_t> write_turn_lines(std::vector<transcript_line> lines) {
  return transcript_lines_job(
      std::make_shared<const std::vector<transcript_line>>(std::move(lines)));
}

catalog_job<std::vector<transcript_row>> transcript(std::string tenant, std::string session) {
  return [tenant = std::move(tenant), session = std::move(session)](pqxx::transaction_base& tx) {
    std::vector<transcript_row> out;
    for (const auto& row : tx.exec_params(
             "SELECT sequence, inbound, coalesce(inbound_payload::text, ''), outbound::text, " +
                 ms("created_at") +
                 " FROM transcript_turns WHERE tenant_id = $1 AND session_id = $2 "
                 "ORDER BY sequence",
             tenant, clean_text(session))) {
      transcript_row r;
      r.tenant = tenant;
      r.session_id = session;
      r.sequence = row[0].as<std::int64_t>();
      r.at_ms = row[4].as<std::int64_t>();
      if (!row[1].is_null()) {
        r.direction = "in";
        r.idx = 0;
        r.text = row[1].as<std::string>();
        r.payload_json = row[2].as<std::string>();
        out.push_back(r);
      }
      auto replies = json::parse(row[3].as<std::string>(), nullptr, false);
      if (!replies.is_array()) continue;
      r.direction = "out";
      for (std::size_t k = 0; k < replies.size(); ++k) {
        const auto& e = replies[k];
        if (e.is_string()) {
          r.text = e.get<std::string>();
          r.payload_json.clear();
        } else if (e.is_object()) {
          r.text = e.value("text", "");
          r.payload_json = e.contains("payload") ? e["payload"].dump() : "";
        } else {
          continue;  // null: a reply never recorded
        }
        r.idx = static_cast<int>(k);
        out.push_back(r);
      }
    }
    return out;
  };
}

}  // namespace parley::store
