#!/usr/bin/python3
"""Fault and load tests of a real `moon serve`, over loopback (issue 15).

Six parts, each on a server of its own, each bounded in count and time:
  fuzz        malformed HTTP over raw sockets: every one answered 4xx or closed, none 5xx,
              the server alive after, its memory bounded
  streams     many concurrent SSE streams: all complete, memory bounded
  disconnect  clients that leave mid-stream: every request and KV block comes back
  kvpool      a KV pool at a tenth of what the requests need: the same outputs as a big one
  slow        slowloris and slow readers: others served meanwhile, the slow ones closed at
              --idle-timeout
  sigterm     SIGTERM under load: exit 1 when requests were abandoned, 0 when all drained

--short is the CI form (small counts, well under 2 minutes on 2 cores); --long the full
counts of issue 15. Prints the figures of each part and the checks; exits 1 if any check
failed. Standard library only, so Debian's python3 runs it as it is.
"""

import argparse
import atexit
import json
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# How many times longer every time bound is: 1, or 10 against a sanitized (slow) server.
SLACK = 1
# How long after --idle-timeout a slow connection may still be open: the script's own
# threads measure it, and in CI's short run they share the cores with other tests.
LATE_SLACK = 2.5
# A template with no role markers: the fuzzed chat requests must reach validation and
# generation, which a missing template (a 400 for every chat request) would hide.
CHAT_TEMPLATE = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
PROMPTS = ["Once upon a time", "The little dog", "Lily wanted to", "One day, a boy",
           "The sun was", "Tom and his friend"]


# ----------------------------------------------------------------------------- checks

class Report:
    def __init__(self):
        self.checks = []  # (part, name, ok, detail)

    def check(self, part, name, ok, detail=""):
        self.checks.append((part, name, bool(ok), detail))
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail else ""),
              flush=True)
        return ok

    def failed(self):
        return [c for c in self.checks if not c[2]]


def figure(name, value):
    print(f"  {name}: {value}", flush=True)


# ----------------------------------------------------------------------------- the server

def default_model():
    data = os.environ.get("MOON_TEST_DATA") or os.path.join(os.path.dirname(ROOT), "shared")
    path = os.path.join(data, "models", "stories260K-f32.gguf")
    return path if os.path.isfile(path) else "builtin:tiny"


class Server:
    """One `moon serve` on a free loopback port, its log in a file."""

    live = []

    def __init__(self, opts, extra, name):
        self.name = name
        self.log_path = os.path.join(opts.workdir, f"{name}.log")
        self.log_file = open(self.log_path, "wb")
        args = [opts.moon, "serve", "--host", "127.0.0.1", "--port", "0", "--model", opts.model,
                "--threads", "1", "--chat-template", CHAT_TEMPLATE] + extra
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT)
        Server.live.append(self)
        self.pid = self.proc.pid
        self.port = 0
        self.exit_code = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.05)
        if not self.port or http(self.port, "GET", "/health")[0] != 200:
            raise RuntimeError(f"{name}: moon serve did not start:\n{self.log()}")
        self.base_rss = self.status_kib("VmRSS")

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def alive(self):
        return self.proc.poll() is None

    def status_kib(self, field):
        """VmRSS or VmHWM (the peak) of the server, in KiB; -1 once it is gone."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return -1

    def metrics(self):
        status, _, body = http(self.port, "GET", "/metrics", timeout=10)
        if status != 200:
            return None
        values = {}
        for line in body.decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name_labels, _, value = line.rpartition(" ")
            name, _, labels = name_labels.partition("{")
            reason = re.search(r'finished_reason="([^"]*)"', labels)
            key = f"{name}:{reason.group(1)}" if reason else name
            values.setdefault(key, float(value))
        return values

    def wait_idle(self, timeout):
        """Polls /metrics until nothing runs, waits or holds a KV block; the last reading and
        whether it got there."""
        deadline = time.monotonic() + timeout * SLACK
        m = None
        while time.monotonic() < deadline:
            m = self.metrics()
            if m and idle(m):
                return m, True
            time.sleep(0.1)
        return m, False

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.exit_code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.exit_code = None
        self.log_file.close()
        if self in Server.live:
            Server.live.remove(self)
        return self.exit_code


def idle(m):
    return (m.get("vllm:num_requests_running") == 0 and m.get("vllm:num_requests_waiting") == 0
            and m.get("moon:kv_cache_blocks_used") == 0)


def occupancy(m):
    if not m:
        return "no metrics"
    return (f"running {m['vllm:num_requests_running']:.0f}, waiting "
            f"{m['vllm:num_requests_waiting']:.0f}, "
            f"blocks used {m['moon:kv_cache_blocks_used']:.0f}")


def kill_all_servers():
    for s in list(Server.live):
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


atexit.register(kill_all_servers)


def end_of_part(report, part, server, rss_bound_mib=None):
    """What every part checks at its end: the server is alive and serving, nothing is left
    running or holding KV blocks, and (when bounded) its peak memory."""
    alive = server.alive()
    health = http(server.port, "GET", "/health", timeout=5)[0] if alive else 0
    status, _, _ = (http(server.port, "POST", "/v1/completions",
                         json.dumps({"prompt": "Once", "max_tokens": 4}), timeout=10)
                    if alive else (0, None, None))
    m, got_idle = server.wait_idle(15) if alive else (None, False)
    peak = server.status_kib("VmHWM")
    figure("server deaths", 0 if alive else 1)
    figure("server RSS", f"{server.base_rss / 1024:.0f} MiB at start, peak {peak / 1024:.0f} MiB")
    if m:
        figure("after: running / waiting / KV blocks used",
               f"{m['vllm:num_requests_running']:.0f} / {m['vllm:num_requests_waiting']:.0f} / "
               f"{m['moon:kv_cache_blocks_used']:.0f} of {m['moon:kv_cache_blocks_total']:.0f}")
    report.check(part, "the server is alive, /health and a completion answer 200",
                 alive and health == 200 and status == 200,
                 f"alive={alive} health={health} completion={status}")
    report.check(part, "idle after: running = waiting = 0 and every KV block returned", got_idle,
                 "" if got_idle else f"last metrics: {occupancy(m)}")
    if rss_bound_mib is not None and SLACK == 1:
        report.check(part, f"peak RSS within {rss_bound_mib} MiB of the start",
                     0 < peak <= server.base_rss + rss_bound_mib * 1024,
                     f"grew {(peak - server.base_rss) / 1024:.0f} MiB")
    return m


# ----------------------------------------------------------------------------- HTTP

def connect(port, source=None, rcvbuf=None, timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if source:
        s.bind((source, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def http_bytes(method, path, body=b"", headers=(), length=True):
    if isinstance(body, str):
        body = body.encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body or method == "POST":
        head += "Content-Type: application/json\r\n"
        if length:
            head += f"Content-Length: {len(body)}\r\n"
    for h in headers:
        head += h + "\r\n"
    return head.encode() + b"\r\n" + body


class Incomplete(Exception):
    pass


def parse_response(buf, pos=0):
    """One response from buf[pos:]: (status, headers, body, end). Raises Incomplete when more
    bytes are needed and ValueError when it is not HTTP."""
    end = buf.find(b"\r\n\r\n", pos)
    if end < 0:
        if len(buf) - pos > 65536:
            raise ValueError("no end of header")
        raise Incomplete()
    lines = buf[pos:end].decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        raise ValueError(f"not a status line: {lines[0][:80]!r}")
    status = int(m.group(1))
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    pos = end + 4
    if 100 <= status < 200 or status in (204, 304):
        return status, headers, b"", pos
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                raise Incomplete()
            size = int(buf[pos:eol].split(b";")[0], 16)
            if len(buf) < eol + 2 + size + 2:
                raise Incomplete()
            body += buf[eol + 2:eol + 2 + size]
            pos = eol + 2 + size + 2
            if size == 0:
                return status, headers, bytes(body), pos
    if "content-length" in headers:
        n = int(headers["content-length"])
        if len(buf) < pos + n:
            raise Incomplete()
        return status, headers, buf[pos:pos + n], pos + n
    raise Incomplete()  # delimited by the close


def http(port, method, path, body=b"", headers=(), timeout=30, source=None):
    """One request on a fresh connection: (status, headers, body); status 0 when no answer."""
    try:
        s = connect(port, source, timeout=timeout)
    except OSError:
        return 0, {}, b""
    buf = b""
    try:
        s.sendall(http_bytes(method, path, body, ("Connection: close",) + tuple(headers)))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = s.recv(65536)
            if not data:
                break
            buf += data
        status, h, b, _ = parse_response(buf)
        return status, h, b
    except (OSError, ValueError, Incomplete):
        return 0, {}, b""
    finally:
        s.close()


def sse_events(body):
    return [line[6:] for line in body.decode("utf-8", "replace").split("\n")
            if line.startswith("data: ")]


def post_json(port, path, obj, timeout=60):
    status, _, body = http(port, "POST", path, json.dumps(obj), timeout=timeout)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def run_threads(fns):
    threads = [threading.Thread(target=f, daemon=True) for f in fns]
    for t in threads:
        t.start()
    return threads


def join_all(threads, timeout):
    deadline = time.monotonic() + timeout * SLACK
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return sum(t.is_alive() for t in threads)


class Sampler:
    """Polls the server's /metrics and memory in the background, keeping the peaks."""

    def __init__(self, server, period=0.1):
        self.server = server
        self.peak = {}
        self.peak_rss = 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, args=(period,), daemon=True)
        self.thread.start()

    def run(self, period):
        while not self.stop_flag.is_set():
            self.peak_rss = max(self.peak_rss, self.server.status_kib("VmRSS"))
            m = self.server.metrics()
            if m:
                in_flight = m["vllm:num_requests_running"] + m["vllm:num_requests_waiting"]
                for k, v in (("running", m["vllm:num_requests_running"]),
                             ("in_flight", in_flight),
                             ("blocks", m["moon:kv_cache_blocks_used"])):
                    self.peak[k] = max(self.peak.get(k, 0), v)
            self.stop_flag.wait(period)

    def stop(self):
        self.stop_flag.set()
        self.thread.join(5)


