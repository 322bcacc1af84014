#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer harnesses (fuzz/corpus/<harness>/seed-*): small,
well-formed inputs of each reader, made here from scratch (no third-party files). scripts/fuzz.sh
runs from these plus whatever earlier runs kept; rerun this only to change the seeds."""
import json
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
SEP = b"\n--8<--\n"


def put(harness, name, data):
    d = os.path.join(ROOT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, raw bytes)] -> the file (header padded to 8 bytes)."""
    header, blob = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def seeds_safetensors():
    f32 = struct.pack("<6f", 0.5, -1.0, 2.0, 0.0, 3.25, -0.125)
    put("safetensors", "f32", safetensors([("wte.weight", "F32", [2, 3], f32)], {"format": "pt"}))
    put("safetensors", "mixed", safetensors([
        ("a", "I64", [2], struct.pack("<2q", 7, -9)),
        ("b", "BF16", [2], b"\x80\x3f\x00\x40"),
        ("c", "F16", [1], b"\x00\x3c"),
        ("d", "BOOL", [3], b"\x01\x00\x01"),
        ("e", "U8", [0], b""),
        ("s", "F64", [], struct.pack("<d", 1.5)),
    ], {"format": "pt", "note": "x"}))
    put("safetensors", "empty", safetensors([]))


def seeds_config():
    put("config", "file", b"\x00" + json.dumps({
        "run": {"seed": 3, "out_dir": "runs/x", "threads": 1},
        "model": {"policy": "models/p"},
        "data": {"format": "csv", "train_path": "a.csv", "text_field": "review"},
        "ppo": {"batch_size": 8, "mini_batch_size": 4, "total_iterations": 2, "learning_rate": 1.41e-5},
        "risk": {"enabled": True, "alpha": 0.4, "n": 30, "rho": 0.95},
        "generate": {"max_new_tokens": 48, "top_k": 0, "top_p": 1.0},
    }, indent=1).encode())
    put("config", "empty-object", b"\x00{}")
    put("config", "set-int", b"\x01ppo.batch_size=16")
    put("config", "set-json", b'\x01risk.selection="random"')
    put("config", "set-float", b"\x01risk.alpha=0.2")


def byte_symbols():
    """GPT-2's byte -> printable code point table (bytes_to_unicode in the GPT-2 paper's code)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


def seeds_tokenizer():
    sym = byte_symbols()
    vocab = {sym[b]: b for b in range(256)}
    merges = [("l", "o"), ("lo", "w"), ("e", "r"), ("Ġ", "low"), ("n", "e"), ("ne", "w")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    vj = json.dumps(vocab, ensure_ascii=False).encode()
    mt = ("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n").encode()
    text = "lower newer low\n <|endoftext|> caf\u00e9 \xff".encode("utf-8", "surrogateescape")
    put("tokenizer", "vocab-merges", b"\x01" + vj + SEP + mt + SEP + SEP + text)
    put("tokenizer", "vocab-merges-config", b"\x01" + vj + SEP + mt + SEP +
        json.dumps({"eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>", "add_bos_token": True}).encode() +
        SEP + b"low lower")
    put("tokenizer", "encoder-bpe", b"\x02" + vj + SEP + mt + SEP + b"new lower")
    tj = {
        "version": "1.0",
        "added_tokens": [{"id": vocab["<|endoftext|>"], "content": "<|endoftext|>", "special": True,
                          "single_word": False, "lstrip": False, "rstrip": False, "normalized": False}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    put("tokenizer", "tokenizer-json", b"\x00" + json.dumps(tj, ensure_ascii=False).encode() + SEP + SEP + b"low newer")
    spm = dict(tj)
    spm["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
    spm["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                           {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    spm["decoder"] = {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                                                     {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    pieces = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        pieces[f"<0x{b:02X}>"] = len(pieces)
    for p in ["\u2581", "l", "o", "w", "e", "r", "n", "lo", "low", "\u2581low", "er", "\u2581lower"]:
        pieces.setdefault(p, len(pieces))
    spm["model"] = dict(tj["model"], vocab=pieces, unk_token="<unk>", byte_fallback=True, fuse_unk=True,
                        merges=["l o", "lo w", "\u2581 low", "e r", "\u2581low er"])
    spm["added_tokens"] = [{"id": i, "content": c, "special": True, "single_word": False, "lstrip": False,
                            "rstrip": False, "normalized": False} for c, i in [("<unk>", 0), ("<s>", 1), ("</s>", 2)]]
    spm["post_processor"] = {"type": "TemplateProcessing",
                             "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                             "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                             "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    put("tokenizer", "tokenizer-json-metaspace", b"\x00" + json.dumps(spm, ensure_ascii=False).encode() + SEP +
        json.dumps({"bos_token": "<s>", "eos_token": "</s>"}).encode() + SEP + "low lower \u00e9!".encode())
    wp = "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "un", "##aff", "##able", ",", "!", "h", "##ello"]) + "\n"
    put("tokenizer", "wordpiece", b"\x03" + wp.encode() + SEP + "H\u00e9llo, unaffable! \u4e2d".encode())


def seeds_dataset():
    # byte 0: format index * 2 + (1 = on_error fail); byte 1: fields and min_chars (fuzz_dataset.cpp)
    fmt = {"jsonl": 0, "csv": 1, "lines": 2, "jigsaw_csv": 3, "rtp_jsonl": 4, "uci_json": 5}
    put("dataset", "jsonl", bytes([fmt["jsonl"] * 2, 0]) +
        b'{"text": "a fine film", "label": "pos"}\n{"text": "dull", "label": 0}\n\n{"text": "x", "label": true}\n')
    put("dataset", "jsonl-dotted", bytes([fmt["jsonl"] * 2, 1 | 4]) +
        b'{"prompt": {"text": "so it goes"}, "label": "a", "score": 0.5}\n')
    put("dataset", "csv", bytes([fmt["csv"] * 2, 0]) +
        b'text,label\n"quoted, with comma",pos\n"a ""quote"" and\nnewline",neg\nplain,pos\r\n')
    put("dataset", "csv-score", bytes([fmt["csv"] * 2 + 1, 4 | 2]) + b"\xef\xbb\xbftext,score\nhello,0.25\nbye,-1e3\n")
    put("dataset", "lines", bytes([fmt["lines"] * 2, 8]) + b"first line\n\n  second\r\nthird")
    put("dataset", "jigsaw", bytes([fmt["jigsaw_csv"] * 2, 0]) +
        b'id,comment_text,toxic,severe_toxic\n1,"you are, nice",0,0\n2,awful,1,0\n')
    put("dataset", "rtp", bytes([fmt["rtp_jsonl"] * 2, 0]) +
        b'{"prompt": {"text": "So I said", "toxicity": 0.7}, "continuation": {"text": " no"}}\n'
        b'{"prompt": {"text": "Then", "toxicity": null}, "continuation": {"text": " ok"}}\n')
    put("dataset", "uci", bytes([fmt["uci_json"] * 2, 0]) + b'[{"text": "good", "class": 1}, {"text": "bad", "class": 0}]')


if __name__ == "__main__":
    seeds_safetensors()
    seeds_config()
    seeds_tokenizer()
    seeds_dataset()
    print("seeds written under", ROOT, file=sys.stderr)
