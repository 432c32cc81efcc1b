"""``bioner-data``: look at corpora before training on them.

Usage::

    bioner-data stats dataset=bc5cdr [--json]
    bioner-data check dataset=bc5cdr model=minilm alignment=first [--json] [alignment.max_length=32]
    bioner-data download bc5cdr

Everything after the command is a Hydra override of ``conf/data.yaml``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from bioner.config import compose_config

COMMANDS = ("stats", "check", "download")


def _reader(cfg: DictConfig) -> Any:
    reader = instantiate(cfg.dataset)
    reader.ensure_available(download=False)
    return reader


def stats(cfg: DictConfig) -> dict[str, Any]:
    """Documents, sentences, tokens and mentions per type for every split."""
    from bioner.data.stats import corpus_stats

    started = time.perf_counter()
    result = corpus_stats(_reader(cfg))
    return {"dataset": cfg.dataset.name, "splits": result, "seconds": time.perf_counter() - started}


def check(cfg: DictConfig) -> dict[str, Any]:
    """The lossless round trip, gold spans -> sub-words -> spans, on every split."""
    from bioner.data.roundtrip import roundtrip_check

    started = time.perf_counter()
    reader = _reader(cfg)
    encoder = instantiate(cfg.model)
    alignment = instantiate(cfg.alignment)
    tokenizer = encoder.load_tokenizer()
    splits = {
        split: roundtrip_check(reader.load(split), tokenizer, alignment, reader.entity_types)
        for split in reader.splits
    }
    return {
        "dataset": cfg.dataset.name,
        "model": encoder.name,
        "alignment": {k: v for k, v in cfg.alignment.items() if k != "_target_"},
        "splits": splits,
        "seconds": time.perf_counter() - started,
    }


def download(cfg: DictConfig) -> dict[str, Any]:
    """Fetch a public corpus into the data directory (checksummed)."""
    reader = instantiate(cfg.dataset)
    reader.ensure_available(download=True)
    return {"dataset": cfg.dataset.name, "root": str(reader.data_dir), "status": "available"}


def _table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header] + [[f"{c:,}" if isinstance(c, int) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _render(command: str, result: dict[str, Any]) -> str:
    splits = result.get("splits", {})
    if command == "stats":
        types = sorted({t for s in splits.values() for t in s["per_type"]})
        header = ["split", "documents", "sentences", "tokens", "mentions", *types]
        rows = [
            [
                name,
                s["documents"],
                s["sentences"],
                s["tokens"],
                s["mentions"],
                *(s["per_type"].get(t, 0) for t in types),
            ]
            for name, s in splits.items()
        ]
        title = f"{result['dataset']}"
    elif command == "check":
        keys = ["gold", "lost", "changed", "spurious", "units", "windows", "long_units"]
        header = ["split", *keys]
        rows = [[name, *(s[k] for k in keys)] for name, s in splits.items()]
        settings = " ".join(f"{k}={v}" for k, v in result["alignment"].items())
        title = f"{result['dataset']} · model={result['model']} · {settings}"
    else:
        return f"{result['dataset']}: {result['status']} in {result['root']}"
    return f"{title}\n{_table(rows, header)}\n({result['seconds']:.1f} s)"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``bioner-data``."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    args = [a for a in args if a != "--json"]
    if not args or args[0] not in COMMANDS or args[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    command, overrides = args[0], args[1:]
    if command == "download" and overrides and "=" not in overrides[0]:
        overrides[0] = f"dataset={overrides[0]}"
    cfg = compose_config("data", overrides)
    result = {"stats": stats, "check": check, "download": download}[command](cfg)
    print(json.dumps(result, indent=2) if as_json else _render(command, result))
    if command == "check" and any(s["lost"] for s in result["splits"].values()):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
