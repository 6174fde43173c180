#!/usr/bin/python3
"""clusterstack-lvs-probe: the real servers and the client of the VM tier's LVS step.

Run by the harness, on the host, inside the harness's own network namespaces
(nsenter --net; stdlib only, so any python3 runs it):

- `serve NAME PORT`: an HTTP server on every address of its namespace (the real
  server's own one and the VIP on its loopback, which LVS-DR delivers to); any
  path answers NAME, HEALTH_PATH answers "ok" for keepalived's HTTP_GET;
- `get HOST PORT`: requests from the client, one connection each (rr schedules
  connections, not requests), one JSON line per request on stdout, flushed at once
  so that a client stopped by TERM leaves every finished request in its log:
  {"t": start, "dt": seconds, "server": NAME or null, "error": text or null}.
  "t" is time.monotonic(): CLOCK_MONOTONIC is the host's, shared with the harness.
"""

import argparse
import http.client
import http.server
import json
import sys
import time

HEALTH_PATH = "/health"


def serve(name: str, port: int) -> int:
    body = f"{name}\n".encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = b"ok\n" if self.path == HEALTH_PATH else body
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    # HTTP/1.0 (the handler's default): the connection closes after each answer.
    server = http.server.ThreadingHTTPServer(("", port), Handler)
    sys.stderr.write(f"{name}: serving on port {port}\n")
    sys.stderr.flush()
    server.serve_forever()
    return 0


def get_once(host: str, port: int, timeout: float) -> dict:
    started = time.monotonic()
    record: dict = {"t": started, "dt": 0.0, "server": None, "error": None}
    try:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", "/", headers={"Connection": "close"})
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace").strip()
        finally:
            conn.close()
        if response.status == 200 and text:
            record["server"] = text
        else:
            record["error"] = f"HTTP {response.status}"
    except (OSError, http.client.HTTPException) as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
    record["dt"] = round(time.monotonic() - started, 4)
    return record


def get(host: str, port: int, count: int, interval: float, timeout: float) -> int:
    """`count` requests (0: until stopped), `interval` seconds apart."""
    done = 0
    while count == 0 or done < count:
        sys.stdout.write(json.dumps(get_once(host, port, timeout)) + "\n")
        sys.stdout.flush()
        done += 1
        if interval > 0:
            time.sleep(interval)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="clusterstack-lvs-probe")
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("name")
    s.add_argument("port", type=int)
    g = sub.add_parser("get")
    g.add_argument("host")
    g.add_argument("port", type=int)
    g.add_argument("--count", type=int, default=1)
    g.add_argument("--interval", type=float, default=0.0)
    g.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.mode == "serve":
        return serve(args.name, args.port)
    return get(args.host, args.port, args.count, args.interval, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
