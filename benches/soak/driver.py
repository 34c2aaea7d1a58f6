#!/usr/bin/env python3
"""The soak's load, faults and checks (Python 3.11 standard library only).

    driver.py mcp PORT       the MCP server behind the gateway (JSON-RPC over HTTP POST)
    driver.py run CONFIG     the soak itself; CONFIG is the JSON file benches/soak.sh writes

`run` starts redis-server and the two brokers itself (it stops, kills and restarts
them), drives a concurrent mix of OAuth and MCP traffic over both brokers for the
given time while fault windows open and close on a schedule, then checks what must
have survived and writes a readable report on stdout and a JSON report. Exit status:
0 when every check passed, 1 when one failed, 2 when the rig itself broke.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# --- the MCP server -------------------------------------------------------------------


class McpHandler(BaseHTTPRequestHandler):
    """A stateless MCP server: initialize, tools/list, tools/call (echo), ping."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: bytes | None, content_type="application/json"):
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            message = json.loads(raw)
        except ValueError:
            self._send(400, json.dumps({"jsonrpc": "2.0", "id": None,
                                        "error": {"code": -32700, "message": "parse error"}}).encode())
            return
        batch = isinstance(message, list)
        answers = [a for a in map(self._answer, message if batch else [message]) if a is not None]
        if not answers:
            self._send(202, None)
            return
        self._send(200, json.dumps(answers if batch else answers[0]).encode())

    @staticmethod
    def _answer(message):
        if not isinstance(message, dict) or "id" not in message:
            return None
        method = message.get("method")
        params = message.get("params") or {}
        if method == "initialize":
            result = {"protocolVersion": params.get("protocolVersion", "2025-11-25"),
                      "capabilities": {"tools": {}},
                      "serverInfo": {"name": "soak-mcp", "version": "1"}}
        elif method == "tools/list":
            result = {"tools": [{"name": "echo", "description": "echoes its arguments",
                                 "inputSchema": {"type": "object"}}]}
        elif method == "tools/call" and params.get("name") == "echo":
            text = json.dumps(params.get("arguments") or {}, sort_keys=True)
            result = {"content": [{"type": "text", "text": text}], "isError": False}
        elif method == "ping":
            result = {}
        else:
            return {"jsonrpc": "2.0", "id": message["id"],
                    "error": {"code": -32601, "message": "method not found"}}
        return {"jsonrpc": "2.0", "id": message["id"], "result": result}

    def do_GET(self):
        self._send(405, b'{"error":"stateless server"}')

    do_DELETE = do_GET


def serve_mcp(port: int):
    server = ThreadingHTTPServer(("127.0.0.1", port), McpHandler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"soak MCP server at http://127.0.0.1:{port}/mcp", flush=True)
    server.serve_forever()


# --- HTTP -----------------------------------------------------------------------------

T0 = time.monotonic()


def now() -> float:
    """Seconds since the driver started."""
    return time.monotonic() - T0


