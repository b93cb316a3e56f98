"""CLIP's byte-level BPE vocabulary, built from OpenAI's merge list.

OpenAI CLIP (and open_clip, which ships the same file) tokenizes with 48,894
BPE merges over a byte alphabet.  The Hugging Face CLIPTokenizer reads the same
vocabulary as ``vocab.json`` (token -> id) and ``merges.txt``; this module turns
the one into the other, in the order OpenAI's ``simple_tokenizer.py`` assigns
ids, so ids match the real models: 256 byte symbols, the same 256 with the
end-of-word marker ``</w>``, one token per merge, then the two special tokens.
"""

from __future__ import annotations

# simple_tokenizer.py keeps merges 1 .. 49152-256-2 of the file (line 0 is a header).
MERGES_USED = 49152 - 256 - 2
START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"


def bytes_to_unicode() -> list[str]:
    """CLIP's reversible byte -> printable character table (GPT-2 BPE), in byte-table order."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def vocab_from_merges(bpe_text: str) -> tuple[dict[str, int], list[str]]:
    """``bpe_simple_vocab_16e6.txt`` -> (vocab token -> id, the merge lines used)."""
    lines = bpe_text.split("\n")[1 : MERGES_USED + 1]
    merges = [tuple(line.split()) for line in lines]
    if len(merges) != MERGES_USED or any(len(m) != 2 for m in merges):
        raise ValueError(f"expected {MERGES_USED} merge pairs, got {len(merges)}: not CLIP's bpe_simple_vocab_16e6")
    symbols = bytes_to_unicode()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [START_TOKEN, END_TOKEN]
    return {token: index for index, token in enumerate(tokens)}, [" ".join(m) for m in merges]
