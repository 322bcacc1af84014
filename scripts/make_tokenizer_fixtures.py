#!/usr/bin/env python3
"""Tokenizer fixtures: small tokenizers of each Hugging Face style, trained here with the `tokenizers`
library on this repository's own text (README.md, docs/*.md) plus generated strings, and what
`tokenizers` encodes and decodes for a test corpus, for tests/text/tokenizer_json_test.cpp.

No hub access and no third-party data: every tokenizer is trained from scratch (vocab ~600-900),
then its tokenizer.json is edited into the style of a real family. Styles (one folder each):
  gpt2      ByteLevel(use_regex) pre-tokenizer and decoder, <|endoftext|>, lstrip/rstrip added tokens
  llama3    Split(Llama-3 regex, Isolated) + ByteLevel(use_regex=false), ignore_merges, BOS template
  qwen2     NFC + Split(Qwen2 regex) + ByteLevel(use_regex=false), <|im_start|>/<|im_end|>
  smollm2   Sequence[Digits(individual_digits), ByteLevel]
  llama2    Prepend+Replace normalizer, BPE byte_fallback + <0x00>..<0xFF>, Replace/ByteFallback/Fuse/Strip
            decoder, <s> template; tokenizer_config.json add_bos_token=true
  mistral   Metaspace(prepend_scheme first, split false) pre-tokenizer, byte_fallback, same decoder
  metaspace Metaspace(always, split true), no byte fallback: unk (fuse_unk), Metaspace decoder, </s> suffix
Each folder: tokenizer.json, tokenizer_config.json, expected.json
  {"cases": [{"text", "ids" (add_special_tokens=False), "ids_special" (=True), "decoded" (decode(ids)),
              "decoded_special" (decode(ids_special))}], "bos_id", "eos_id", "pad_id"}
(decode with skip_special_tokens=False). Plus versions.json (library versions).

Made with tokenizers 0.23.3 (transformers 5.24.0 for the cross-check), Python 3.
Rerun:  python3 -m venv .venv-tok && .venv-tok/bin/pip install tokenizers
        .venv-tok/bin/python scripts/make_tokenizer_fixtures.py   [--out tests/fixtures/tokenizers]
Deterministic for one tokenizers version (the trainer is run single-threaded, RAYON_NUM_THREADS=1).
"""
import argparse
import glob
import json
import os
import sys

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    import tokenizers
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers, processors, trainers
except ImportError as e:  # pragma: no cover
    sys.exit(f"make_tokenizer_fixtures: {e}; pip install tokenizers")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def repo_lines():
    """Our own prose: README.md and docs/*.md, one non-empty line each."""
    lines = []
    for path in [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md"))):
        with open(path, encoding="utf-8") as f:
            lines += [l.rstrip("\n") for l in f if l.strip()]
    return lines


GENERATED = [
    "The café served crème brûlée to the naïve señor in São Paulo.",
    "Zürich, Kraków, Ærøskøbing, Đà Nẵng, İstanbul, Ångström.",
    "日本語のテキストを分割します。東京は大きい都市です。",
    "中文分词测试：我们今天去北京。",
    "한국어 문장도 있습니다.",
    "Привет, мир! Как дела?",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "Emoji: 😀 👋🏽 🇫🇷 👩‍👩‍👧 ❤️ 🎉🎉🎉",
    "Numbers 0 7 42 123 1234 98765 3.14159 2,718,281 1e-9 0x1F 2024-06-11 12:30",
    "I'm sure you're right, we'll see; they've said it's done, I'd say. DON'T SHOUT, IT'S LOUD, WE'LL GO.",
    "  leading spaces, trailing spaces   ",
    "tabs\tand\t\ttabs, new\nlines\n\nand\r\nCRLF",
    "    def f(x):\n        return x * 2  # indented code\n",
    "a\u00a0b\u3000c\u2009d",
    "e\u0301 vs \u00e9, A\u030a vs \u00c5, \ufb01 ligature, \u2460 circled, \uff21 fullwidth",
]


def test_corpus(specials):
    """~150 strings: edge cases, every added token embedded in text, and lines of our docs."""
    cases = [
        "", " ", "  ", "   ", "\n", "\n\n", "\t", " \t\n ", "\r\n", "a", "A", "hello", " hello", "hello ",
        "Hello world", "Hello  world", "Hello   world", "hello\nworld", "hello\n\nworld", "hello \n world",
        "hello\t\tworld", "trailing   ", "   leading", "x\n", "\nx", "end.  ", "a  b  c", "a \n\n b",
        "0", "7", "12", "123", "1234", "12345", "1234567890", "3.14159", "12,345,678", "v1.2.3", "abc123def",
        "1 2 3", "  42  ", "2024-06-11", "+1 (555) 010-9999",
        "don't", "I'M", "it'S", "'s", "'ll've", "WE'LL", "they're", "o'clock", "rock'n'roll",
        "café", "naïve", "résumé", "Ünïcödé", "e\u0301", "\u00e9", "A\u030a", "\ufb01", "\u2460\u2461",
        "😀", "👋🏽", "🇫🇷", "👩‍👩‍👧", "❤️", "a😀b", " 😀 ", "日本語", "中文", "東京タワー", "한국어",
        "Привет", "مرحبا", "नमस्ते", "\u00a0", "a\u00a0b", "\u3000", "a\u2028b", "\u0085x", "x\u000by",
        "!!!", "?!?", "...", "---", "()[]{}", "<>", "a,b;c:d", "#include <vector>", "x += 1;", "\"quoted\"",
        "path/to/file.txt", "https://example.com/a?b=c&d=e", "user@example.com", "$100 and 50%",
        "UPPER lower MiXeD", "CamelCaseWord", "snake_case_word", "kebab-case-word", "ALLCAPS",
        "the the the the the", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ab" * 40,
    ]
    cases += GENERATED
    for s in specials:
        cases += [s, f"{s}", f"Hello{s}world", f"Hello {s} world", f"  {s}  ", f"{s}{s}", f"{s}\n{s}",
                  f"x {s}y", f"x{s} y"]
    if len(specials) >= 2:
        cases.append(f"{specials[0]} mixed {specials[1]} tokens {specials[0]}")
    cases.append(specials[0][:-1] if specials else "<|")  # a near miss is plain text
    lines = repo_lines()
    cases += lines[:: max(1, len(lines) // 40)][:40]
    seen, out = set(), []
    for c in cases:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


def train_corpus():
    lines = repo_lines()
    return lines + GENERATED * 3


def train(tok, vocab_size, special_tokens, alphabet=None, limit_alphabet=None):
    kw = dict(vocab_size=vocab_size, special_tokens=special_tokens, show_progress=False, min_frequency=2)
    if alphabet is not None:
        kw["initial_alphabet"] = alphabet
    if limit_alphabet is not None:
        kw["limit_alphabet"] = limit_alphabet
    tok.train_from_iterator(train_corpus(), trainer=trainers.BpeTrainer(**kw))
    return tok


def edit(tok, fn):
    """Round trip through JSON so that fields the Python API does not expose can be set."""
    j = json.loads(tok.to_str())
    fn(j)
    return Tokenizer.from_str(json.dumps(j, ensure_ascii=False))


def added(tok, content, special, lstrip=False, rstrip=False, normalized=None):
    t = AddedToken(content, special=special, lstrip=lstrip, rstrip=rstrip,
                   normalized=(not special) if normalized is None else normalized)
    if special:
        tok.add_special_tokens([t])
    else:
        tok.add_tokens([t])


def byte_level_base(pre, vocab_size, special):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    return train(tok, vocab_size, special, alphabet=pre_tokenizers.ByteLevel.alphabet())


def make_gpt2():
    tok = byte_level_base(pre_tokenizers.ByteLevel(add_prefix_space=False), 800, ["<|endoftext|>"])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    added(tok, "<tool>", special=False, lstrip=True)
    added(tok, "</tool>", special=False, rstrip=True)
    added(tok, "<|pad|>", special=True)
    config = {"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
              "pad_token": {"__type": "AddedToken", "content": "<|pad|>", "special": True}, "add_prefix_space": False}
    return tok, config, ["<|endoftext|>", "<tool>", "</tool>", "<|pad|>"]


def make_llama3():
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok = byte_level_base(pre, 800, ["<|begin_of_text|>", "<|end_of_text|>"])
    bos = tok.token_to_id("<|begin_of_text|>")

    # Whole pre-tokens put into the vocab without a merge: only ignore_merges emits them whole.
    def fn(j):
        j["model"]["ignore_merges"] = True
        vocab = j["model"]["vocab"]
        nxt = max(vocab.values()) + 1
        for word in ["Ġtokenizer", "Ġrisk-averse", "Ġrarlhf", "Ġzyzzyva"]:
            if word not in vocab:
                vocab[word] = nxt
                nxt += 1
    tok = edit(tok, fn)
    added(tok, "<|reserved_special_token_0|>", special=True)
    added(tok, "<|eot_id|>", special=True)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
              "eos_token": "<|eot_id|>"}
    return tok, config, ["<|begin_of_text|>", "<|eot_id|>", "<|reserved_special_token_0|>"]


def make_qwen2():
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok = byte_level_base(pre, 800, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.normalizer = normalizers.NFC()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    added(tok, "<think>", special=False)
    config = {"tokenizer_class": "Qwen2Tokenizer", "bos_token": None, "eos_token": "<|im_end|>",
              "pad_token": "<|endoftext|>"}
    return tok, config, ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>"]


def make_smollm2():
    pre = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok = byte_level_base(pre, 700, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    config = {"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
              "pad_token": "<|im_end|>"}
    return tok, config, ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]


BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]
SP_DECODER = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                decoders.Strip(" ", 1, 0)])