def server_holds(port):
    """The client ports of the connections the server still holds open (ESTABLISHED or
    CLOSE_WAIT on its side), from /proc/net/tcp: how a test sees whether the server let a
    client go even when the client reads nothing."""
    held = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local, remote, state = parts[1], parts[2], parts[3]
            if int(local.split(":")[1], 16) == port and state in ("01", "08"):
                held.add(int(remote.split(":")[1], 16))
    return held


# ----------------------------------------------------------------------------- 1. fuzzing

def valid_bodies():
    return [
        ("/v1/completions", {"prompt": "Once upon a time", "max_tokens": 4}),
        ("/v1/completions", {"prompt": "Once", "max_tokens": 4, "stream": True}),
        ("/v1/completions", {"prompt": [1, 403, 407], "max_tokens": 3, "n": 2, "seed": 7,
                             "temperature": 0.8, "logprobs": 2, "stop": ["x"]}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hello there"}],
                                  "max_tokens": 4}),
        ("/v1/chat/completions", {"messages": [{"role": "system", "content": "Be brief"},
                                               {"role": "user", "content": "hi"}],
                                  "max_tokens": 3, "stream": True, "logprobs": True,
                                  "top_logprobs": 2}),
        ("/generate", {"inputs": "Once upon a time", "parameters": {"max_new_tokens": 4}}),
        ("/generate_stream", {"inputs": "Once", "parameters": {"max_new_tokens": 3,
                                                               "details": True}}),
        ("/tokenize", {"prompt": "Once upon a time"}),
        ("/detokenize", {"tokens": [1, 403, 407]}),
    ]


# The JSON type of each field the server reads, for the wrong-type requests.
I, N, B, S, A, O, SA, SO = "int", "num", "bool", "str", "arr", "obj", "str|arr", "str|obj"
COMPLETION_FIELDS = dict(
    model=S, prompt=SA, max_tokens=I, temperature=N, top_p=N, top_k=I, min_p=N, n=I, best_of=I,
    stream=B, stream_options=O, logprobs=I, echo=B, stop=SA, stop_token_ids=A, seed=I,
    presence_penalty=N, frequency_penalty=N, repetition_penalty=N, logit_bias=O, ignore_eos=B,
    min_tokens=I, use_beam_search=B, length_penalty=N, include_stop_str_in_output=B,
    return_token_ids=B, response_format=O, guided_regex=S, guided_choice=A, guided_grammar=S)
CHAT_FIELDS = dict(
    model=S, messages=A, max_tokens=I, max_completion_tokens=I, temperature=N, top_p=N, top_k=I,
    n=I, stream=B, stream_options=O, logprobs=B, top_logprobs=I, stop=SA, seed=I, tools=A,
    tool_choice=SO, parallel_tool_calls=B, chat_template_kwargs=O, add_generation_prompt=B,
    continue_final_message=B, response_format=O, ignore_eos=B, logit_bias=O)
# TGI takes a single stop string as well as a list.
TGI_PARAMETERS = dict(
    max_new_tokens=I, temperature=N, top_k=I, top_p=N, do_sample=B, seed=I, stop=SA,
    repetition_penalty=N, return_full_text=B, details=B, decoder_input_details=B, best_of=I,
    top_n_tokens=I, grammar=O)
# null is left out: it means "the default" for most fields, as in vLLM. An integral float
# (2.0) is a valid integer, so the float is 1.5.
WRONG = {I: ["7", 1.5, True, {}, []], N: ["0.5", True, {}, []], B: ["true", 1, {}, []],
         S: [5, True, {}, []], A: ["x", 5, {}, True], O: ["x", 5, [], True],
         SA: [5, True, {}], SO: [5, True, []]}
# Wrong shapes inside arrays and objects, which a check of the top-level type misses.
NESTED_WRONG = [
    ("/v1/chat/completions", {"messages": [5], "max_tokens": 2}),
    ("/v1/chat/completions", {"messages": [{"role": 5, "content": "hi"}]}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": 5}]}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text",
                                                                         "text": 5}]}]}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [5]}]}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
                              "tools": [{"type": "function", "function": {"name": 5}}]}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
                              "stream_options": {"include_usage": "yes"}}),
    ("/v1/completions", {"prompt": [True]}),
    ("/v1/completions", {"prompt": [[1, "x"]]}),
    ("/v1/completions", {"prompt": [1.5, 2]}),
    ("/v1/completions", {"prompt": "x", "stop": [5]}),
    ("/v1/completions", {"prompt": "x", "stop_token_ids": ["a"]}),
    ("/v1/completions", {"prompt": "x", "logit_bias": {"5": "high"}}),
    ("/v1/completions", {"prompt": "x", "logit_bias": {"not-a-token": 1}}),
    ("/v1/completions", {"prompt": "x", "response_format": {"type": 5}}),
    ("/v1/completions", {"prompt": "x", "guided_choice": [1, 2]}),
    ("/generate", {"inputs": "x", "parameters": {"stop": [5]}}),
    ("/generate", {"inputs": "x", "parameters": {"grammar": {"type": 5, "value": "x"}}}),
    ("/tokenize", {"prompt": 5}),
    ("/detokenize", {"tokens": ["a"]}),
    ("/detokenize", {"tokens": 5}),
]


