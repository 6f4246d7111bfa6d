#!/usr/bin/env python3
"""Writes a Llama GGUF of a real model's shape with random weights, for speed comparisons
(moon against llama.cpp on the same file) on a machine that cannot download a model.

    python3 bench/make_random_llama.py --shape tinyllama-1.1b --type q8_0 -o /tmp/tl-q8_0.gguf

The vocabulary is byte-level (<unk>, <s>, </s>, the 256 byte tokens, printable ASCII) padded
with unused tokens to the shape's size, so the output layer costs what the real model's does.
The text is meaningless; only the arithmetic matters. Needs python3-numpy.
"""
import argparse
import struct

import numpy as np

# name: (layers, embedding, feed-forward, heads, KV heads, context, vocabulary)
SHAPES = {
    "tinyllama-1.1b": (22, 2048, 5632, 32, 4, 2048, 32000),
    "llama2-7b": (32, 4096, 11008, 32, 32, 4096, 32000),
    "llama3-8b": (32, 4096, 14336, 32, 8, 8192, 128256),
    # Small enough to write in a second, big enough that halving it shows in a rank's RSS
    # (tests/dist/tensor_parallel_test.py): 84 MB in F32.
    "tp-test": (4, 512, 1536, 8, 4, 1024, 8192),
}
GGML_TYPES = {"f32": 0, "f16": 1, "q8_0": 8}
ALIGNMENT = 32


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


class Writer:
    def __init__(self):
        self.kv = []
        self.tensors = []  # (name, dims, ggml type, size in bytes, make_bytes)

    def add(self, key, fmt_type, value):
        self.kv.append(gguf_string(key) + struct.pack("<I", fmt_type) + value)

    def u32(self, key, v):
        self.add(key, 4, struct.pack("<I", v))

    def f32(self, key, v):
        self.add(key, 6, struct.pack("<f", v))

    def boolean(self, key, v):
        self.add(key, 7, struct.pack("<?", v))

    def string(self, key, v):
        self.add(key, 8, gguf_string(v))

    def array(self, key, elem_type, items):
        if elem_type == 8:
            body = b"".join(gguf_string(s) for s in items)
        else:
            body = np.asarray(items, dtype={5: "<i4", 6: "<f4"}[elem_type]).tobytes()
        self.add(key, 9, struct.pack("<IQ", elem_type, len(items)) + body)

    def tensor(self, name, dims, ggml_type, nbytes, make):
        self.tensors.append((name, dims, ggml_type, nbytes, make))

    def write(self, path):
        with open(path, "wb") as f:
            f.write(b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv)))
            for kv in self.kv:
                f.write(kv)
            offset = 0
            for name, dims, ggml_type, nbytes, _ in self.tensors:
                f.write(gguf_string(name) + struct.pack("<I", len(dims)))
                f.write(struct.pack("<%dQ" % len(dims), *dims))
                f.write(struct.pack("<IQ", ggml_type, offset))
                offset += (nbytes + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
            f.write(b"\0" * (-f.tell() % ALIGNMENT))
            for i, (name, _, _, nbytes, make) in enumerate(self.tensors):
                data = make()
                assert len(data) == nbytes, name
                f.write(data)
                f.write(b"\0" * (-len(data) % ALIGNMENT))
                print(f"\r{i + 1}/{len(self.tensors)} tensors", end="", flush=True)
        print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tinyllama-1.1b")
    ap.add_argument("--type", choices=sorted(GGML_TYPES), default="q8_0")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    layers, embd, ff, heads, heads_kv, ctx, vocab = SHAPES[args.shape]
    head_dim = embd // heads
    rng = np.random.default_rng(args.seed)

    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + ["\u2581"]
    tokens += [chr(c) for c in range(ord("!"), ord("~") + 1)]
    types = [2, 3, 3] + [6] * 256 + [1] * (len(tokens) - 259)
    unused = vocab - len(tokens)
    tokens += ["<unused%d>" % i for i in range(unused)]
    types += [5] * unused  # GGUF token type 5: unused

    w = Writer()
    w.string("general.architecture", "llama")
    w.string("general.name", f"random {args.shape} ({args.type})")
    w.u32("llama.context_length", ctx)
    w.u32("llama.embedding_length", embd)
    w.u32("llama.feed_forward_length", ff)
    w.u32("llama.block_count", layers)
    w.u32("llama.attention.head_count", heads)
    w.u32("llama.attention.head_count_kv", heads_kv)
    w.u32("llama.rope.dimension_count", head_dim)
    w.f32("llama.rope.freq_base", 10000.0)
    w.f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.u32("llama.vocab_size", vocab)
    w.string("tokenizer.ggml.model", "llama")
    w.array("tokenizer.ggml.tokens", 8, tokens)
    w.array("tokenizer.ggml.scores", 6, [0.0] * vocab)
    w.array("tokenizer.ggml.token_type", 5, types)
    w.u32("tokenizer.ggml.unknown_token_id", 0)
    w.u32("tokenizer.ggml.bos_token_id", 1)
    w.u32("tokenizer.ggml.eos_token_id", 2)
    w.boolean("tokenizer.ggml.add_bos_token", True)

    def ones(n):
        w_bytes = np.ones(n, dtype="<f4").tobytes()
        return lambda: w_bytes

    def matrix(cols, rows):
        # Scaled like an initialisation (about 1/sqrt(fan_in)) so activations stay O(1).
        scale = 1.0 / np.sqrt(cols)
        if args.type == "q8_0":
            # Q8_0 blocks: an fp16 scale, then 32 int8 values.
            blocks = rows * cols // 32
            nbytes = blocks * 34

            def make():
                out = np.empty((blocks, 34), dtype=np.uint8)
                out[:, :2] = np.frombuffer(np.float16(scale / 127).tobytes(), dtype=np.uint8)
                out[:, 2:] = rng.integers(-127, 128, size=(blocks, 32), dtype=np.int8).view(np.uint8)
                return out.tobytes()

            return nbytes, make
        dtype = "<f2" if args.type == "f16" else "<f4"
        nbytes = rows * cols * np.dtype(dtype).itemsize

        def make():
            return (rng.uniform(-scale, scale, size=rows * cols).astype(np.float32)).astype(dtype).tobytes()

        return nbytes, make

    t = GGML_TYPES[args.type]
    w.tensor("token_embd.weight", [embd, vocab], t, *matrix(embd, vocab))
    w.tensor("output_norm.weight", [embd], 0, embd * 4, ones(embd))
    w.tensor("output.weight", [embd, vocab], t, *matrix(embd, vocab))
    for l in range(layers):
        p = f"blk.{l}."
        w.tensor(p + "attn_norm.weight", [embd], 0, embd * 4, ones(embd))
        w.tensor(p + "attn_q.weight", [embd, embd], t, *matrix(embd, embd))
        w.tensor(p + "attn_k.weight", [embd, heads_kv * head_dim], t, *matrix(embd, heads_kv * head_dim))
        w.tensor(p + "attn_v.weight", [embd, heads_kv * head_dim], t, *matrix(embd, heads_kv * head_dim))
        w.tensor(p + "attn_output.weight", [embd, embd], t, *matrix(embd, embd))
        w.tensor(p + "ffn_norm.weight", [embd], 0, embd * 4, ones(embd))
        w.tensor(p + "ffn_gate.weight", [embd, ff], t, *matrix(embd, ff))
        w.tensor(p + "ffn_up.weight", [embd, ff], t, *matrix(embd, ff))
        w.tensor(p + "ffn_down.weight", [ff, embd], t, *matrix(ff, embd))
    w.write(args.output)


if __name__ == "__main__":
    main()
