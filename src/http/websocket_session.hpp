#pragma once
/// The WebSocket side of src/http, shared by server.cpp (which hands a connection's
/// socket over on upgrade) and websocket.cpp (which runs it with Beast). Private to
/// src/http: it pulls in Asio.

#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "src/http/http.hpp"

namespace parley::http::detail {

/// A socket not yet handed over; `ex` is its connection's executor, where every
/// callback of `h` will run.
std::shared_ptr<ws_session> make_ws_session(boost::asio::any_io_executor ex, websocket_handlers h,
                                            std::string server_header);

/// On the connection's thread: takes `socket` and answers the handshake `req` asked
/// for. `hold` (the HTTP connection, which counts as open while the socket is) is
/// released when the socket closes.
void start_ws_session(const std::shared_ptr<ws_session>& s, boost::asio::ip::tcp::socket&& socket,
                      const request& req, std::shared_ptr<void> hold);

/// On the connection's thread: closes at once, without the closing handshake (the
/// server's stop, or a connection that closed before the hand-over).
void abort_ws_session(const std::shared_ptr<ws_session>& s);

}  // namespace parley::http::detail