def wrong_type_cases():
    """Every field with each of its wrong values, round-robin over the fields, so that even
    the short run's share reaches every field once."""
    per_field = []
    for path, base, fields, wrap in (
            ("/v1/completions", {"prompt": "Once", "max_tokens": 2}, COMPLETION_FIELDS, None),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
                                      "max_tokens": 2}, CHAT_FIELDS, None),
            ("/generate", {"inputs": "Once"}, TGI_PARAMETERS, "parameters"),
            ("/generate_stream", {"inputs": "Once"}, TGI_PARAMETERS, "parameters")):
        for field, kind in fields.items():
            bodies = []
            for value in WRONG[kind]:
                body = json.loads(json.dumps(base))
                if wrap:
                    body[wrap] = {"max_new_tokens": 2, field: value}
                else:
                    body[field] = value
                bodies.append((path, body))
            per_field.append(bodies)
    for kind in (S, O):  # TGI's own two fields
        per_field.append([("/generate", {"inputs": v} if kind == S else
                           {"inputs": "x", "parameters": v}) for v in WRONG[kind]])
    cases = []
    for i in range(max(len(b) for b in per_field)):
        cases += [b[i] for b in per_field if i < len(b)]
    return cases + NESTED_WRONG


class Case:
    """One fuzz input: the bytes, what must come back, and whether the client signals the end
    of its input at once (the input is incomplete on purpose)."""

    def __init__(self, category, data, expect, responses=1, half_close=False):
        self.category = category
        self.data = data
        self.expect = expect  # "4xx": an answer, 4xx; "4xx|close": that or closed; "no5xx"
        self.responses = responses
        self.half_close = half_close


INVALID_UTF8 = [b"\xff", b"\xc0\x80", b"\x80", b"\xe2\x82", b"\xed\xa0\x80", b"\xf5\x80\x80\x80",
                b"\xf0\x9f\x98", b"\xfe\xfe", b"\xc3"]
HUGE_NUMBERS = ["1e400", "-1e400", "1e309", "9" * 400, "-" + "9" * 400, "1" + "0" * 320 + ".5"]
NUMBER_FIELDS = [("/v1/completions", {"prompt": "x"}, k) for k in
                 ("max_tokens", "temperature", "top_p", "top_k", "n", "seed", "logprobs",
                  "min_tokens", "presence_penalty", "length_penalty")] + [
                 ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, k)
                 for k in ("max_completion_tokens", "top_logprobs", "temperature", "seed")]


def body_with_raw(base, field, raw):
    """A JSON body whose `field` is the literal text `raw` (which json.dumps cannot write)."""
    text = json.dumps(base)
    return text[:-1] + (", " if base else "") + f'"{field}": {raw}' + "}"


def make_case(category, rng, wrong_cases, index):
    bodies = valid_bodies()
    path, body = rng.choice(bodies)
    payload = json.dumps(body).encode()

    if category == "request_line":
        line = rng.choice([
            bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 200))),
            b"GE T /health HTTP/1.1", b"G\x00T /health HTTP/1.1", b"(GET) /health HTTP/1.1",
            b" /health HTTP/1.1", b"GET HTTP/1.1", b"GET /health", b"GET /health HTTP/x.y",
            b"GET /health HTTPS/1.1", b"GET /health HTTP/1.1 extra", b"GET /health HTTP/21.1",
            b"GET /he\x01alth HTTP/1.1", b"GET /health\x7f HTTP/1.1", b"\r\n\r\nGET",
            b"GET /" + b"a" * rng.randrange(33 << 10, 200000) + b" HTTP/1.1",
            b"POST /v1/completions HTTP/1.1\x00"])
        return Case(category, line + b"\r\nHost: x\r\n\r\n", "4xx|close")

    if category == "headers":
        kind = rng.randrange(9)
        if kind == 0:
            extra = [b"X-Big: " + b"a" * rng.randrange(33 << 10, 1 << 20)]
        elif kind == 1:
            extra = [b"X-%d: v" % i for i in range(rng.randrange(1200, 20000))]
        elif kind == 2:
            extra = [b"Bad Header Without Colon"]
        elif kind == 3:
            extra = [b"Host : x"]
        elif kind == 4:
            extra = [b"X-\x01: v"]
        elif kind == 5:
            extra = [b"X-Nul: a\x00b"]
        elif kind == 6:
            # RFC 9112 5.2 lets a server read an obs-fold as a space instead of refusing it.
            head = b"POST %s HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n" % path.encode()
            return Case(category, head + b"Content-Length: %d\r\n\r\n" % len(payload) +
                        payload, "no5xx")
        elif kind == 7:
            bad = rng.choice([b"abc", b"-1", b"1 2", b"0x10", b"+5", b"99999999999999999999999",
                              b"1e3", b""])
            head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n" % (
                path.encode(), bad)
            return Case(category, head + payload, "4xx|close")
        else:
            n = len(payload)
            head = (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                    b"Content-Length: %d\r\n\r\n" % (path.encode(), n, n + rng.randrange(1, 9)))
            return Case(category, head + payload, "4xx|close")
        head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" % path.encode()
        head += b"".join(h + b"\r\n" for h in extra)
        return Case(category, head + b"Content-Length: %d\r\n\r\n" % len(payload) + payload,
                    "4xx|close")

    if category == "chunked":
        head = (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n" % path.encode())
        n = len(payload)
        kind = rng.randrange(9)
        half_close = False
        if kind == 0:
            chunks = b"zz\r\n" + payload + b"\r\n0\r\n\r\n"
        elif kind == 1:
            chunks = b"f" * rng.randrange(17, 40) + b"\r\n" + payload + b"\r\n0\r\n\r\n"
        elif kind == 2:
            chunks = b"-%x\r\n" % n + payload + b"\r\n0\r\n\r\n"
        elif kind == 3:
            chunks = b"%x\r\n" % n + payload + b"XX0\r\n\r\n"
        elif kind == 4:
            chunks = b"%x\r\n" % (n - 1) + payload + b"\r\n0\r\n\r\n"
        elif kind == 5:
            chunks = b"%x;\x01\r\n" % n + payload + b"\r\n0\r\n\r\n"
        elif kind == 6:
            chunks, half_close = b"%x\r\n" % n + payload + b"\r\n", True  # no last chunk
        elif kind == 7:
            chunks, half_close = b"%x\r\n" % (n + 500) + payload, True
        else:
            head += b"Content-Length: %d\r\n" % n  # both framings: a smuggling vector
            chunks = b"%x\r\n" % n + payload + b"\r\n0\r\n\r\n"
        return Case(category, head + b"\r\n" + chunks, "4xx|close", half_close=half_close)

    if category == "truncated":
        # Cut in the head or in the body, then the client ends its input.
        data = http_bytes("POST", path, payload)
        return Case(category, data[:rng.randrange(1, len(data))], "4xx|close", half_close=True)

    if category == "length_lie":
        # A Content-Length shorter than the body: the rest reads as a second request.
        k = rng.randrange(0, len(payload) - 1)
        data = http_bytes("POST", path, payload, length=False)
        data = data.replace(b"\r\n\r\n", b"\r\nContent-Length: %d\r\n\r\n" % k, 1)
        return Case(category, data, "4xx|close", responses=2)

    if category == "utf8":
        text = rng.choice(["prompt", "messages", "inputs", "stop", "model", "key"])
        bad = rng.choice(INVALID_UTF8)
        if text == "messages":
            raw = b'{"messages":[{"role":"user","content":"a' + bad + b'b"}],"max_tokens":2}'
            path = "/v1/chat/completions"
        elif text == "inputs":
            raw, path = b'{"inputs":"a' + bad + b'"}', "/generate"
        elif text == "key":
            raw, path = b'{"prompt":"x","' + bad + b'":1}', "/v1/completions"
        elif text == "stop":
            raw, path = b'{"prompt":"x","max_tokens":2,"stop":["' + bad + b'"]}', "/v1/completions"
        elif text == "model":
            raw, path = b'{"prompt":"x","model":"' + bad + b'"}', "/v1/completions"
        else:
            raw, path = (b'{"prompt":"' + rng.choice([bad, b"\\ud800", b"\\udc00x", b"\\u12"]) +
                         b'"}', rng.choice(["/v1/completions", "/tokenize"]))
        return Case(category, http_bytes("POST", path, raw), "4xx")

    if category == "numbers":
        p, base, field = rng.choice(NUMBER_FIELDS)
        raw = rng.choice(HUGE_NUMBERS)
        if rng.random() < 0.2:
            p, body_text = "/generate", ('{"inputs":"x","parameters":{"' +
                                         rng.choice(["max_new_tokens", "seed", "top_k",
                                                     "temperature"]) + '":' + raw + "}}")
        elif rng.random() < 0.2:
            p, body_text = "/v1/completions", '{"prompt":[1,' + raw + "]}"
        else:
            body_text = body_with_raw(base, field, raw)
        return Case(category, http_bytes("POST", p, body_text), "4xx")

    if category == "nesting":
        depth = rng.choice([65, 100, 1000, 10000, 100000, 400000])
        opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
        nested = opener * depth + ("1" if opener == "[" else "1") + closer * depth
        where = rng.randrange(4)
        if where == 0:
            p, body_text = "/v1/completions", nested
        elif where == 1:
            p, body_text = "/v1/completions", '{"prompt":"x","extra":' + nested + "}"
        elif where == 2:
            p, body_text = "/v1/chat/completions", ('{"messages":[{"role":"user","content":' +
                                                    nested + "}]}")
        else:
            p, body_text = "/generate", '{"inputs":"x","parameters":{"a":' + nested + "}}"
        return Case(category, http_bytes("POST", p, body_text), "4xx")

    if category == "wrong_type":
        p, b = wrong_cases[index % len(wrong_cases)]
        return Case(category, http_bytes("POST", p, json.dumps(b)), "4xx")

    # "mutation": random edits of a valid request, head or body. Half of them put the
    # Content-Length right after, so that the edit reaches the JSON layer, not just framing.
    data = bytearray(http_bytes("POST", path, payload))
    for _ in range(rng.randrange(1, 10)):
        op = rng.randrange(6)
        at = rng.randrange(len(data))
        if op == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[at] = rng.randrange(256)
        elif op == 2:
            data[at:at] = bytes(rng.choice([b'"', b"{", b"}", b"[", b"]", b"\\", b",", b":",
                                            b"\x00", b"\xff", b"\r\n", b"9" * 30, b"-", b"e"]))
        elif op == 3:
            del data[at:at + rng.randrange(1, 8)]
        elif op == 4:
            span = data[at:at + rng.randrange(1, 40)]
            data[at:at] = span
        else:
            data[at:at + 1] = b"%d" % rng.choice([0, -1, 2 ** 31, 2 ** 63, 2 ** 64])
    data = bytes(data)
    sep = data.find(b"\r\n\r\n")
    if rng.random() < 0.5 and sep > 0:
        body_part = data[sep + 4:]
        data = re.sub(rb"(?i)content-length:[^\r\n]*", b"Content-Length: %d" % len(body_part),
                      data[:sep], count=1) + data[sep:]
    return Case("mutation", data, "no5xx", half_close=announces_more(data))


def announces_more(data):
    """Whether the head announces more body than follows: then the client must end its input,
    or the server rightly waits for the rest until its idle timeout."""
    sep = data.find(b"\r\n\r\n")
    if sep < 0:
        return True
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)\s*\r", data[:sep + 2])
    if m:
        return int(m.group(1)) > len(data) - sep - 4
    return b"chunked" in data[:sep].lower()


