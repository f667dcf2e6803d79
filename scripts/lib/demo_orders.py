#!/usr/bin/env python3
"""A stand-in for the order system the order-status sample bot calls, so that
scripts/run's demo answers end to end on a laptop with no internet.

    demo_orders.py PORT_FILE [PORT] [TOKEN]

Serves GET /v1/orders/{number} on 127.0.0.1:PORT (0: any free port), writes the
port it listens on to PORT_FILE, and answers like the real API the bot expects:

  AB123456  shipped, with a carrier and a tracking number
  AB654321  delivered
  AB000000  404 (no such order)
  others    "being prepared"

Requests without "Authorization: Bearer TOKEN" get 401.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ORDERS = {
    "AB123456": {"status": "shipped", "shipment": {"carrier": "DHL", "tracking": "JD014600006281823"}},
    "AB654321": {"status": "delivered", "shipment": {"carrier": "UPS", "tracking": "1Z999AA10123456784"}},
}


def main():
    port_file = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    token = sys.argv[3] if len(sys.argv) > 3 else "demo-orders-token"

    class Handler(BaseHTTPRequestHandler):
        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.headers.get("Authorization") != "Bearer " + token:
                return self.answer(401, {"error": "missing or wrong bearer token"})
            prefix = "/v1/orders/"
            if not self.path.startswith(prefix):
                return self.answer(404, {"error": "no such resource"})
            number = self.path[len(prefix):]
            if number == "AB000000":
                return self.answer(404, {"error": "no such order"})
            self.answer(200, ORDERS.get(number, {"status": "being prepared", "shipment": {}}))

        def log_message(self, fmt, *args):  # quiet: scripts/run's terminal is parleyd's
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    with open(port_file, "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