def sentencepiece_base(normalizer, pre, vocab_size, byte_fallback, limit_alphabet):
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=byte_fallback, fuse_unk=True))
    if normalizer is not None:
        tok.normalizer = normalizer
    if pre is not None:
        tok.pre_tokenizer = pre
    specials = ["<unk>", "<s>", "</s>"] + (BYTE_TOKENS if byte_fallback else [])
    tok = train(tok, vocab_size, specials, limit_alphabet=limit_alphabet)

    # As in Llama-2's tokenizer.json: <0xXX> live in the vocab, only <unk>/<s>/</s> are added tokens;
    # the trainer may drop model options, so they are set again here.
    def fn(j):
        j["added_tokens"] = [t for t in j["added_tokens"] if t["content"] in ("<unk>", "<s>", "</s>")]
        j["model"].update({"unk_token": "<unk>", "byte_fallback": byte_fallback, "fuse_unk": True})
    return edit(tok, fn)


def make_llama2():
    norm = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok = sentencepiece_base(norm, None, 900, True, 60)
    tok.decoder = SP_DECODER
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    added(tok, "<|user|>", special=False, lstrip=True, rstrip=True)
    config = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
              "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": False, "normalized": False,
                            "rstrip": False, "single_word": False, "special": True}, "eos_token": "</s>",
              "unk_token": "<unk>", "pad_token": None, "legacy": True}
    return tok, config, ["<s>", "</s>", "<unk>", "<|user|>"]


