#!/usr/bin/env python3
"""numpy's side of bench/sampling_bench.cpp: the founding document's fix (a bare argmax
over each row of logits) and numpy doing the fused pass's whole job (argmax plus the chosen
token's true log-softmax: np.max, np.exp(x - max).sum, log), for batch {1, 8, 32, 256} x
vocab {32000, 128256}, float32 rows like the C++ benchmark's (normal, sigma 3).

Run it with Debian's python3-numpy, on one core, e.g.
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE taskset -c 0 /usr/bin/python3 bench/sampling_numpy.py
Prints a markdown table (microseconds per batch, ns per row, GB/s of logits read once);
--json prints the same numbers as JSON. --cpp FILE merges the JSON output of
`sampling_bench --benchmark_out=FILE --benchmark_out_format=json` (the best repetition of
each entry) into one side-by-side table with the ratios the goals are stated in.
"""
import json
import sys
import timeit

import numpy as np

BATCHES = (1, 8, 32, 256)
VOCABS = (32000, 128256)


def bare_argmax(x):
    return np.argmax(x, axis=1)


def argmax_and_logprob(x):
    ids = np.argmax(x, axis=1)
    m = np.max(x, axis=1, keepdims=True)
    s = np.exp(x - m).sum(axis=1)
    rows = np.arange(x.shape[0])
    return ids, x[rows, ids] - m[:, 0] - np.log(s)


def best_seconds(fn, x, budget=0.5):
    """Best of several repeats, each long enough to time reliably."""
    once = timeit.timeit(lambda: fn(x), number=1)
    number = max(1, int(0.05 / max(once, 1e-9)))
    repeats = max(3, min(20, int(budget / max(once * number, 1e-9))))
    return min(timeit.repeat(lambda: fn(x), number=number, repeat=repeats)) / number


def cpp_results(path):
    """{(name, batch, vocab, threads, top): best real time in microseconds}."""
    with open(path) as f:
        data = json.load(f)
    best = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        parts = dict(p.split(":") for p in b["run_name"].split("/")[1:] if ":" in p)
        key = (b["run_name"].split("/")[0], int(parts["batch"]), int(parts["vocab"]),
               int(parts["threads"]), int(parts["top"]))
        t = b["real_time"] * {"ns": 1e-3, "us": 1.0, "ms": 1e3}[b["time_unit"]]
        best[key] = min(best.get(key, t), t)
    return best


def side_by_side(results, cpp):
    numpy = {(r["method"], r["batch"], r["vocab"]): r["us_per_batch"] for r in results}
    threads = max(k[3] for k in cpp)
    print("Microseconds per batch (best of the repetitions); GB/s of logits read for the fused "
          "pass; ratios are numpy's time over the fused pass's.")
    print()
    print("| batch x vocab | numpy argmax | numpy argmax+logsoftmax | naive C++ (1 thr) "
          f"| fused, 1 thread | fused, {threads} threads | fused+top-20, {threads} thr "
          "| fused GB/s | vs numpy full | vs numpy argmax |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for vocab in VOCABS:
        for batch in BATCHES:
            na = numpy[("numpy argmax", batch, vocab)]
            nf = numpy[("numpy argmax+logsoftmax", batch, vocab)]
            naive = cpp.get(("BM_Naive", batch, vocab, 1, 0), float("nan"))
            f1 = cpp[("BM_Fused", batch, vocab, 1, 0)]
            fn = cpp.get(("BM_Fused", batch, vocab, threads, 0), f1)
            ft = cpp.get(("BM_Fused", batch, vocab, threads, 20), float("nan"))
            best = min(f1, fn)
            gbs = batch * vocab * 4 / (best * 1e-6) / 1e9
            print(f"| {batch} x {vocab} | {na:.1f} | {nf:.1f} | {naive:.1f} | {f1:.1f} | {fn:.1f} "
                  f"| {ft:.1f} | {gbs:.1f} | {nf / best:.1f}x | {na / best:.2f}x |")


def main():
    rng = np.random.default_rng(0)
    results = []
    for vocab in VOCABS:
        for batch in BATCHES:
            x = rng.normal(0.0, 3.0, size=(batch, vocab)).astype(np.float32)
            for name, fn in (("numpy argmax", bare_argmax),
                             ("numpy argmax+logsoftmax", argmax_and_logprob)):
                sec = best_seconds(fn, x)
                results.append({
                    "method": name, "batch": batch, "vocab": vocab,
                    "us_per_batch": sec * 1e6,
                    "ns_per_row": sec * 1e9 / batch,
                    "gb_per_s": batch * vocab * 4 / sec / 1e9,
                })
    if "--cpp" in sys.argv:
        side_by_side(results, cpp_results(sys.argv[sys.argv.index("--cpp") + 1]))
        return
    if "--json" in sys.argv:
        print(json.dumps({"numpy": np.__version__, "results": results}, indent=1))
        return
    print(f"numpy {np.__version__}")
    print("| method | batch | vocab | us/batch | ns/row | GB/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['method']} | {r['batch']} | {r['vocab']} | {r['us_per_batch']:.1f} "
              f"| {r['ns_per_row']:.0f} | {r['gb_per_s']:.1f} |")


if __name__ == "__main__":
    main()
