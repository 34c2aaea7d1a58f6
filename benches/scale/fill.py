#!/usr/bin/env python3
"""The scale bench's load driver (Python 3 standard library only): sends exactly
COUNT requests over THREADS keep-alive connections and fails on any unexpected
status, so what the broker holds afterwards is known exactly.

    fill.py get URL COUNT STATUS [HEADER...]          COUNT GETs of URL
    fill.py post URL COUNT STATUS BODY [HEADER...]    COUNT form POSTs of BODY
    fill.py mint TOKEN_URL COUNT RESOURCE OUT         COUNT distinct client-credentials
                                                      tokens of the dev IdP's service
                                                      client, one a line into OUT
    fill.py verify URL STATUS TOKENS [HEADER...]      one GET of URL per token in TOKENS
                                                      (a file, one a line), as its bearer
    fill.py register URL COUNT                        COUNT RFC 7591 registrations
    fill.py ready URL STARTS CMD...                   starts CMD STARTS times; the
                                                      milliseconds from spawn to URL's 200,
                                                      one line per start

HEADER is `Name: value`. Prints one line: `sent=N seconds=S` (or the times).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

THREADS = int(os.environ.get("FILL_THREADS", "4"))


def headers_of(args: list[str]) -> dict[str, str]:
    out = {}
    for h in args:
        name, _, value = h.partition(":")
        out[name.strip()] = value.strip()
    return out


def run(url: str, jobs: list, make, expect: int, on_answer=None) -> float:
    """Sends make(job) -> (method, path, body, headers) for every job, spread over
    THREADS connections; every answer must have status `expect`."""
    parsed = urllib.parse.urlsplit(url)
    failures: list[str] = []
    lock = threading.Lock()

    def worker(part):
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        for job in part:
            method, path, body, headers = make(job)
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            if response.status != expect:
                with lock:
                    failures.append(f"{method} {path}: {response.status} {data[:300]!r}")
                return
            if on_answer:
                on_answer(job, response, data)

    parts = [jobs[i::THREADS] for i in range(THREADS)]
    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        sys.exit("fill.py: " + failures[0])
    return time.monotonic() - started


def target(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    return parsed.path + ("?" + parsed.query if parsed.query else "")


def main(argv: list[str]) -> None:
    mode = argv[1]
    if mode == "get":
        url, count, status, extra = argv[2], int(argv[3]), int(argv[4]), argv[5:]
        headers = headers_of(extra)
        took = run(url, list(range(count)), lambda _: ("GET", target(url), None, headers), status)
        print(f"sent={count} seconds={took:.1f}")
    elif mode == "post":
        url, count, status, body, extra = argv[2], int(argv[3]), int(argv[4]), argv[5], argv[6:]
        headers = {"Content-Type": "application/x-www-form-urlencoded", **headers_of(extra)}
        took = run(url, list(range(count)), lambda _: ("POST", target(url), body, headers), status)
        print(f"sent={count} seconds={took:.1f}")
    elif mode == "mint":
        url, count, resource, out = argv[2], int(argv[3]), argv[4], argv[5]
        body = urllib.parse.urlencode(
            {"grant_type": "client_credentials", "scope": "notes:read", "resource": resource})
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   # demo-service:demo-service-secret, the dev IdP's built-in service client
                   "Authorization": "Basic ZGVtby1zZXJ2aWNlOmRlbW8tc2VydmljZS1zZWNyZXQ="}
        tokens: list[str] = []
        lock = threading.Lock()

        def keep(_, __, data):
            token = json.loads(data)["access_token"]
            with lock:
                tokens.append(token)

        took = run(url, list(range(count)), lambda _: ("POST", target(url), body, headers), 200, keep)
        if len(set(tokens)) != count:
            sys.exit(f"fill.py: {len(set(tokens))} distinct tokens of {count}")
        with open(out, "w") as f:
            f.write("\n".join(tokens) + "\n")
        print(f"sent={count} seconds={took:.1f} bytes={sum(map(len, tokens)) // count}")
    elif mode == "verify":
        url, status, tokens_file, extra = argv[2], int(argv[3]), argv[4], argv[5:]
        with open(tokens_file) as f:
            tokens = [line.strip() for line in f if line.strip()]
        base = headers_of(extra)
        took = run(url, tokens,
                   lambda t: ("GET", target(url), None, {**base, "Authorization": "Bearer " + t}),
                   status)
        print(f"sent={len(tokens)} seconds={took:.1f}")
    elif mode == "register":
        url, count = argv[2], int(argv[3])

        def make(i):
            body = json.dumps({"client_name": f"scale client {i}",
                               "redirect_uris": [f"http://127.0.0.1:{1024 + i % 60000}/callback/{i}"],
                               "token_endpoint_auth_method": "none"})
            return "POST", target(url), body, {"Content-Type": "application/json"}

        took = run(url, list(range(count)), make, 201)
        print(f"sent={count} seconds={took:.1f}")
    elif mode == "ready":
        url, starts, cmd = argv[2], int(argv[3]), argv[4:]
        parsed = urllib.parse.urlsplit(url)
        for _ in range(starts):
            started = time.monotonic()
            with open(os.environ.get("FILL_LOG", os.devnull), "ab") as log:
                proc = subprocess.Popen(cmd, stdout=log, stderr=log)
            ready = None
            while ready is None and time.monotonic() - started < 30:
                if proc.poll() is not None:
                    sys.exit(f"fill.py: {cmd[0]} exited with {proc.returncode}")
                try:
                    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=5)
                    conn.request("GET", parsed.path)
                    if conn.getresponse().status == 200:
                        ready = (time.monotonic() - started) * 1000
                    else:
                        time.sleep(0.002)
                    conn.close()
                except OSError:
                    time.sleep(0.002)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            if ready is None:
                sys.exit("fill.py: not ready after 30 s")
            print(f"{ready:.0f}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