FUZZ_MIX = [("request_line", 8), ("headers", 10), ("chunked", 8), ("truncated", 5),
            ("length_lie", 7), ("utf8", 7), ("numbers", 7), ("nesting", 6), ("wrong_type", 12),
            ("mutation", 30)]


def exchange(port, case, wait):
    """Sends one case and reads what comes back: (statuses of the answers, whether the server
    closed, whether it neither answered nor closed, what went wrong on the client's side)."""
    try:
        s = connect(port, timeout=5)
    except OSError:
        return [], False, False, "connect failed"
    statuses, buf, closed, half_closed = [], b"", False, case.half_close
    try:
        try:
            s.sendall(case.data)
        except OSError:
            pass  # refused mid-send (oversized head): what was answered is still readable
        if half_closed:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if half_closed:
                    return statuses, False, True, "no answer and no close"
                # Maybe the request is incomplete in a way the case did not know: end the
                # input; the server must then answer or close at once.
                half_closed = True
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                deadline = time.monotonic() + wait
                continue
            r, _, _ = select.select([s], [], [], left)
            if not r:
                continue
            try:
                data = s.recv(65536)
            except OSError:
                data = b""  # a reset is a close
            if not data:
                closed = True
            buf += data
            pos, statuses = 0, []
            try:
                while True:
                    st, _, _, pos = parse_response(buf, pos)
                    if st >= 200:
                        statuses.append(st)
            except Incomplete:
                pass
            except ValueError as e:
                return statuses, closed, False, f"garbage answer: {e}"
            if closed or len(statuses) >= case.responses:
                return statuses, closed, False, ""
    finally:
        s.close()


def judge(case, statuses, closed, hung, note):
    """'' when the outcome is what the case must get, else why not."""
    if hung:
        return "hung: " + note
    if note:
        return note
    if any(st >= 500 for st in statuses):
        return f"5xx: {statuses}"
    if case.expect == "no5xx":
        return "" if statuses or closed else "neither answered nor closed"
    if not statuses:
        return "" if case.expect == "4xx|close" and closed else "closed without an answer"
    if not 400 <= statuses[0] < 500:
        return f"answered {statuses[0]}, not 4xx"
    return ""