def make_mistral():
    pre = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok = sentencepiece_base(None, pre, 900, True, 60)
    tok.decoder = SP_DECODER
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    added(tok, "[INST]", special=True)
    added(tok, "[/INST]", special=True)
    config = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
              "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "legacy": False}
    return tok, config, ["<s>", "</s>", "[INST]", "[/INST]"]


def make_metaspace():
    pre = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok = sentencepiece_base(normalizers.NFKC(), pre, 600, False, 50)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", tok.token_to_id("</s>"))])
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "</s>", "unk_token": "<unk>",
              "pad_token": "<unk>"}
    return tok, config, ["</s>", "<s>", "<unk>"]


STYLES = {"gpt2": make_gpt2, "llama3": make_llama3, "qwen2": make_qwen2, "smollm2": make_smollm2,
          "llama2": make_llama2, "mistral": make_mistral, "metaspace": make_metaspace}


def token_id(tok, spec):
    if spec is None:
        return -1
    content = spec["content"] if isinstance(spec, dict) else spec
    i = tok.token_to_id(content)
    return -1 if i is None else i


def cross_check(out):
    """With transformers installed: reports whether AutoTokenizer on each folder (tokenizer_config.json
    included) gives the recorded ids_special (informative only: tokenizers is the oracle). Returns its version."""
    try:
        import transformers
        from transformers import AutoTokenizer
    except ImportError:
        print("transformers not installed: cross-check skipped")
        return None
    for name in STYLES:
        d = os.path.join(out, name)
        try:
            t = AutoTokenizer.from_pretrained(d)
        except Exception as e:  # noqa: BLE001 (a report, not a check)
            print(f"{name}: transformers cannot load it ({type(e).__name__}: {e})")
            continue
        with open(os.path.join(d, "expected.json"), encoding="utf-8") as f:
            cases = json.load(f)["cases"]
        bad = [c["text"] for c in cases if t(c["text"])["input_ids"] != c["ids_special"]]
        if bad:
            print(f"{name}: transformers' {type(t).__name__} differs from tokenizers on {len(bad)} of {len(cases)} "
                  f"texts, e.g. {bad[0]!r}")
        else:
            print(f"{name}: transformers' {type(t).__name__} agrees on all {len(cases)} texts")
    return transformers.__version__


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "tokenizers"))
    args = ap.parse_args()
    for name, make in STYLES.items():
        tok, config, specials = make()
        d = os.path.join(args.out, name)
        os.makedirs(d, exist_ok=True)
        tok.save(os.path.join(d, "tokenizer.json"), pretty=False)
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=1)
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))  # what the C++ side will load
        cases = []
        for text in test_corpus(specials):
            ids = tok.encode(text, add_special_tokens=False).ids
            ids_special = tok.encode(text, add_special_tokens=True).ids
            cases.append({"text": text, "ids": ids, "ids_special": ids_special,
                          "decoded": tok.decode(ids, skip_special_tokens=False),
                          "decoded_special": tok.decode(ids_special, skip_special_tokens=False)})
        expected = {"style": name, "vocab_size": tok.get_vocab_size(with_added_tokens=True),
                    "bos_id": token_id(tok, config.get("bos_token")), "eos_id": token_id(tok, config.get("eos_token")),
                    "pad_id": token_id(tok, config.get("pad_token")), "cases": cases}
        with open(os.path.join(d, "expected.json"), "w", encoding="utf-8") as f:
            json.dump(expected, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        sizes = {f: os.path.getsize(os.path.join(d, f)) for f in sorted(os.listdir(d))}
        print(f"{d}: {len(cases)} cases, vocab {expected['vocab_size']}, bytes {sizes}")
    versions = {"tokenizers": tokenizers.__version__, "transformers": cross_check(args.out), "python": sys.version.split()[0],
                "script": "scripts/make_tokenizer_fixtures.py"}
    with open(os.path.join(args.out, "versions.json"), "w") as f:
        json.dump(versions, f, indent=1)
        f.write("\n")
    print("versions:", versions)


if __name__ == "__main__":
    main()
