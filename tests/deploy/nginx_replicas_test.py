#!/usr/bin/python3
"""Two `moon serve` replicas behind the shipped nginx configuration (deploy/nginx/nginx.conf),
on loopback, with these checks:

  affinity   requests whose prompts share their first 256 characters all reach one replica,
             whose prefix-cache hit counter (/metrics) then grows; so do requests that
             share an X-Session-ID header whatever their prompts
  streaming  a streamed answer comes through nginx event by event (its first event arrives
             long before the last), not buffered whole
  bench      `moon bench` against the balancer completes every request
  failover   a bounded load from 4 clients; once both replicas served some of it (and 1 s
             passed), one is killed, and the load goes on until 8 requests that started
             after the kill are done: only requests in flight at the kill fail, at most one
             per client, and every request that starts after it succeeds on the other

Usage: nginx_replicas_test.py --moon BUILD/moon --model stories260K-f32.gguf
Exit code 0 when every check passed.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "common"))
from script_checks import check, free_port, summary  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "deploy", "nginx", "nginx.conf")

def wait_http(port, path, proc, what):
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early")
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


def post(port, body, headers=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("POST", "/v1/completions", json.dumps(body),
              {"Content-Type": "application/json", **(headers or {})})
    r = c.getresponse()
    return r.status, r.read()


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Replica:
    def __init__(self, moon, model, tmp, index):
        self.port = free_port()
        self.log = open(os.path.join(tmp, f"replica{index}.log"), "w")
        self.proc = subprocess.Popen(
            [moon, "serve", "-m", model, "--port", str(self.port), "--threads", "1",
             "--disable-log-stats"], stdout=self.log, stderr=subprocess.STDOUT)
        wait_http(self.port, "/health", self.proc, f"replica {index}")

    def requests(self):
        return metric(self.port, "vllm:request_success_total")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.log.close()


class Balancer:
    def __init__(self, replicas, tmp):
        self.port = free_port()
        self.prefix = os.path.join(tmp, "nginx")
        os.makedirs(self.prefix)
        text = open(CONFIG).read()
        text = text.replace("127.0.0.1:8001", f"127.0.0.1:{replicas[0].port}")
        text = text.replace("127.0.0.1:8002", f"127.0.0.1:{replicas[1].port}")
        text = text.replace("listen 127.0.0.1:8000", f"listen 127.0.0.1:{self.port}")
        if os.geteuid() == 0:  # the workers of a root nginx run as nobody: let them in
            os.chmod(tmp, 0o755)
            os.chmod(self.prefix, 0o777)
        conf = os.path.join(self.prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(text)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([nginx, "-p", self.prefix, "-c", conf, "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_http(self.port, "/lb-health", self.proc, "nginx")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def which_replica(replicas, send):
    """Runs `send` and says which replicas' finished-request counters moved, and by how much."""
    before = [r.requests() for r in replicas]
    send()
    time.sleep(0.1)
    return [r.requests() - b for r, b in zip(replicas, before)]


STORY = ("Once upon a time, there was a little girl named Lily who lived in a small house "
         "near the big green park with her mother, her father and her dog Max, and every "
         "morning she ran outside to look at the flowers and the birds and the tall trees "
         "that grew beside the quiet river, where the ducks swam all day long. ")


def affinity_checks(replicas, lb):
    for name, prefix in (("story", STORY), ("other", STORY.upper())):
        hits_before = [metric(r.port, "vllm:prefix_cache_hits_total") for r in replicas]
        moved = which_replica(replicas, lambda: [
            post(lb.port, {"prompt": prefix + f"Then {k} birds sang.", "max_tokens": 4})
            for k in range(6)])
        hits = [metric(r.port, "vllm:prefix_cache_hits_total") - h
                for r, h in zip(replicas, hits_before)]
        target = max(range(2), key=lambda i: moved[i])
        check(f"affinity ({name} prefix): all 6 requests reached one replica",
              sorted(moved) == [0, 6], f"per replica {moved}")
        check(f"affinity ({name} prefix): that replica's prefix cache hit", hits[target] > 0,
              f"hit tokens per replica {hits}")
    moved = which_replica(replicas, lambda: [
        post(lb.port, {"prompt": f"Prompt number {k} is different.", "max_tokens": 2},
             {"X-Session-ID": "session-42"}) for k in range(6)])
    check("affinity (X-Session-ID): all 6 requests reached one replica", sorted(moved) == [0, 6],
          f"per replica {moved}")