def part_fuzz(opts, report):
    part = "fuzz"
    count = 10000 if opts.long else 1000
    print(f"\n== 1. HTTP fuzzing: {count} malformed requests over raw sockets", flush=True)
    server = Server(opts, ["--kv-cache-memory", "32MiB"], "fuzz")
    rng = random.Random(opts.seed)
    wrong_cases = wrong_type_cases()
    weights = [w for _, w in FUZZ_MIX]
    plan = [rng.choices([c for c, _ in FUZZ_MIX], weights)[0] for _ in range(count)]
    counts = {c: 0 for c, _ in FUZZ_MIX}
    per_category = {}
    outcomes = {"2xx": 0, "4xx": 0, "5xx": 0, "closed": 0, "hung": 0}
    status_counts = {}
    failures = []
    health_failures = []
    lock = threading.Lock()
    next_index = [0]
    t0 = time.monotonic()

    def worker():
        while True:
            with lock:
                i = next_index[0]
                if i >= count or not server.alive():
                    return
                next_index[0] += 1
                category = plan[i]
                wi = counts[category]
                counts[category] += 1
            case = make_case(category, random.Random(opts.seed * 1000003 + i), wrong_cases, wi)
            statuses, closed, hung, note = exchange(server.port, case, 5.0 * SLACK)
            why = judge(case, statuses, closed, hung, note)
            with lock:
                pc = per_category.setdefault(category, {"sent": 0, "bad": 0})
                pc["sent"] += 1
                if hung:
                    outcomes["hung"] += 1
                elif statuses:
                    first = statuses[0]
                    status_counts[first] = status_counts.get(first, 0) + 1
                    outcomes[f"{first // 100}xx"] = outcomes.get(f"{first // 100}xx", 0) + 1
                else:
                    outcomes["closed"] += 1
                if why:
                    pc["bad"] += 1
                    failures.append((category, why, case.data[:160]))
            # Every 250 requests, /health from beside the fuzzing must still answer.
            if i % 250 == 249:
                st = http(server.port, "GET", "/health", timeout=5)[0]
                if st != 200:
                    with lock:
                        health_failures.append((i, st))

    threads = run_threads([worker] * opts.fuzz_workers)
    left = join_all(threads, 240 if opts.long else 60)
    seconds = time.monotonic() - t0
    sent = sum(pc["sent"] for pc in per_category.values())
    figure("requests sent", f"{sent} in {seconds:.1f} s ({opts.fuzz_workers} clients)")
    figure("by category (sent/failed)",
           ", ".join(f"{c} {per_category.get(c, {}).get('sent', 0)}/"
                     f"{per_category.get(c, {}).get('bad', 0)}" for c, _ in FUZZ_MIX))
    figure("answers", ", ".join(f"{k} {v}" for k, v in outcomes.items()))
    figure("statuses", ", ".join(f"{k}: {v}" for k, v in sorted(status_counts.items())))
    for category, why, data in failures[:10]:
        print(f"    failed [{category}] {why}: {data!r}")
    report.check(part, "every request got a 4xx (or, for broken framing, a close); mutations "
                 "anything but a 5xx or no answer",
                 sent == count and not failures and left == 0,
                 f"{len(failures)} of {sent} not, {left} clients stuck")
    report.check(part, "no 5xx", outcomes.get("5xx", 0) == 0, f"{outcomes.get('5xx', 0)}")
    report.check(part, "/health answered 200 every 250 requests during the fuzzing",
                 not health_failures, f"{health_failures[:5]}")
    end_of_part(report, part, server, rss_bound_mib=opts.fuzz_rss_mib)
    server.stop()


# ----------------------------------------------------------------------------- 2. streams

def stream_body(i, max_tokens, n=1):
    return {"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": max_tokens, "n": n,
            "temperature": 0.8, "seed": i, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}}


def source_address(i, per_address):
    """Loopback source addresses beyond 127.0.0.1, so that many clients stay within
    --max-connections-per-ip as real clients on many hosts would."""
    return f"127.0.0.{2 + i // per_address}"


def read_stream(port, body, source=None, timeout=120, path="/v1/completions", times=None):
    """A whole stream: (status, events, seconds). `times`, when given, gets the moments the
    request was sent and the answer ended."""
    t0 = time.monotonic()
    try:
        s = connect(port, source, timeout=timeout)
        s.sendall(http_bytes("POST", path, json.dumps(body), ("Connection: close",)))
        if times is not None:
            times.append(time.monotonic())
        buf = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            buf += data
        s.close()
        if times is not None:
            times.append(time.monotonic())
        status, _, payload, _ = parse_response(buf)
        return status, sse_events(payload), time.monotonic() - t0
    except (OSError, ValueError, Incomplete) as e:
        return 0, [str(e)], time.monotonic() - t0


def stream_ok(status, events, max_tokens, n=1):
    if status != 200 or not events or events[-1] != "[DONE]":
        return False
    try:
        usage = json.loads(events[-2]).get("usage") or {}
    except ValueError:
        return False
    return usage.get("completion_tokens") == max_tokens * n


def part_streams(opts, report):
    part = "streams"
    count = 512 if opts.long else 64
    max_tokens = 256 if opts.long else 128
    print(f"\n== 2. {count} concurrent SSE streams of {max_tokens} tokens", flush=True)
    server = Server(opts, ["--kv-cache-memory", "64MiB"], "streams")
    results = [None] * count
    times = [[] for _ in range(count)]
    gate = threading.Barrier(count + 1)

    def client(i):
        def run():
            try:
                gate.wait(30)
            except threading.BrokenBarrierError:
                pass
            results[i] = read_stream(server.port, stream_body(i, max_tokens),
                                     source_address(i, 200), times=times[i])
        return run

    threads = run_threads([client(i) for i in range(count)])
    sampler = Sampler(server)
    t0 = time.monotonic()
    gate.wait(30)
    left = join_all(threads, 300 if opts.long else 90)
    seconds = time.monotonic() - t0
    sampler.stop()
    ok = sum(1 for r in results if r and stream_ok(r[0], r[1], max_tokens))
    latencies = sorted(r[2] for r in results if r)
    figure("streams", f"{count} sent, {ok} complete ({ok * max_tokens} tokens) in {seconds:.1f} s")
    if latencies:
        figure("stream time", f"median {latencies[len(latencies) // 2]:.2f} s, "
               f"max {latencies[-1]:.2f} s")
    figure("peak running / in flight (running + waiting)",
           f"{sampler.peak.get('running', 0):.0f} / {sampler.peak.get('in_flight', 0):.0f}")
    m = server.metrics()
    figure("peak KV blocks used", f"{sampler.peak.get('blocks', 0):.0f} of "
           f"{m['moon:kv_cache_blocks_total']:.0f}, {m['vllm:num_preemptions_total']:.0f} "
           f"preemptions" if m else "no metrics")
    bad = [(i, r[0], r[1][-2:]) for i, r in enumerate(results) if r and not
           stream_ok(r[0], r[1], max_tokens)]
    for i, status, tail in bad[:5]:
        print(f"    stream {i}: status {status}, ends {tail}")
    report.check(part, "every stream complete: 200, every token, [DONE]",
                 ok == count and left == 0, f"{ok} of {count}, {left} stuck")
    # Without this the streams might have run one after another and shown nothing: every
    # request was sent before the first answer ended.
    last_sent = max((t[0] for t in times if t), default=0)
    first_end = min((t[1] for t in times if len(t) > 1), default=0)
    figure("every request sent", f"{(last_sent - t0) * 1000:.0f} ms after the start, the first "
           f"stream ended at {(first_end - t0) * 1000:.0f} ms")
    report.check(part, "all streams were open at once", 0 < last_sent < first_end)
    end_of_part(report, part, server, rss_bound_mib=opts.streams_rss_mib)
    server.stop()


# ----------------------------------------------------------------------------- 3. disconnects