@dataclass
class Answer:
    status: int | None  # None: no answer (connection refused, reset, timed out)
    headers: dict
    body: bytes
    error: str = ""

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Http:
    """Keep-alive connections per thread and host. A request on a reused connection
    that fails before any answer (the server closed it while idle, or was killed) is
    sent once more on a fresh one, as browsers and HTTP libraries do."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.local = threading.local()

    def request(self, method: str, url: str, headers=None, body: bytes | str | None = None) -> Answer:
        parts = urllib.parse.urlsplit(url)
        target = parts.path + ("?" + parts.query if parts.query else "")
        conns = self.local.__dict__.setdefault("conns", {})
        if isinstance(body, str):
            body = body.encode()
        for _ in range(2):
            conn = conns.get(parts.netloc)
            reused = conn is not None
            if conn is None:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
                conns[parts.netloc] = conn
            try:
                conn.request(method, target, body=body, headers=headers or {})
                response = conn.getresponse()
                data = response.read()
                got = {k.lower(): v for k, v in response.getheaders()}
                got["set-cookie*"] = response.headers.get_all("Set-Cookie") or []
                if response.will_close:
                    conn.close()
                    conns.pop(parts.netloc, None)
                return Answer(response.status, got, data)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    ConnectionAbortedError) as e:
                conn.close()
                conns.pop(parts.netloc, None)
                if reused:
                    continue
                return Answer(None, {}, b"", f"{type(e).__name__}: {e}")
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conns.pop(parts.netloc, None)
                return Answer(None, {}, b"", f"{type(e).__name__}: {e}")
        return Answer(None, {}, b"", "no answer")


def form(**fields) -> str:
    return urllib.parse.urlencode(fields)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}

# --- the run's records ----------------------------------------------------------------


@dataclass
class Rec:
    op: str
    broker: str
    t0: float
    t1: float
    status: int | None
    retry_after: bool
    error: str  # OAuth error code, or the connection error
    outcome: str  # ok | refused | bad
    why: str = ""


@dataclass
class Window:
    name: str
    kind: str
    start: float
    end: float | None = None
    broker: str | None = None  # the broker a kill window concerns
    note: str = ""


def described(chain, answer) -> str:
    """The client (to find in the brokers' audit log) and the broker's reason."""
    body = answer.json()
    reason = body.get("error_description") if isinstance(body, dict) else None
    return f" [client {chain.client}: {reason or answer.body[:120]!r}]"


@dataclass
class Chain:
    """One login's grant as its client holds it."""
    client: str
    code: str
    verifier: str
    refresh: str
    access: str
    state: str = "live"  # live | revoked (by revoke, code replay or refresh replay)
    code_replayed: bool = False
    # Refresh tokens rotated out, with when the driver saw them rotated (driver time).
    spent: list = field(default_factory=list)
    # A refresh whose answer was lost (503 / no answer): the same token is retried.
    uncertain_since: float | None = None
    revoked_at: float | None = None
    redeemed_at: float = 0.0
    revoked_how: str = ""  # what revoked it, on which broker
    lock: threading.Lock = field(default_factory=threading.Lock)


class Soak:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.http = Http(timeout=cfg.get("http_timeout", 15))
        self.records: list[Rec] = []
        self.windows: list[Window] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.clients: list[str] = []  # acknowledged registrations (201)
        self.chains: list[Chain] = []
        self.counts = {k: 0 for k in (
            "logins", "logins_failed", "codes_lost", "refresh_retries_in_grace",
            "refresh_replays_outside_grace", "revocations", "exchanges", "refreshes",
            "uncertain_refreshes", "uncertain_resolved", "code_replays_revoking", "indeterminate")}
        self.stop = threading.Event()
        self.procs: dict[str, subprocess.Popen] = {}
        self.samples: dict[str, dict] = {}
        self.brokers = {"a": cfg["broker_a"], "b": cfg["broker_b"]}
        self.public = cfg["broker_a"]  # the issuer both replicas answer as
        self.idp = cfg["idp"]

    # --- recording ---------------------------------------------------------------
    def record(self, op, broker, t0, answer: Answer, outcome, why=""):
        error = answer.error
        if answer.status is not None:
            body = answer.json()
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                error = body["error"]
        rec = Rec(op, broker, t0, now(), answer.status, answer.header("retry-after") is not None,
                  error, outcome, why)
        with self.lock:
            self.records.append(rec)
        return rec

    def fail(self, message):
        with self.lock:
            self.failures.append(f"[{now():7.1f}s] {message}")

    def count(self, name, n=1):
        with self.lock:
            self.counts[name] += n

    def refusal(self, answer: Answer) -> bool:
        """A documented refusal of a request the broker could not serve now: 503 (or
        429) with Retry-After, or no answer at all (judged against the windows)."""
        if answer.status is None:
            return True
        return answer.status in (429, 503) and answer.header("retry-after") is not None

    def page_refusal(self, answer: Answer) -> bool:
        """A login step's refusal: the 503 error page (HTML; the browser is told to
        try again shortly), or no answer."""
        return answer.status is None or answer.status == 503

    def call(self, op, broker, method, path, headers=None, body=None, base=None) -> tuple[Answer, float]:
        url = (base or self.brokers[broker]) + path
        t0 = now()
        return self.http.request(method, url, headers, body), t0

    # --- processes -----------------------------------------------------------------
    def start_redis(self):
        cfg = self.cfg
        proc = subprocess.Popen(
            [cfg["redis_server"], "--port", str(cfg["redis_port"]), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--dir", cfg["redis_dir"], "--logfile", os.path.join(cfg["work"], "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs["redis"] = proc
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if redis_ping(cfg["redis_port"]):
                return
            if proc.poll() is not None:
                raise RigError("redis-server exited")
            time.sleep(0.05)
        raise RigError("redis-server did not answer PING")

    def start_broker(self, name):
        cfg = self.cfg
        out = open(os.path.join(cfg["work"], f"broker-{name}.log"), "ab")
        proc = subprocess.Popen([cfg["bin"], "serve", "--config", cfg[f"config_{name}"]],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        out.close()
        self.procs[name] = proc
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RigError(f"broker {name} exited (see {cfg['work']}/broker-{name}.log)")
            answer = Http(2).request("GET", self.brokers[name] + "/readyz")
            if answer.status == 200:
                return
            time.sleep(0.1)
        raise RigError(f"broker {name} not ready after 60 s")

    def stop_all(self):
        for name, proc in list(self.procs.items()):
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGCONT)
                    proc.terminate()
                except ProcessLookupError:
                    pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def sample(self, label):
        for name in ("a", "b"):
            pid = self.procs[name].pid
            self.samples.setdefault(name, {})[label] = {"pid": pid, **proc_usage(pid)}

    # --- faults --------------------------------------------------------------------
    def idp_control(self, path, body=None):
        answer = self.http.request("POST", self.idp + "/_dev/" + path,
                                   {"Content-Type": "application/json"},
                                   json.dumps(body) if body is not None else b"")
        if answer.status not in (200, 204):
            raise RigError(f"dev IdP /_dev/{path}: {answer.status} {answer.body[:200]!r}")

    def open_window(self, name, kind, broker=None, note=""):
        w = Window(name, kind, now(), broker=broker, note=note)
        with self.lock:
            self.windows.append(w)
        log(f"fault {name}: start ({note})")
        return w

    def close_window(self, w):
        w.end = now()
        log(f"fault {w.name}: end after {w.end - w.start:.1f}s")

    def fault(self, kind, length):
        """Runs one fault for about `length` seconds."""
        if kind == "redis_pause":
            w = self.open_window(kind, kind, note=f"redis-server SIGSTOP for {length:.0f}s, then SIGCONT")
            self.procs["redis"].send_signal(signal.SIGSTOP)
            self.stop.wait(length)
            self.procs["redis"].send_signal(signal.SIGCONT)
            self.close_window(w)
        elif kind == "redis_kill":
            w = self.open_window(kind, kind, note=f"redis-server SIGKILL, restarted {length:.0f}s later "
                                                  "on the same port (AOF, appendfsync always)")
            self.procs["redis"].kill()
            self.procs["redis"].wait()
            self.stop.wait(length)
            self.start_redis()
            self.close_window(w)
        elif kind == "idp_slow":
            w = self.open_window(kind, kind, note="dev IdP token endpoint +800 ms")
            self.idp_control("faults", {"endpoint": "token", "latency_ms": 800})
            self.stop.wait(length)
            self.idp_control("reset")
            self.close_window(w)
        elif kind == "idp_5xx":
            w = self.open_window(kind, kind, note="dev IdP token endpoint 503 Retry-After: 2")
            self.idp_control("faults", {"endpoint": "token", "status": 503, "count": 1000000,
                                        "retry_after": "2"})
            self.stop.wait(length)
            self.idp_control("reset")
            self.close_window(w)
        elif kind == "idp_429":
            w = self.open_window(kind, kind, note="dev IdP token endpoint 429 Retry-After: 3")
            self.idp_control("faults", {"endpoint": "token", "status": 429, "count": 1000000,
                                        "retry_after": "3"})
            self.stop.wait(length)
            self.idp_control("reset")
            self.close_window(w)
        elif kind == "idp_timeout":
            ms = int(self.cfg["upstream_timeout_s"] * 1000 + 1500)
            w = self.open_window(kind, kind, note=f"dev IdP token endpoint +{ms} ms "
                                                  f"(upstream.timeout {self.cfg['upstream_timeout_s']}s)")
            self.idp_control("faults", {"endpoint": "token", "latency_ms": ms})
            self.stop.wait(length)
            self.idp_control("reset")
            # Requests the IdP still holds finish within `ms`: the window lasts until then.
            self.stop.wait(ms / 1000)
            self.close_window(w)
        elif kind == "broker_kill":
            w = self.open_window(kind, kind, broker="b",
                                 note=f"broker b SIGKILL, restarted after {length:.0f}s")
            self.procs["b"].kill()
            self.procs["b"].wait()
            self.stop.wait(length)
            self.start_broker("b")
            self.close_window(w)
        else:
            raise RigError(f"unknown fault {kind}")

    # --- the operations --------------------------------------------------------------
    def pick(self):
        return random.choice(("a", "b"))

    def register(self, name_hint="soak") -> str | None:
        broker = self.pick()
        body = json.dumps({
            "client_name": f"{name_hint} {secrets.token_hex(6)}",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        })
        answer, t0 = self.call("register", broker, "POST", "/oauth/register",
                               {"Content-Type": "application/json"}, body)
        data = answer.json() if answer.status == 201 else None
        if answer.status == 201 and isinstance(data, dict) and data.get("client_id"):
            self.record("register", broker, t0, answer, "ok")
            with self.lock:
                self.clients.append(data["client_id"])
            return data["client_id"]
        if self.refusal(answer):
            self.record("register", broker, t0, answer, "refused")
        else:
            self.record("register", broker, t0, answer, "bad", f"registration answered {answer.status}")
        return None

    def login(self):
        """register → authorize → consent → dev IdP → callback → token, each step on
        either broker, as a browser and a client would."""
        client = self.register("login")
        if client is None:
            return
        verifier = secrets.token_urlsafe(48)
        challenge = b64url(hashlib.sha256(verifier.encode()).digest())
        state = secrets.token_urlsafe(12)
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": client, "redirect_uri": REDIRECT,
            "code_challenge": challenge, "code_challenge_method": "S256", "state": state,
            "scope": "notes:read", "resource": self.public + "/mcp"})
        ok = self._login_steps(client, query, state, verifier)
        self.count("logins" if ok else "logins_failed")

    def _step(self, op, broker, answer, t0, expected, page=True):
        """The step's record when it got an expected status, else False."""
        if answer.status in expected:
            return self.record(op, broker, t0, answer, "ok")
        refused = self.page_refusal(answer) if page else self.refusal(answer)
        if refused:
            self.record(op, broker, t0, answer, "refused")
        else:
            self.record(op, broker, t0, answer, "bad",
                        f"{op} answered {answer.status}: {answer.body[:160]!r}")
        return False

    def _login_steps(self, client, query, state, verifier) -> bool:
        b = self.pick()
        answer, t0 = self.call("authorize", b, "GET", "/oauth/authorize?" + query)
        if not self._step("authorize", b, answer, t0, (200,)):
            return False
        page = answer.body.decode(errors="replace")
        session, csrf = hidden(page, "session"), hidden(page, "csrf")
        cookie = next((c.split(";")[0] for c in answer.header("set-cookie*")
                       if c.startswith("tb_login_")), None)
        if not (session and csrf and cookie):
            self.fail(f"authorize: a 200 without the consent form or its cookie: {page[:200]!r}")
            return False
        b = self.pick()
        answer, t0 = self.call("consent", b, "POST", "/oauth/consent", {**FORM, "Cookie": cookie},
                               form(session=session, csrf=csrf, decision="approve"))
        if not self._step("consent", b, answer, t0, (303,)):
            return False
        upstream = answer.header("location") or ""
        if not upstream.startswith(self.idp + "/authorize"):
            self.record("consent", b, t0, answer, "bad", f"consent sent the browser to {upstream[:120]}")
            return False
        answer = self.http.request("GET", upstream)
        if answer.status != 302:
            self.fail(f"dev IdP /authorize answered {answer.status}")
            return False
        callback = answer.header("location") or ""
        if not callback.startswith(self.public + "/oauth/callback"):
            self.fail(f"dev IdP sent the browser to {callback[:120]}")
            return False
        b = self.pick()
        path = callback[len(self.public):]
        answer, t0 = self.call("callback", b, "GET", path, {"Cookie": cookie})
        rec = self._step("callback", b, answer, t0, (303,))
        if not rec:
            return False
        back = urllib.parse.urlsplit(answer.header("location") or "")
        params = dict(urllib.parse.parse_qsl(back.query))
        if params.get("state") != state or params.get("iss") != self.public or "code" not in params:
            # RFC 6749 §4.1.2.1: the provider or the store cannot be used now.
            if params.get("error") == "temporarily_unavailable":
                rec.outcome = "refused"
                return False
            rec.outcome = "bad"
            rec.why = f"callback redirected to {answer.header('location')!r}"
            return False
        code = params["code"]
        return self.redeem(client, code, verifier)

    def redeem(self, client, code, verifier) -> bool:
        body = form(grant_type="authorization_code", client_id=client, code=code,
                    redirect_uri=REDIRECT, code_verifier=verifier)
        lost_answer = False
        deadline = now() + 60
        while not self.stop.is_set():
            b = self.pick()
            answer, t0 = self.call("token_code", b, "POST", "/oauth/token", FORM, body)
            data = answer.json() if answer.status == 200 else None
            if isinstance(data, dict) and data.get("refresh_token") and data.get("access_token"):
                self.record("token_code", b, t0, answer, "ok")
                with self.lock:
                    self.chains.append(Chain(client, code, verifier, data["refresh_token"], data["access_token"],
                                              redeemed_at=now()))
                return True
            if self.refusal(answer):
                self.record("token_code", b, t0, answer, "refused")
                lost_answer = True
                if now() > deadline:
                    return False
                self.stop.wait(1.0)
                continue
            if answer.status == 400 and answer.json() and answer.json().get("error") == "invalid_grant" \
                    and lost_answer:
                # The code was redeemed by a request whose answer was lost: a one-time
                # code, as it should be; this login is lost, nothing acknowledged was.
                self.record("token_code", b, t0, answer, "refused", "code spent by a lost answer")
                self.count("codes_lost")
                return False
            self.record("token_code", b, t0, answer, "bad",
                        f"code redemption answered {answer.status}: {answer.body[:160]!r}")
            return False
        return False

    def take_chain(self, want=lambda c: True) -> Chain | None:
        with self.lock:
            live = [c for c in self.chains if c.state == "live"]
        random.shuffle(live)
        for chain in live[:20]:
            if want(chain) and chain.lock.acquire(blocking=False):
                if chain.state == "live":
                    return chain
                chain.lock.release()
        return None

    def refresh_once(self, chain: Chain, token: str, op="refresh") -> tuple[str, Answer]:
        """One presentation of `token`: ('ok', answer) with the chain updated,
        ('refused', answer), or ('bad'|'invalid', answer)."""
        b = self.pick()
        answer, t0 = self.call(op, b, "POST", "/oauth/token", FORM,
                               form(grant_type="refresh_token", client_id=chain.client, refresh_token=token))
        data = answer.json() if answer.status == 200 else None
        if isinstance(data, dict) and data.get("refresh_token") and data.get("access_token"):
            self.record(op, b, t0, answer, "ok")
            return "ok", answer
        if self.refusal(answer):
            self.record(op, b, t0, answer, "refused")
            return "refused", answer
        if answer.status == 400 and isinstance(answer.json(), dict) \
                and answer.json().get("error") == "invalid_grant":
            return "invalid", (answer, b, t0)
        self.record(op, b, t0, answer, "bad", f"refresh answered {answer.status}: {answer.body[:160]!r}")
        return "bad", answer

    def adopt(self, chain: Chain, answer: Answer, presented: str):
        data = answer.json()
        if presented == chain.refresh:
            chain.spent.append((chain.refresh, now()))
        chain.refresh, chain.access = data["refresh_token"], data["access_token"]

    def refresh(self):
        chain = self.take_chain()
        if chain is None:
            return
        try:
            kind, answer = self.refresh_once(chain, chain.refresh)
            if kind == "ok":
                if chain.uncertain_since is not None:
                    self.count("uncertain_resolved")
                chain.uncertain_since = None
                self.adopt(chain, answer, chain.refresh)
                self.count("refreshes")
            elif kind == "refused":
                # The answer is lost; the token may or may not have been rotated. A
                # client keeps it and presents it again (within refresh.reuse_grace,
                # a retry; the broker must not make this a replay).
                if chain.uncertain_since is None:
                    chain.uncertain_since = now()
                    self.count("uncertain_refreshes")
            elif kind == "invalid":
                answer, b, t0 = answer
                self.record("refresh", b, t0, answer, "bad",
                            f"the newest refresh token of a live grant was refused (invalid_grant; "
                            f"an answer was lost {now() - chain.uncertain_since:.1f}s ago)"
                            if chain.uncertain_since is not None else
                            "the newest refresh token of a live grant was refused (invalid_grant)"
                            + described(chain, answer))
                chain.state = "lost"
        finally:
            chain.lock.release()

    def refresh_retry_in_grace(self):
        """A client that lost the answer: the same token again at once (inside the
        grace, its successor unused) gets a new pair; the chain goes on from it."""
        chain = self.take_chain(lambda c: c.uncertain_since is None)
        if chain is None:
            return
        try:
            first = chain.refresh
            kind, answer = self.refresh_once(chain, first)
            if kind != "ok":
                if kind == "refused":
                    chain.uncertain_since = now()
                    self.count("uncertain_refreshes")
                elif kind == "invalid":
                    answer, b, t0 = answer
                    self.record("refresh", b, t0, answer, "bad",
                                "a live grant's refresh token refused" + described(chain, answer))
                    chain.state = "lost"
                return
            self.adopt(chain, answer, first)
            kind, again = self.refresh_once(chain, first, op="refresh_retry")
            if kind == "ok":
                chain.refresh, chain.access = again.json()["refresh_token"], again.json()["access_token"]
                self.count("refresh_retries_in_grace")
            elif kind == "refused":
                # The retry may have superseded the pair the first answer gave (then
                # presenting that pair ends the grant, as for a thief's retry), or not:
                # this client is both the one that lost an answer and the one that did
                # not, and no answer is right for both.
                self.indeterminate(chain)
            elif kind == "invalid":
                answer, b, t0 = again
                self.record("refresh_retry", b, t0, answer, "bad",
                            "a retry inside refresh.reuse_grace was taken for a replay"
                            + described(chain, answer))
                chain.state = "lost"
        finally:
            chain.lock.release()

    def refresh_replay_outside_grace(self):
        """A spent token presented again long after its rotation: a theft signal. The
        whole grant must be revoked: the replay and the newest token refused, the
        access token no longer accepted."""
        grace = self.cfg["reuse_grace_s"]
        chain = self.take_chain(lambda c: c.uncertain_since is None and c.spent
                                and now() - c.spent[-1][1] > grace + 3)
        if chain is None:
            return
        try:
            old = chain.spent[-1][0]
            kind, answer = self.refresh_once(chain, old, op="refresh_replay")
            if kind == "invalid":
                answer, b, t0 = answer
                self.record("refresh_replay", b, t0, answer, "ok")
                chain.state = "revoked"
                chain.revoked_at = now()
                chain.revoked_how = f"a refresh token replayed outside the grace on broker {b}"
                self.count("refresh_replays_outside_grace")
            elif kind == "ok":
                self.fail("a refresh token rotated out long ago was accepted again (outside the grace)")
            elif kind == "refused":
                self.indeterminate(chain)
        finally:
            chain.lock.release()

    def code_replay(self):
        """A spent code presented again by its client: invalid_grant, and what it
        issued is revoked — while the broker still knows the code (sessions.code_ttl);
        past that, it is an unknown code, invalid_grant as well, the grant left alone.
        Codes near that edge are left out: either answer would be right."""
        ttl = self.cfg["code_ttl_s"]
        chain = self.take_chain(lambda c: c.uncertain_since is None and not c.code_replayed
                                and not ttl - 10 <= now() - c.redeemed_at <= ttl + 5)
        if chain is None:
            return
        try:
            b = self.pick()
            answer, t0 = self.call("code_replay", b, "POST", "/oauth/token", FORM,
                                   form(grant_type="authorization_code", client_id=chain.client,
                                        code=chain.code, redirect_uri=REDIRECT, code_verifier=chain.verifier))
            if answer.status == 400 and (answer.json() or {}).get("error") == "invalid_grant":
                self.record("code_replay", b, t0, answer, "ok")
                chain.code_replayed = True
                # The broker remembers a spent code until it would have expired
                # (sessions.code_ttl): only a replay before then revokes the grant.
                if t0 - chain.redeemed_at < self.cfg["code_ttl_s"] - 10:
                    chain.state = "revoked"
                    chain.revoked_at = now()
                    chain.revoked_how = f"its code replayed on broker {b}"
            elif self.refusal(answer):
                self.record("code_replay", b, t0, answer, "refused")
                self.indeterminate(chain)
            else:
                self.record("code_replay", b, t0, answer, "bad",
                            f"a spent code presented again got {answer.status}: {answer.body[:120]!r}")
                chain.code_replayed = True
        finally:
            chain.lock.release()

    def indeterminate(self, chain: Chain):
        """A request that may revoke the grant (a revocation, a code or refresh-token
        replay) got no answer or a 503: it may have taken effect (the replica died after
        doing it; Redis ran the call after the broker gave up) or not. Either is right,
        so the grant is left out of the final checks, and counted."""
        chain.state = "indeterminate"
        self.count("indeterminate")

    def revoke(self):
        chain = self.take_chain(lambda c: c.uncertain_since is None)
        if chain is None:
            return
        try:
            b = self.pick()
            token = chain.refresh if random.random() < 0.7 else chain.access
            answer, t0 = self.call("revoke", b, "POST", "/oauth/revoke", FORM,
                                   form(client_id=chain.client, token=token))
            if answer.status == 200:
                self.record("revoke", b, t0, answer, "ok")
                chain.state = "revoked"
                chain.revoked_at = now()
                kind = "refresh" if token == chain.refresh else "access"
                chain.revoked_how = f"RFC 7009 revocation of its {kind} token on broker {b}"
                self.count("revocations")
            elif self.refusal(answer):
                self.record("revoke", b, t0, answer, "refused")
                self.indeterminate(chain)
            else:
                self.record("revoke", b, t0, answer, "bad", f"revocation answered {answer.status}")
        finally:
            chain.lock.release()

    def verify(self):
        chain = self.take_chain()
        if chain is None:
            return
        try:
            b = self.pick()
            answer, t0 = self.call("verify", b, "GET", "/auth/verify",
                                   {"Authorization": "Bearer " + chain.access, "X-Original-URI": "/mcp"})
            if answer.status == 200:
                self.record("verify", b, t0, answer, "ok")
            elif self.refusal(answer):
                self.record("verify", b, t0, answer, "refused")
            else:
                self.record("verify", b, t0, answer, "bad",
                            f"a live grant's access token got {answer.status} at /auth/verify")
        finally:
            chain.lock.release()

    def gateway(self):
        chain = self.take_chain()
        if chain is None:
            return
        try:
            b = self.pick()
            n = random.randrange(1 << 30)
            body = json.dumps({"jsonrpc": "2.0", "id": n, "method": "tools/call",
                               "params": {"name": "echo", "arguments": {"n": n}}})
            answer, t0 = self.call("gateway", b, "POST", "/mcp", {
                "Authorization": "Bearer " + chain.access, "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": "2025-11-25"}, body)
            data = answer.json() if answer.status == 200 else None
            if isinstance(data, dict) and data.get("id") == n and \
                    (data.get("result") or {}).get("content", [{}])[0].get("text") == json.dumps({"n": n}):
                self.record("gateway", b, t0, answer, "ok")
            elif self.refusal(answer):
                self.record("gateway", b, t0, answer, "refused")
            else:
                self.record("gateway", b, t0, answer, "bad",
                            f"tools/call through the gateway answered {answer.status}: {answer.body[:160]!r}")
        finally:
            chain.lock.release()

    def exchange(self):
        chain = self.take_chain()
        if chain is None:
            return
        try:
            b = self.pick()
            caller = self.cfg["caller"]
            basic = base64.b64encode(f"{caller[0]}:{caller[1]}".encode()).decode()
            answer, t0 = self.call("exchange", b, "POST", "/oauth/token",
                                   {**FORM, "Authorization": "Basic " + basic},
                                   form(grant_type="urn:ietf:params:oauth:grant-type:token-exchange",
                                        subject_token=chain.access,
                                        subject_token_type="urn:ietf:params:oauth:token-type:access_token",
                                        audience=self.cfg["audience"]))
            data = answer.json() if answer.status == 200 else None
            if isinstance(data, dict) and data.get("access_token") and data["access_token"] != chain.access:
                self.record("exchange", b, t0, answer, "ok")
                self.count("exchanges")
            elif self.refusal(answer):
                self.record("exchange", b, t0, answer, "refused")
            else:
                self.record("exchange", b, t0, answer, "bad",
                            f"token exchange answered {answer.status}: {answer.body[:160]!r}")
        finally:
            chain.lock.release()

    def settle_uncertain(self):
        """A chain whose last refresh answer was lost: its client presents the same
        token again (the one it holds); the broker must answer it with a new pair."""
        chain = self.take_chain(lambda c: c.uncertain_since is not None)
        if chain is None:
            return
        try:
            kind, answer = self.refresh_once(chain, chain.refresh)
            if kind == "ok":
                self.count("uncertain_resolved")
                chain.uncertain_since = None
                self.adopt(chain, answer, chain.refresh)
            elif kind == "invalid":
                answer, b, t0 = answer
                self.record("refresh", b, t0, answer, "bad",
                            f"a refresh token whose answer was lost {now() - chain.uncertain_since:.1f}s "
                            "earlier was refused when presented again (invalid_grant): the grant is lost"
                            + described(chain, answer))
                chain.state = "lost"
        finally:
            chain.lock.release()

    OPS = (("verify", 26), ("gateway", 16), ("refresh", 16), ("exchange", 10), ("login", 9),
           ("register", 4), ("refresh_retry_in_grace", 3), ("refresh_replay_outside_grace", 2),
           ("revoke", 2), ("code_replay", 1), ("settle_uncertain", 6))

    def worker(self, seed):
        rng_ops = [name for name, weight in self.OPS for _ in range(weight)]
        random.seed(seed)
        while not self.stop.is_set():
            op = random.choice(rng_ops)
            try:
                getattr(self, op)()
            except RigError:
                raise
            except Exception as e:  # a driver bug must not hang the run
                self.fail(f"driver error in {op}: {type(e).__name__}: {e}")
                time.sleep(0.5)
            if self.cfg.get("pace_ms"):
                time.sleep(self.cfg["pace_ms"] / 1000)

    # --- the run ---------------------------------------------------------------------
    def schedule(self, duration):
        """Fault windows one after the other after the warm-up, equal calm gaps between
        them for recovery, and calm time at the end. Redis is paused for longer than
        refresh.reuse_grace, so that a refresh whose answer it cut off is presented
        again after the grace."""
        long = duration >= 300
        grace = self.cfg["reuse_grace_s"]
        lengths = {"redis_pause": max(grace + 4, 20 if long else 0),
                   "idp_slow": 25 if long else 4, "idp_5xx": 20 if long else 4,
                   "broker_kill": 5 if long else 2, "idp_429": 20 if long else 4,
                   "idp_timeout": 20 if long else 4, "redis_kill": 5 if long else 2}
        extra = self.cfg["upstream_timeout_s"] + 1.5  # the timeout window's tail
        kinds = list(lengths)
        free = duration - self.cfg["warmup_s"] - self.cfg["tail_s"] - sum(lengths.values()) - extra
        gap = free / len(kinds)
        if gap < 3:
            raise RigError(f"{duration}s is too short for the fault schedule")
        plan, at = [], self.cfg["warmup_s"]
        for kind in kinds:
            plan.append((at, kind, lengths[kind]))
            at += lengths[kind] + gap + (extra if kind == "idp_timeout" else 0)
        return plan

    def run(self):
        cfg = self.cfg
        duration = cfg["duration_s"]
        self.start_redis()
        self.start_broker("a")
        self.start_broker("b")
        log(f"redis 127.0.0.1:{cfg['redis_port']}, brokers {self.brokers['a']} and {self.brokers['b']}, "
            f"dev IdP {self.idp}, MCP server {cfg['mcp']}; {cfg['threads']} client threads, {duration}s")
        plan = self.schedule(duration)
        threads = [threading.Thread(target=self.worker, args=(i,), daemon=True)
                   for i in range(cfg["threads"])]
        started = now()
        for t in threads:
            t.start()
        sampled = False
        for at, kind, length in plan:
            while now() - started < at and not self.stop.is_set():
                time.sleep(0.1)
                if not sampled and now() - started >= cfg["warmup_s"] * 0.9:
                    self.sample("start")
                    sampled = True
            if not sampled:
                self.sample("start")
                sampled = True
            if kind == "broker_kill":
                self.sample("b_before_kill")
            self.fault(kind, length)
            if kind == "broker_kill":
                self.samples["b"]["restarted"] = {"pid": self.procs["b"].pid}
        while now() - started < duration:
            time.sleep(0.1)
        self.stop.set()
        for t in threads:
            t.join(timeout=cfg.get("http_timeout", 15) + 70)
        load_end = now()
        self.sample("end")
        log(f"load stopped after {load_end - started:.0f}s; final checks")
        final = self.final_checks()
        return self.report(started, load_end, final)

    # --- the final checks ------------------------------------------------------------
    def parallel(self, items, fn, threads=8):
        items = list(items)
        results = [None] * len(items)
        index = iter(range(len(items)))
        lock = threading.Lock()

        def work():
            while True:
                with lock:
                    i = next(index, None)
                if i is None:
                    return
                results[i] = fn(items[i])

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return results

    def final_checks(self):
        out = {}
        http_ = self.http

        # Every acknowledged client is still known: its authorization request gets the
        # consent page (an unknown client gets an error page).
        def client_known(client):
            b = random.choice(("a", "b"))
            query = urllib.parse.urlencode({
                "response_type": "code", "client_id": client, "redirect_uri": REDIRECT,
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256", "state": "final", "scope": "notes:read"})
            answer = http_.request("GET", self.brokers[b] + "/oauth/authorize?" + query)
            return answer.status == 200 and b'name="csrf"' in answer.body

        known = self.parallel(self.clients, client_known)
        lost_clients = [c for c, ok in zip(self.clients, known) if not ok]
        out["clients"] = {"acknowledged": len(self.clients), "lost": len(lost_clients)}
        for c in lost_clients[:10]:
            self.fail(f"final: acknowledged client {c} is unknown")

        # Live grants: the newest access token verifies on both brokers, the newest
        # refresh token refreshes, the new access token verifies.
        live = [c for c in self.chains if c.state == "live"]

        def live_ok(chain: Chain):
            for b in ("a", "b"):
                answer = http_.request("GET", self.brokers[b] + "/auth/verify",
                                       {"Authorization": "Bearer " + chain.access, "X-Original-URI": "/mcp"})
                if answer.status != 200:
                    return f"its access token got {answer.status} on broker {b}"
            b = random.choice(("a", "b"))
            answer = http_.request("POST", self.brokers[b] + "/oauth/token", FORM,
                                   form(grant_type="refresh_token", client_id=chain.client,
                                        refresh_token=chain.refresh))
            data = answer.json() if answer.status == 200 else None
            if not (isinstance(data, dict) and data.get("access_token")):
                return (f"its newest refresh token got {answer.status} {answer.body[:120]!r}"
                        + (f" (an answer was lost {now() - chain.uncertain_since:.0f}s earlier)"
                           if chain.uncertain_since is not None else ""))
            chain.spent.append((chain.refresh, now()))
            chain.refresh, chain.access = data["refresh_token"], data["access_token"]
            answer = http_.request("GET", self.brokers["b" if b == "a" else "a"] + "/auth/verify",
                                   {"Authorization": "Bearer " + chain.access, "X-Original-URI": "/mcp"})
            if answer.status != 200:
                return f"the refreshed access token got {answer.status} on the other broker"
            return None

        problems = self.parallel(live, live_ok)
        lost = [(c, p) for c, p in zip(live, problems) if p]
        during = [c for c in self.chains if c.state == "lost"]
        out["grants"] = {"logins": len(self.chains), "live_at_end": len(live), "live_lost_at_end": len(lost),
                         "lost_during_run": len(during),
                         "revoked": sum(c.state == "revoked" for c in self.chains)}
        for c, p in lost[:10]:
            self.fail(f"final: the live grant of client {c.client}: {p}")
        if len(lost) > 10:
            self.fail(f"final: {len(lost) - 10} more live grants lost")

        # Revoked grants stay revoked: access token refused, refresh token refused.
        revoked = [c for c in self.chains if c.state == "revoked"]

        def revoked_ok(chain: Chain):
            b = random.choice(("a", "b"))
            answer = http_.request("GET", self.brokers[b] + "/auth/verify",
                                   {"Authorization": "Bearer " + chain.access, "X-Original-URI": "/mcp"})
            if answer.status != 401:
                return (f"a grant revoked at {chain.revoked_at:.1f}s by {chain.revoked_how}: its access "
                        f"token got {answer.status} on broker {b}")
            answer = http_.request("POST", self.brokers[b] + "/oauth/token", FORM,
                                   form(grant_type="refresh_token", client_id=chain.client,
                                        refresh_token=chain.refresh))
            if answer.status != 400:
                return f"a revoked grant's refresh token got {answer.status}"
            return None

        problems = self.parallel(revoked, revoked_ok)
        bad = [p for p in problems if p]
        out["revoked_checked"] = {"grants": len(revoked), "still_working": len(bad)}
        for p in bad[:10]:
            self.fail(f"final: {p}")

        # Every code not yet replayed, replayed once now by the client it was issued
        # to, with its redirect URI and verifier: invalid_grant; and the grant it
        # issued is revoked (RFC 6749 §4.1.2): its refresh token no longer works.
        pending = [c for c in self.chains if not c.code_replayed]

        def replay(chain: Chain):
            b = random.choice(("a", "b"))
            answer = http_.request("POST", self.brokers[b] + "/oauth/token", FORM,
                                   form(grant_type="authorization_code", client_id=chain.client,
                                        code=chain.code, redirect_uri=REDIRECT,
                                        code_verifier=chain.verifier))
            if answer.status != 400 or (answer.json() or {}).get("error") != "invalid_grant":
                return f"a spent code presented again got {answer.status} {answer.body[:120]!r}"
            chain.code_replayed = True
            # The broker remembers a spent code until it would have expired
            # (sessions.code_ttl): only a replay before then can revoke its grant.
            if now() - chain.redeemed_at > self.cfg["code_ttl_s"] - 10 or chain.state != "live":
                return None
            self.count("code_replays_revoking")
            answer = http_.request("POST", self.brokers[b] + "/oauth/token", FORM,
                                   form(grant_type="refresh_token", client_id=chain.client,
                                        refresh_token=chain.refresh))
            if answer.status != 400:
                return f"after its code's replay the grant's refresh token got {answer.status}"
            return None

        problems = self.parallel(pending, replay)
        bad = [p for p in problems if p]
        out["codes_replayed"] = {"codes": len(self.chains), "at_the_end": len(pending),
                                 "during_the_run": len(self.chains) - len(pending), "accepted": len(bad)}
        for p in bad[:10]:
            self.fail(f"final: {p}")
        return out

    # --- the report ------------------------------------------------------------------
    def report(self, started, load_end, final):
        cfg = self.cfg
        settle = cfg["settle_s"]
        windows = [w for w in self.windows if w.end is not None]
        recs = self.records

        def in_window(r: Rec):
            for w in windows:
                if r.t1 >= w.start and r.t0 <= w.end + settle:
                    if w.kind == "broker_kill" and r.status is None and r.broker != w.broker:
                        continue
                    return w
            return None

        # Checks over every record.
        for r in recs:
            if r.outcome == "bad":
                self.fail(f"{r.op} on broker {r.broker} at {r.t0:.1f}s: {r.why}")
            if r.status is not None and r.status >= 500 and r.status != 503:
                self.fail(f"{r.op} on broker {r.broker} at {r.t0:.1f}s answered {r.status}")
            if r.status == 503 and not r.retry_after and r.op not in ("authorize", "consent", "callback"):
                self.fail(f"{r.op} on broker {r.broker} at {r.t0:.1f}s: 503 without Retry-After")
            if r.outcome == "refused" and in_window(r) is None:
                what = r.status if r.status is not None else r.error
                self.fail(f"{r.op} on broker {r.broker} at {r.t0:.1f}s refused outside every fault "
                          f"window (+{settle}s): {what} {r.error if r.status else ''}")

        # Per-window: refusals, settle (the last refusal after the end) and recovery (the
        # first success of each operation after the end).
        ops = sorted({r.op for r in recs})
        wrep = []
        for i, w in enumerate(windows):
            nxt = windows[i + 1].start if i + 1 < len(windows) else load_end
            inside = [r for r in recs if r.t1 >= w.start and r.t0 <= w.end]
            refused = [r for r in inside if r.outcome == "refused"]
            after = [r for r in recs if w.end < r.t0 < nxt]
            late = [r.t1 - w.end for r in after if r.outcome == "refused" and r.t1 < nxt]
            recovery = {}
            for op in ops:
                first = min((r.t1 for r in after if r.op == op and r.outcome == "ok"), default=None)
                recovery[op] = None if first is None else round(first - w.end, 2)
            statuses = {}
            for r in refused:
                key = str(r.status) if r.status is not None else "no answer"
                statuses[key] = statuses.get(key, 0) + 1
            wrep.append({"name": w.name, "note": w.note, "start_s": round(w.start - started, 1),
                         "end_s": round(w.end - started, 1), "length_s": round(w.end - w.start, 1),
                         "requests": len(inside), "refused": len(refused), "refused_by_status": statuses,
                         "ok": sum(r.outcome == "ok" for r in inside),
                         "last_refusal_after_end_s": round(max(late), 2) if late else None,
                         "recovery_s": recovery})
            for op, t in recovery.items():
                if t is None and sum(1 for r in after if r.op == op) >= 3:
                    self.fail(f"after {w.name}: {op} never succeeded again before the next window")

        # Latency per operation.
        latency = {}
        for op in ops:
            rs = [r for r in recs if r.op == op]
            oks = sorted((r.t1 - r.t0) * 1000 for r in rs if r.outcome == "ok")
            latency[op] = {"requests": len(rs), "ok": len(oks),
                           "refused": sum(r.outcome == "refused" for r in rs),
                           "bad": sum(r.outcome == "bad" for r in rs),
                           "p50_ms": pct(oks, 50), "p99_ms": pct(oks, 99), "max_ms": pct(oks, 100)}

        # Memory and descriptors.
        usage = {}
        bound = cfg["rss_growth_mb"]
        fd_bound = cfg["fd_growth"]
        for name in ("a", "b"):
            s = self.samples.get(name, {})
            start, end = s.get("start"), s.get("end")
            usage[name] = {k: v for k, v in s.items()}
            if start and end and start.get("rss_kb") and end.get("rss_kb"):
                grow = (end["rss_kb"] - start["rss_kb"]) / 1024
                usage[name]["rss_growth_mb"] = round(grow, 1)
                fds = end["fds"] - start["fds"]
                usage[name]["fd_growth"] = fds
                if grow > bound:
                    self.fail(f"broker {name}: RSS grew {grow:.1f} MB (bound {bound} MB)")
                if fds > fd_bound:
                    self.fail(f"broker {name}: {fds} more open descriptors at the end (bound {fd_bound})")

        result = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - (now() - started))),
            "duration_s": round(load_end - started, 1), "threads": cfg["threads"], "settle_s": settle,
            "binary": cfg["bin"], "build": cfg.get("build_line", ""), "machine": machine(),
            "windows": wrep, "latency": latency, "counts": self.counts, "final": final,
            "usage": usage, "bounds": {"rss_growth_mb": bound, "fd_growth": fd_bound},
            "failures": self.failures, "passed": not self.failures,
        }
        return result