def streaming_check(lb):
    c = http.client.HTTPConnection("127.0.0.1", lb.port, timeout=60)
    c.request("POST", "/v1/completions",
              json.dumps({"prompt": "Once upon a time", "max_tokens": 400, "ignore_eos": True,
                          "stream": True}), {"Content-Type": "application/json"})
    r = c.getresponse()
    start = time.time()
    first = None
    events = 0
    while True:
        line = r.readline()
        if not line:
            break
        if line.startswith(b"data: "):
            events += 1
            if first is None:
                first = time.time() - start
    total = time.time() - start
    check("streaming: events arrive through nginx as they are made",
          first is not None and events >= 10 and first < total / 4,
          f"{events} events, first after {first or 0:.3f} s of {total:.3f} s")


def bench_check(moon, lb, tmp):
    result = os.path.join(tmp, "bench.json")
    out = subprocess.run([moon, "bench", "--port", str(lb.port), "--num-prompts", "16",
                          "--random-input-len", "32", "--random-output-len", "16",
                          "--vocab-size", "512", "--max-concurrency", "4", "--save-result",
                          "--result-filename", result], capture_output=True, text=True,
                         timeout=300)
    ok = out.returncode == 0 and os.path.exists(result)
    completed = json.load(open(result)).get("completed") if ok else None
    check("bench: moon bench through the balancer completes every request", completed == 16,
          f"completed {completed}; {out.stdout[-300:]}{out.stderr[-300:]}")


def failover_check(replicas, lb):
    results = []  # (start time, end time, ok)
    lock = threading.Lock()
    killed_at = [None]
    begin = time.time()

    def enough():
        """Load runs until 8 requests that started after the kill are done (sanitized builds
        are many times slower, so this counts requests rather than seconds), 60 s at most."""
        with lock:
            after = sum(1 for s, _, _ in results if killed_at[0] and s > killed_at[0] + 0.05)
        return after >= 8 or time.time() > begin + 60

    def client(c):
        k = 0
        while not enough():
            k += 1
            start = time.time()
            try:
                status, body = post(lb.port, {"prompt": f"Story {c}-{k}: {STORY[k % 97:][:40]}",
                                              "max_tokens": 100, "ignore_eos": True,
                                              "stream": True}, timeout=30)
                ok = status == 200 and b"[DONE]" in body and b'"error"' not in body
            except Exception:
                ok = False
            with lock:
                results.append((start, time.time(), ok))

    start_counts = [r.requests() for r in replicas]
    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    # Both replicas have served some of this load (at least 1 s of it) before one dies.
    while time.time() < begin + 20:
        served = [r.requests() - s for r, s in zip(replicas, start_counts)]
        if time.time() > begin + 1 and min(served) > 0:
            break
        time.sleep(0.05)
    replicas[1].proc.kill()
    with lock:
        killed_at[0] = time.time()
    kill = killed_at[0]
    for t in threads:
        t.join(90)
    failed = [r for r in results if not r[2]]
    after = [r for r in results if r[0] > kill + 0.05]
    check("failover: both replicas served before the kill", min(served) > 0,
          f"per replica {served}")
    check("failover: only requests in flight at the kill failed (at most one per client)",
          len(failed) <= 4 and all(s <= kill + 0.05 and e >= kill for s, e, _ in failed),
          f"{len(failed)} failed of {len(results)}")
    check("failover: every request after the kill succeeded", all(ok for _, _, ok in after),
          f"{sum(ok for _, _, ok in after)}/{len(after)}")
    check("failover: the load went on after the kill", len(after) >= 8, f"{len(after)} requests")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moon", required=True)
    ap.add_argument("--model", required=True)
    args = ap.parse_args()
    start = time.time()
    tmp = tempfile.mkdtemp(prefix="moon-nginx-")
    replicas, lb = [], None
    try:
        replicas = [Replica(args.moon, args.model, tmp, i) for i in range(2)]
        lb = Balancer(replicas, tmp)
        affinity_checks(replicas, lb)
        streaming_check(lb)
        bench_check(args.moon, lb, tmp)
        failover_check(replicas, lb)
    finally:
        if lb:
            lb.stop()
        for r in replicas:
            r.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return summary(time.time() - start)


if __name__ == "__main__":
    sys.exit(main())