def part_disconnect(opts, report):
    part = "disconnect"
    count = 200 if opts.long else 20
    wave = 50 if opts.long else 20
    print(f"\n== 3. {count} clients that leave mid-stream", flush=True)
    server = Server(opts, ["--kv-cache-memory", "64MiB"], "disconnect")
    before = server.metrics()
    rng = random.Random(opts.seed + 3)
    plans = []
    for i in range(count):
        path = rng.choice(["/v1/completions", "/v1/chat/completions", "/generate_stream",
                           "/v1/completions"])
        n = rng.randrange(1, 5)
        if path == "/generate_stream":
            body = {"inputs": rng.choice(PROMPTS), "parameters": {"max_new_tokens": 400,
                                                                  "do_sample": True}}
        elif path == "/v1/chat/completions":
            body = {"messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
                    "max_tokens": 400, "n": n, "temperature": 1.0, "ignore_eos": True,
                    "stream": True}
        else:
            body = stream_body(i, 400, n)
        # One in five leaves before any answer (k = 0), the others after k events; half with
        # a reset, half with a plain close.
        plans.append((path, body, 0 if i % 5 == 0 else rng.randrange(1, 40), rng.random() < 0.5))
    outcome = {"left after events": 0, "left before the answer": 0, "finished first": 0,
               "failed to start": 0, "reset": 0, "closed": 0}
    lock = threading.Lock()

    def client(plan):
        path, body, k, reset = plan

        def run():
            try:
                s = connect(server.port, timeout=30)
                s.sendall(http_bytes("POST", path, json.dumps(body)))
                buf = b""
                while k and buf.count(b"data:") < k and b"0\r\n\r\n" not in buf:
                    data = s.recv(65536)
                    if not data:
                        break
                    buf += data
                what = ("left before the answer" if k == 0 else
                        "finished first" if b"0\r\n\r\n" in buf else "left after events")
                if reset:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            except OSError:
                what = "failed to start"
            with lock:
                outcome[what] += 1
                outcome["reset" if reset else "closed"] += 1
        return run

    t0 = time.monotonic()
    for start in range(0, count, wave):
        join_all(run_threads([client(p) for p in plans[start:start + wave]]), 60)
    t_left = time.monotonic()
    m_now = server.metrics()
    m, got_idle = server.wait_idle(20)
    seconds_to_idle = time.monotonic() - t_left
    aborted = (m or {}).get("vllm:request_success_total:abort", 0) - \
        (before or {}).get("vllm:request_success_total:abort", 0)
    figure("clients", ", ".join(f"{k} {v}" for k, v in outcome.items()))
    figure("requests counted aborted", f"{aborted:.0f}")
    if m_now:
        figure("just after the last client left: running / waiting / blocks",
               f"{m_now['vllm:num_requests_running']:.0f} / "
               f"{m_now['vllm:num_requests_waiting']:.0f} / "
               f"{m_now['moon:kv_cache_blocks_used']:.0f}")
    figure("all clients gone", f"{t_left - t0:.1f} s; idle {seconds_to_idle:.2f} s after that")
    report.check(part, "every client connected and sent its request",
                 outcome["failed to start"] == 0, f"{outcome['failed to start']} failed")
    # Each client that left after events left a running request (400 tokens, at most 40
    # read): each must have been aborted, not run on for nobody.
    report.check(part, "each request left mid-stream was aborted",
                 aborted >= outcome["left after events"],
                 f"{aborted:.0f} aborted, {outcome['left after events']} left mid-stream")
    report.check(part, "running = waiting = 0 and 0 KV blocks used once they are gone",
                 got_idle, occupancy(m))
    end_of_part(report, part, server)
    server.stop()


# ----------------------------------------------------------------------------- 4. KV pool

def kv_requests(opts):
    rng = random.Random(opts.seed + 4)
    greedy, seeded, beams = (24, 16, 8) if opts.long else (8, 6, 3)
    out = []
    for i in range(greedy):
        out.append(("greedy", {"prompt": rng.choice(PROMPTS), "max_tokens": 80,
                               "temperature": 0, "ignore_eos": True}))
    for i in range(seeded):
        out.append(("seeded n=3", {"prompt": rng.choice(PROMPTS), "max_tokens": 80, "n": 3,
                                   "temperature": 1.0, "top_p": 0.95, "seed": 1000 + i,
                                   "ignore_eos": True}))
    for i in range(beams):
        out.append(("beam n=3", {"prompt": rng.choice(PROMPTS), "max_tokens": 40, "n": 3,
                                 "use_beam_search": True, "ignore_eos": True}))
    return out


def run_all(port, requests):
    results = [None] * len(requests)

    def client(i, body):
        def run():
            status, answer = post_json(port, "/v1/completions", body, timeout=240)
            answer = answer or {}
            results[i] = (status, [(c["index"], c["text"], c["finish_reason"])
                                   for c in answer.get("choices", [])],
                          answer.get("usage", {}).get("completion_tokens"))
        return run

    left = join_all(run_threads([client(i, b) for i, (_, b) in enumerate(requests)]), 300)
    return results, left