# --- helpers --------------------------------------------------------------------------

REDIRECT = "http://127.0.0.1:4711/callback"


class RigError(Exception):
    """The rig itself broke (a process would not start): not a finding about the broker."""


def log(message):
    print(f"[soak {now():7.1f}s] {message}", file=sys.stderr, flush=True)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hidden(page: str, name: str) -> str | None:
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), page)
    return m.group(1) if m else None


def pct(values, p):
    if not values:
        return None
    k = min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))
    return round(values[k], 1)


def redis_ping(port) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(7) == b"+PONG\r\n"
    except OSError:
        return False


def proc_usage(pid) -> dict:
    try:
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        rss = int(status["VmRSS"].split()[0])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return {"rss_kb": rss, "fds": fds, "cpu_s": round(ticks / os.sysconf("SC_CLK_TCK"), 1)}
    except (OSError, KeyError, ValueError, IndexError):
        return {}


def machine() -> dict:
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return {"cores": os.cpu_count(), "loadavg_end": load}


def render(r: dict) -> str:
    lines = []
    add = lines.append
    add(f"token-broker soak — {r['started']}, {r['duration_s']}s, {r['threads']} client threads")
    add(f"binary: {r['binary']} {r['build']}")
    add(f"machine: {r['machine']['cores']} cores, load average at end {' '.join(r['machine']['loadavg_end'])}"
        + (f"; during the run {r['load_during']}" if r.get("load_during") else ""))
    add("")
    add("fault windows (seconds from the start; refusals inside; settle = last refusal after the end):")
    add(f"  {'window':<12} {'start':>6} {'len':>5} {'reqs':>6} {'refused':>8}  {'by status':<28} {'settle':>7}")
    for w in r["windows"]:
        by = ", ".join(f"{k}:{v}" for k, v in sorted(w["refused_by_status"].items())) or "-"
        settle = "-" if w["last_refusal_after_end_s"] is None else f"{w['last_refusal_after_end_s']:.1f}s"
        add(f"  {w['name']:<12} {w['start_s']:>6.1f} {w['length_s']:>5.1f} {w['requests']:>6} {w['refused']:>8}  "
            f"{by:<28} {settle:>7}")
        add(f"      {w['note']}")
    ops = list(r["latency"])
    add("")
    add("recovery: seconds from a window's end to the first success of each operation after it")
    names = [w["name"] for w in r["windows"]]
    add("  " + f"{'operation':<16}" + "".join(f"{n:>12}" for n in names))
    for op in ops:
        cells = "".join(
            f"{('-' if w['recovery_s'].get(op) is None else format(w['recovery_s'][op], '.2f')):>12}"
            for w in r["windows"])
        add(f"  {op:<16}{cells}")
    add("")
    add("operations (latency of successful requests):")
    add(f"  {'operation':<30} {'requests':>9} {'ok':>8} {'refused':>8} {'bad':>5} {'p50 ms':>8} {'p99 ms':>8}")
    for op, l in r["latency"].items():
        add(f"  {op:<30} {l['requests']:>9} {l['ok']:>8} {l['refused']:>8} {l['bad']:>5} "
            f"{fmt(l['p50_ms']):>8} {fmt(l['p99_ms']):>8}")
    c = r["counts"]
    add("")
    add(f"logins completed {c['logins']} (failed under faults {c['logins_failed']}, codes spent by a lost "
        f"answer {c['codes_lost']}); refreshes {c['refreshes']}, retried inside the grace "
        f"{c['refresh_retries_in_grace']}, replayed outside it {c['refresh_replays_outside_grace']} "
        f"(grant revoked each time); revocations {c['revocations']}; exchanges {c['exchanges']}")
    add(f"refresh answers lost to a fault {c['uncertain_refreshes']}, their token presented again and "
        f"accepted {c['uncertain_resolved']}")
    f = r["final"]
    add(f"final: clients acknowledged {f['clients']['acknowledged']}, unknown at the end {f['clients']['lost']}; "
        f"grants {f['grants']['logins']}: live {f['grants']['live_at_end']} (lost at the end "
        f"{f['grants']['live_lost_at_end']}, lost during the run {f['grants']['lost_during_run']}), "
        f"left out after a revoking request went unanswered {c['indeterminate']}, "
        f"revoked {f['grants']['revoked']} (still working {f['revoked_checked']['still_working']}); "
        f"codes replayed {f['codes_replayed']['codes']} ({f['codes_replayed']['during_the_run']} during the run, "
        f"{f['codes_replayed']['at_the_end']} at the end, {c['code_replays_revoking']} of them young enough "
        f"to revoke their live grant; accepted {f['codes_replayed']['accepted']})")
    add("")
    add(f"memory and descriptors (bounds: RSS +{r['bounds']['rss_growth_mb']} MB, "
        f"+{r['bounds']['fd_growth']} descriptors, start = after the warm-up):")
    for name, u in r["usage"].items():
        start, end = u.get("start", {}), u.get("end", {})
        line = (f"  broker {name}: RSS {kb(start.get('rss_kb'))} -> {kb(end.get('rss_kb'))} MB, "
                f"fds {start.get('fds')} -> {end.get('fds')}, CPU {end.get('cpu_s')}s")
        if "restarted" in u:
            before = u.get("b_before_kill", {})
            line += (f" (killed and restarted: before the kill RSS {kb(before.get('rss_kb'))} MB, "
                     f"fds {before.get('fds')}; the end is the second process)")
        add(line)
    add("")
    if r["failures"]:
        add(f"FAILED: {len(r['failures'])} problem(s)")
        for p in r["failures"][:40]:
            add("  " + p)
        if len(r["failures"]) > 40:
            add(f"  … and {len(r['failures']) - 40} more (see the JSON report)")
    else:
        add("PASSED: every check")
    return "\n".join(lines)


def fmt(v):
    return "-" if v is None else f"{v:.1f}"


def kb(v):
    return "?" if not v else f"{v / 1024:.1f}"


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "mcp":
        serve_mcp(int(sys.argv[2]))
        return 0
    if len(sys.argv) != 3 or sys.argv[1] != "run":
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[2]) as f:
        cfg = json.load(f)
    soak = Soak(cfg)

    def terminate(*_):
        soak.stop.set()
        soak.stop_all()
        os._exit(130)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    loads = []

    def watch_load():
        while not soak.stop.is_set():
            with open("/proc/loadavg") as f:
                loads.append(float(f.read().split()[0]))
            soak.stop.wait(10)

    threading.Thread(target=watch_load, daemon=True).start()
    try:
        result = soak.run()
    except RigError as e:
        log(f"rig error: {e}")
        soak.stop.set()
        soak.stop_all()
        return 2
    finally:
        soak.stop.set()
    soak.stop_all()
    if loads:
        result["load_during"] = f"{min(loads):.1f}–{max(loads):.1f} (1-min average, every 10 s)"
    with open(cfg["report_json"], "w") as f:
        json.dump(result, f, indent=1)
    print(render(result))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