def part_kvpool(opts, report):
    part = "kvpool"
    requests = kv_requests(opts)
    print(f"\n== 4. a KV pool at 1/10 of the need: {len(requests)} requests at once", flush=True)
    big = Server(opts, ["--kv-cache-memory", "32MiB"], "kvpool-big")
    m = big.metrics()
    block_bytes = (32 << 20) // int(m["moon:kv_cache_blocks_total"])
    block_tokens = 16  # moon serve's default --block-size
    need = 0
    for _, body in requests:
        _, tok = post_json(big.port, "/tokenize", {"prompt": body["prompt"]})
        tokens = tok["count"] + body["max_tokens"]
        need += body.get("n", 1) * -(-tokens // block_tokens)
    small_blocks = need // 10
    figure("need", f"{need} blocks of {block_tokens} tokens (each sequence's prompt + "
           f"max_tokens, all at once); the big pool has {m['moon:kv_cache_blocks_total']:.0f}")
    t0 = time.monotonic()
    reference, left_big = run_all(big.port, requests)
    big_seconds = time.monotonic() - t0
    end_of_part(report, part + " (big pool)", big)
    big.stop()

    small = Server(opts, ["--kv-cache-memory", str(small_blocks * block_bytes)], "kvpool-small")
    total = small.metrics()["moon:kv_cache_blocks_total"]
    t0 = time.monotonic()
    answers, left_small = run_all(small.port, requests)
    small_seconds = time.monotonic() - t0
    m = small.metrics()
    figure("small pool", f"{total:.0f} blocks ({small_blocks * block_bytes} bytes), "
           f"{m['vllm:num_preemptions_total']:.0f} preemptions")
    figure("time", f"big pool {big_seconds:.1f} s, small pool {small_seconds:.1f} s")
    same, differ = {}, []
    for i, ((kind, body), ref, got) in enumerate(zip(requests, reference, answers)):
        ok = ref and got and ref[0] == 200 and got == ref
        same.setdefault(kind, [0, 0])
        same[kind][0] += bool(ok)
        same[kind][1] += 1
        if not ok:
            differ.append((i, kind, ref, got))
    figure("identical outputs", ", ".join(f"{k} {a}/{b}" for k, (a, b) in same.items()))
    # Equal but empty or short answers would prove nothing.
    whole = sum(1 for (_, body), ref in zip(requests, reference)
                if ref and ref[0] == 200 and len(ref[1]) == body.get("n", 1)
                and all(c[2] == "length" and c[1] for c in ref[1])
                and ref[2] == body.get("n", 1) * body["max_tokens"])
    report.check(part, "every answer on the big pool is whole: n choices, each max_tokens long",
                 whole == len(requests), f"{whole} of {len(requests)}")
    for i, kind, ref, got in differ[:3]:
        print(f"    request {i} ({kind}) differs:\n      big:   {ref}\n      small: {got}")
    report.check(part, "the small pool is a tenth of the need", total <= need / 10 + 1,
                 f"{total:.0f} blocks for a need of {need}")
    report.check(part, "the small pool had to preempt (else it was not short)",
                 m["vllm:num_preemptions_total"] > 0)
    report.check(part, "every answer on the small pool equals the big pool's",
                 not differ and left_big == 0 and left_small == 0,
                 f"{len(differ)} differ, {left_big + left_small} stuck")
    end_of_part(report, part + " (small pool)", small)
    small.stop()


# ----------------------------------------------------------------------------- 5. slow clients

def part_slow(opts, report):
    part = "slow"
    timeout = 5.0 if opts.long else 2.0
    attack = 30.0 if opts.long else 8.0
    loris = 400 if opts.long else 60
    # The readers' and never-readers' answers are large (5 to 7 MB, top-20 logprobs), so
    # that they outgrow the kernel's socket buffers; few of them, so that the batch they
    # share with the normal requests stays light.
    readers = 4 if opts.long else 3
    never = 2
    print(f"\n== 5. slow clients: {loris} slowloris connections, {readers} slow stream readers, "
          f"{never} that never read; --idle-timeout {timeout:g}, {attack:g} s", flush=True)
    # Room in the KV pool for the slow readers' own requests (3,648 blocks at most), so that
    # a normal request's latency shows what the slow connections cost, not a full pool.
    server = Server(opts, ["--kv-cache-memory", "128MiB", "--idle-timeout", str(timeout),
                           "--max-queued-output", "256KiB"], "slow")
    normal = {"prompt": "Once upon a time", "max_tokens": 16}

    def timed_normal():
        t = time.monotonic()
        status, _ = post_json(server.port, "/v1/completions", normal, timeout=30)
        return status, time.monotonic() - t

    baseline = sorted(timed_normal()[1] for _ in range(10))
    before = server.metrics()
    stop = threading.Event()
    lifetimes = []  # (seconds the server held the connection, closed by the server)
    lock = threading.Lock()
    counts = {"slowloris opened": 0, "slow bodies opened": 0}

    def slowloris():
        """Keeps `loris` connections trickling a header (or, for one in five, a body) a
        byte at a time, opening a new one for each the server closes."""
        conns = {}  # client port -> (socket, opened at, bytes left to trickle)
        i = 0

        def open_one():
            nonlocal i
            try:
                s = connect(server.port, source_address(i, 200), timeout=5)
            except OSError:
                i += 1
                return
            if i % 5 == 0:
                s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000"
                          b"\r\n\r\n")
                counts["slow bodies opened"] += 1
                rest = b"{" + b" " * 99999
            else:
                counts["slowloris opened"] += 1
                rest = b"POST /v1/completions HTTP/1.1\r\nX-Slow: " + b"a" * 100000
            conns[s.getsockname()[1]] = (s, time.monotonic(), rest)
            i += 1

        while len(conns) < loris and not stop.is_set():
            open_one()
        while not stop.is_set():
            held = server_holds(server.port)
            now = time.monotonic()
            for port, (s, opened, rest) in list(conns.items()):
                if port not in held:
                    with lock:
                        lifetimes.append((now - opened, True))
                    s.close()
                    del conns[port]
                    open_one()
                    continue
                try:
                    s.send(rest[:1])
                    conns[port] = (s, opened, rest[1:])
                except OSError:
                    pass
            stop.wait(0.2)
        now = time.monotonic()
        for port, (s, opened, _) in conns.items():
            with lock:
                lifetimes.append((now - opened, False))
            s.close()

    reader_results = []

    def slow_reader(i):
        """Reads a stream of about 7 MB (more than the kernel buffers hold) 200 bytes every
        half second: the server must give up on it once --max-queued-output waits, not
        buffer the whole stream."""
        def run():
            try:
                s = connect(server.port, source_address(1000 + i, 200), rcvbuf=4096, timeout=5)
                body = dict(stream_body(i, 480, 16), logprobs=20)
                s.sendall(http_bytes("POST", "/v1/completions", json.dumps(body)))
                got = b""
                while not stop.is_set():
                    try:
                        data = s.recv(200)
                    except socket.timeout:
                        continue
                    except OSError:
                        break
                    if not data:
                        break
                    got += data
                    stop.wait(0.5)
                with lock:
                    reader_results.append(b"0\r\n\r\n" in got)
                s.close()
            except OSError:
                with lock:
                    reader_results.append(None)
        return run

    never_ports = []

    def never_reader(i):
        """Asks for about 7 MB of answer in one piece and never reads it."""
        s = connect(server.port, source_address(1200 + i, 200), rcvbuf=4096, timeout=5)
        body = {"prompt": "Once", "max_tokens": 400, "n": 32, "temperature": 1.0,
                "ignore_eos": True, "logprobs": 20}
        s.sendall(http_bytes("POST", "/v1/completions", json.dumps(body),
                             ("Connection: close",) if i % 2 == 0 else ()))
        never_ports.append(s.getsockname()[1])
        return s

    # The first half of the attack is the slow connections alone; in the second the slow
    # readers and never-readers join, whose large answers load the batch and the I/O thread.
    attackers = run_threads([slowloris])
    t_attack = time.monotonic()
    while counts["slowloris opened"] + counts["slow bodies opened"] < loris and \
            time.monotonic() - t_attack < 10:
        time.sleep(0.05)
    phases = {"slowloris": [[], 0], "slowloris + readers": [[], 0]}
    readers_threads, never_socks = [], []
    never_closed_at = None
    # After the attack, up to a minute more for the never-readers (a server without a limit
    # on them never lets go); a sanitized one takes about that long to generate their answers.
    deadline = t_attack + attack + 60 * SLACK
    while time.monotonic() - t_attack < attack or (never_closed_at is None and
                                                   time.monotonic() < deadline):
        elapsed = time.monotonic() - t_attack
        if elapsed >= attack / 2 and not never_socks:
            t_readers = time.monotonic()
            readers_threads = run_threads([slow_reader(i) for i in range(readers)])
            never_socks = [never_reader(i) for i in range(never)]
        if never_socks and never_closed_at is None and \
                not set(never_ports) & server_holds(server.port):
            never_closed_at = time.monotonic() - t_readers
        if elapsed < attack:
            status, seconds = timed_normal()
            phase = phases["slowloris + readers" if never_socks else "slowloris"]
            phase[0].append(seconds)
            phase[1] += status != 200
        time.sleep(0.2)
    stop.set()
    join_all(attackers + readers_threads, 30)
    for s in never_socks:
        s.close()
    m = server.metrics()
    closed = [t for t, by_server in lifetimes if by_server]
    # A lifetime runs from the client's connect; the server's timer from its accept, which
    # waits while the I/O thread is busy. A sanitized server can be busy for seconds, so there
    # only "closed, and not early" is checked.
    late_after = timeout + LATE_SLACK if SLACK == 1 else float("inf")
    open_too_long = [t for t, by_server in lifetimes if not by_server and t > late_after]
    early = [t for t in closed if t < timeout - 0.5]
    late = [t for t in closed if t > late_after]
    aborted = (m or {}).get("vllm:request_success_total:abort", 0) - before.get(
        "vllm:request_success_total:abort", 0)
    figure("normal request alone", f"median {baseline[5] * 1000:.0f} ms, max "
           f"{baseline[-1] * 1000:.0f} ms")
    for name, (latencies, failures) in phases.items():
        latencies.sort()
        if latencies:
            figure(f"normal request during {name}",
                   f"{len(latencies)} sent, {failures} failed, median "
                   f"{latencies[len(latencies) // 2] * 1000:.0f} ms, max "
                   f"{latencies[-1] * 1000:.0f} ms")
    figure("slow connections", f"{counts['slowloris opened']} slowloris and "
           f"{counts['slow bodies opened']} slow bodies opened, {len(closed)} closed by the "
           f"server")
    if closed:
        figure("held by the server", f"{min(closed):.2f} to {max(closed):.2f} s "
               f"(--idle-timeout {timeout:g}; lifetimes measured every 0.2 s)")
    figure("slow stream readers", f"{readers}: {reader_results.count(False)} cut off, "
           f"{reader_results.count(True)} got all, {reader_results.count(None)} failed; "
           f"{aborted:.0f} requests counted aborted")
    figure("never-reading clients let go", "no" if never_closed_at is None else
           f"{never_closed_at:.1f} s after they asked")
    # The slow connections alone must cost a normal request nothing it would notice. Beside
    # the large answers it may wait: each is rendered on the I/O thread, which stalls every
    # connection for about 0.3 s (docs/reliability.md).
    for name, bound in (("slowloris", 0.5 * SLACK), ("slowloris + readers", 2.0 * SLACK)):
        latencies, failures = phases[name]
        report.check(part, f"normal requests all answered, within {bound:g} s, during {name}",
                     latencies and failures == 0 and latencies[-1] < bound,
                     f"{failures} of {len(latencies)} failed, max "
                     f"{(latencies[-1] if latencies else 0) * 1000:.0f} ms")
    report.check(part, "slow connections were closed at the idle timeout, none early or late",
                 len(closed) >= loris and not early and not late and not open_too_long,
                 f"{len(closed)} closed, {len(early)} early, {len(late)} late, "
                 f"{len(open_too_long)} still open past it")
    report.check(part, "every slow stream reader was cut off and its request aborted",
                 reader_results.count(False) == readers and aborted >= readers,
                 f"{reader_results.count(False)} cut off, {aborted:.0f} aborted")
    report.check(part, "clients that never read their answer were let go",
                 never_closed_at is not None)
    end_of_part(report, part, server, rss_bound_mib=opts.slow_rss_mib)
    server.stop()


# ----------------------------------------------------------------------------- 6. SIGTERM

def wait_running(server, sequences, timeout=20):
    """Waits (bounded) until `sequences` run; the most seen."""
    deadline = time.monotonic() + timeout
    most = 0
    while time.monotonic() < deadline:
        m = server.metrics()
        most = max(most, m["vllm:num_requests_running"] if m else 0)
        if most >= sequences:
            break
        time.sleep(0.02)
    return most


def part_sigterm(opts, report):
    part = "sigterm"
    print("\n== 6. SIGTERM under load", flush=True)
    streams = 32 if opts.long else 12

    # Abandoned: long streams, a shutdown timeout far shorter than they need.
    server = Server(opts, ["--kv-cache-memory", "64MiB", "--shutdown-timeout", "0.5"],
                    "sigterm-abandon")
    results = [None] * streams

    def client(i, body, source):
        def run():
            results[i] = read_stream(server.port, body, source, timeout=60)
        return run

    threads = run_threads([client(i, stream_body(i, 480, 4), source_address(i, 200))
                           for i in range(streams)])
    running = wait_running(server, min(streams * 4, 256))
    report.check(part, "the streams were running when SIGTERM came (abandon)",
                 running >= min(streams * 4, 256), f"{running:.0f} sequences")
    t0 = time.monotonic()
    code = server.stop(signal.SIGTERM, 20)
    exit_seconds = time.monotonic() - t0
    join_all(threads, 20)
    cut = sum(1 for r in results if r and not (r[1] and r[1][-1] == "[DONE]"))
    logged = re.search(r"abandoning (\d+) request", server.log())
    figure("abandoned", f"{streams} streams running, SIGTERM with --shutdown-timeout 0.5: exit "
           f"code {code} after {exit_seconds:.1f} s, the log says "
           f"{logged.group(0) if logged else 'nothing'}, {cut} streams cut")
    report.check(part, "exit code 1 when requests were abandoned", code == 1, f"{code}")
    report.check(part, "the log counts the abandoned requests and the clients saw them cut",
                 logged and int(logged.group(1)) >= 1 and cut >= int(logged.group(1)),
                 f"logged {logged and logged.group(1)}, cut {cut}")

    # Drained: the same load of short requests, and time enough to finish them.
    server = Server(opts, ["--kv-cache-memory", "64MiB", "--shutdown-timeout", "30"],
                    "sigterm-drain")
    results = [None] * streams
    threads = run_threads([client(i, stream_body(i, 200, 2), source_address(i, 200))
                           for i in range(streams)])
    running = wait_running(server, min(streams * 2, 256))
    server.proc.send_signal(signal.SIGTERM)
    report.check(part, "the streams were running when SIGTERM came (drain)",
                 running >= min(streams * 2, 256), f"{running:.0f} sequences")
    time.sleep(0.05)
    after = http(server.port, "POST", "/v1/completions",
                 json.dumps({"prompt": "x", "max_tokens": 2}), timeout=5)[0]
    t0 = time.monotonic()
    code = server.stop(None, 40)  # a second SIGTERM would mean "now"
    exit_seconds = time.monotonic() - t0
    join_all(threads, 20)
    done = sum(1 for r in results if r and stream_ok(r[0], r[1], 200, 2))
    figure("drained", f"{streams} streams running, SIGTERM with --shutdown-timeout 30: "
           f"{done} complete, exit code {code} {exit_seconds:.1f} s later; a new request after "
           f"the signal got {after or 'no connection'}")
    report.check(part, "every running stream finished after the SIGTERM", done == streams,
                 f"{done} of {streams}")
    report.check(part, "exit code 0 when everything drained", code == 0, f"{code}")
    report.check(part, "no new request taken once draining", after in (0, 503), f"{after}")
    report.check(part, "no request abandoned in the log", "abandoning" not in server.log())


# ----------------------------------------------------------------------------- main

PARTS = {"fuzz": part_fuzz, "streams": part_streams, "disconnect": part_disconnect,
         "kvpool": part_kvpool, "slow": part_slow, "sigterm": part_sigterm}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--short", action="store_true", help="small counts, for CI")
    mode.add_argument("--long", action="store_true", help="the full counts of issue 15")
    ap.add_argument("--moon", default=os.path.join(ROOT, "build", "moon"), help="the binary")
    ap.add_argument("--model", default=default_model(),
                    help="GGUF file or builtin:tiny (default: stories260K-f32.gguf under "
                         "$MOON_TEST_DATA, else builtin:tiny)")
    ap.add_argument("--only", default="", help="comma-separated parts: " + ",".join(PARTS))
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--fuzz-workers", type=int, default=8)
    ap.add_argument("--fuzz-rss-mib", type=int, default=200,
                    help="bound on the fuzzed server's memory growth")
    ap.add_argument("--streams-rss-mib", type=int, default=200)
    ap.add_argument("--slow-rss-mib", type=int, default=300,
                    help="the slow part's, whose KV pool is 128 MiB")
    ap.add_argument("--time-limit", type=float, default=0,
                    help="seconds before the whole run is a failure (default 110 short, 900 long)")
    ap.add_argument("--sanitized", action="store_true",
                    help="the server is built with ASan or TSan: time bounds 10 times wider, "
                         "no memory bounds (shadow memory and quarantine are not the server's)")
    opts = ap.parse_args()
    global SLACK, LATE_SLACK
    SLACK = 10 if opts.sanitized else 1
    LATE_SLACK = 2.5 if opts.long else 5.0
    limit = opts.time_limit or (900 if opts.long else 110) * SLACK
    parts = [p for p in opts.only.split(",") if p] or list(PARTS)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        ap.error(f"unknown part(s): {', '.join(unknown)}")
    if not os.access(opts.moon, os.X_OK):
        ap.error(f"no moon binary at {opts.moon} (--moon)")

    def overtime(signum, frame):
        print(f"\nFAILED: the run took more than {limit:g} s", flush=True)
        kill_all_servers()
        os._exit(1)

    signal.signal(signal.SIGALRM, overtime)
    signal.alarm(int(limit))
    report = Report()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="moon-fault-") as workdir:
        opts.workdir = workdir
        print(f"moon fault tests ({'long' if opts.long else 'short'}): {opts.moon}, model "
              f"{opts.model}, seed {opts.seed}")
        for name in parts:
            try:
                PARTS[name](opts, report)
            except Exception as e:  # a part that cannot run is a failure, the others still run
                report.check(name, "the part ran to its end", False, f"{type(e).__name__}: {e}")
                for s in list(Server.live):
                    print(s.log()[-3000:])
                kill_all_servers()
        failed = report.failed()
        print(f"\n{len(report.checks) - len(failed)} of {len(report.checks)} checks passed in "
              f"{time.monotonic() - t0:.1f} s")
        for part, name, _, detail in failed:
            print(f"FAILED [{part}] {name}: {detail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
