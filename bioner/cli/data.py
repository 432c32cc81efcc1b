"""``bioner-data``: look at corpora before training on them.

Usage::

    bioner-data stats dataset=bc5cdr [--json]
    bioner-data check dataset=bc5cdr model=minilm alignment=first [--json] [alignment.max_length=32]
        [preprocess=[shorthand,spelling]] [module.head=multilabel]
    bioner-data download bc5cdr
    bioner-data augment dataset=bc5cdr augmentation=mix n=5 [seed=1] [split=train] [--json]
    bioner-data export dataset=bc5cdr_pubtator format=brat output=bc5cdr_brat [--json]

Everything after the command is a Hydra override of ``conf/data.yaml``.
"""

from __future__ import annotations

import difflib
import json
import sys
import time
from typing import Any

from omegaconf import DictConfig

from bioner.cli.errors import DEBUG_FLAG, cli_main
from bioner.config import CONFIG_DIR, compose_config, instantiate_node
from bioner.data.document import OVERLAP_KINDS
from bioner.errors import ConfigError

COMMANDS = ("stats", "check", "download", "augment", "export")

USAGE = (
    "usage: bioner-data {stats,check,download,augment,export} [key=value ...] [--json] [--debug]"
)

HELP = f"""{USAGE}

Look at a corpus before training on it.

commands:
  stats     documents, sentences, tokens and mentions per entity type, for every split
  check     the lossless round trip gold spans -> sub-words -> spans with a model's tokenizer
            (exit 1 if a span is lost)
  download  fetch a public corpus into the data folder (BIONER_DATA_DIR), checked by sha256
  augment   show sentences before and after an augmentation
  export    write the corpus as bioner reads it (text and gold spans) in another format, into
            a new folder: brat (to view or correct in brat), bioc, pubtator, jsonl or conll

examples:
  bioner-data stats dataset=bc5cdr
  bioner-data check dataset=iob dataset.data_dir=my_corpus model=minilm alignment.max_length=32
  bioner-data download ncbi_disease
  bioner-data augment dataset=bc5cdr augmentation=mix n=5 --json
  bioner-data export dataset=bc5cdr_pubtator format=brat output=bc5cdr_brat

datasets: {{datasets}}
options: dataset=, dataset.data_dir=<corpus folder>, paths.data_dir=<data folder>, model=,
alignment=, augmentation=, n=, seed=, split=, format=, output=, splits=; --json prints JSON
instead of a table; --debug shows tracebacks."""


def _reader(cfg: DictConfig) -> Any:
    reader = instantiate_node(cfg.dataset, "dataset")
    reader.ensure_available(download=False)
    return reader


def stats(cfg: DictConfig) -> dict[str, Any]:
    """Documents, sentences, tokens, mentions per type and overlapping mentions (nested, crossing,
    same extent) for every split."""
    from bioner.data.stats import corpus_stats

    started = time.perf_counter()
    reader = _reader(cfg)
    result = corpus_stats(reader)
    summary: dict[str, Any] = {"dataset": cfg.dataset.name, "splits": result}
    # dataset=multi: each member corpus's own counts too (its types only).
    members = getattr(reader, "members", None) or {}
    if members:
        summary["members"] = {
            key: corpus_stats(member, reader.member_splits(key)) for key, member in members.items()
        }
    # What dataset.split, .relabel, .filter and .train_subset did (empty when none is set).
    summary.update(reader.preparation())
    return {**summary, "seconds": time.perf_counter() - started}


def check(cfg: DictConfig) -> dict[str, Any]:
    """The lossless round trip, gold spans -> sub-words -> spans, on every split."""
    from bioner.data.roundtrip import roundtrip_check
    from bioner.preprocess import build_preprocessor

    started = time.perf_counter()
    reader = _reader(cfg)
    encoder = instantiate_node(cfg.model, "model")
    alignment = instantiate_node(cfg.alignment, "alignment")
    tokenizer = encoder.load_tokenizer()
    # preprocess=[...]: fitted on train and applied as training (train: gold spans protected) and
    # evaluation (devel, test) apply it; spans are mapped back before they are compared.
    preprocess = build_preprocessor(cfg.get("preprocess"))
    if preprocess is not None:
        preprocess.fit(reader.load("train"))
    splits = {
        split: roundtrip_check(
            reader.load(split),
            tokenizer,
            alignment,
            reader.entity_types,
            preprocess=preprocess,
            protect=split == "train",
        )
        for split in reader.splits
    }
    result = {
        "dataset": cfg.dataset.name,
        "model": encoder.name,
        "alignment": {k: v for k, v in cfg.alignment.items() if k != "_target_"},
        "splits": splits,
        "seconds": time.perf_counter() - started,
    }
    if preprocess is not None:
        result["preprocess"] = repr(preprocess)
    return result


def download(cfg: DictConfig) -> dict[str, Any]:
    """Fetch a public corpus into the data directory (checksummed)."""
    reader = instantiate_node(cfg.dataset, "dataset")
    reader.ensure_available(download=True)
    return {"dataset": cfg.dataset.name, "root": str(reader.data_dir), "status": "available"}


def augment(cfg: DictConfig) -> dict[str, Any]:
    """Up to ``n`` sentences of ``split`` that the augmentation changes, before and after.

    Documents are visited in an order drawn from ``seed``; each is transformed as in epoch 0 of
    a training run with that seed (the transform is fitted on the train split first), and its
    changed sentences are shown with their spans marked ``[text|Label]``.
    """
    import numpy as np

    from bioner.augment.markup import mark
    from bioner.runtime.run import instantiate_callbacks

    if "_target_" not in cfg.augmentation:
        raise ConfigError(
            "bioner-data augment needs an augmentation: augmentation=mix (or mention_replacement, "
            "synonym, token_replacement, shuffle, noise, back_translation; see conf/augmentation)"
        )
    if not (isinstance(cfg.n, int) and cfg.n >= 1):
        raise ConfigError(f"n={cfg.n}: must be a positive integer (sentences to show), e.g. n=5")
    reader = _reader(cfg)
    (augmentation,) = instantiate_callbacks(None, augmentation=cfg.augmentation)
    augmentation.fit(reader.load("train"))
    docs = reader.load(cfg.split)
    order = np.random.default_rng(cfg.seed).permutation(len(docs))
    shown: list[dict[str, Any]] = []
    visited = changed_docs = 0
    for i in order:
        if len(shown) >= cfg.n:
            break
        visited += 1
        # The document's position in the split seeds it, as in training.
        new = augmentation.augment_one(docs[i], int(i), epoch=0)
        old = docs[i]
        if new.text == old.text:
            continue
        changed_docs += 1
        for (s0, e0), (s1, e1) in zip(old.sentences, new.sentences, strict=True):
            if len(shown) < cfg.n and old.text[s0:e0] != new.text[s1:e1]:
                shown.append(
                    {
                        "document": old.id,
                        "original": mark(old, s0, e0),
                        "augmented": mark(new, s1, e1),
                    }
                )
    return {
        "dataset": cfg.dataset.name,
        "augmentation": cfg.augmentation.name,
        "split": cfg.split,
        "seed": cfg.seed,
        "documents_visited": visited,
        "documents_changed": changed_docs,
        "sentences": shown,
    }


def export(cfg: DictConfig) -> dict[str, Any]:
    """Write ``splits`` of the corpus, as read (its text and gold spans, after ``dataset.split``,
    ``dataset.filter`` and ``dataset.train_subset``), in ``format`` into the new folder
    ``output``: a folder per split for ``brat``, else a file per split (``train.xml``, ...)."""
    from pathlib import Path

    from bioner.inference.formats import FOLDER_FORMATS, OUTPUT_FORMATS
    from bioner.inference.run import check_output_folder, open_output_folder, open_span_writer

    started = time.perf_counter()
    if cfg.format not in OUTPUT_FORMATS:
        raise ConfigError(f"format={cfg.format!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
    if not cfg.output:
        raise ConfigError("bioner-data export needs output=<new folder>")
    unknown = [s for s in cfg.splits if s not in ("train", "devel", "test")]
    if unknown or not cfg.splits:
        raise ConfigError(f"splits={list(cfg.splits)}: choose among train, devel, test")
    check_output_folder(cfg.output)
    reader = _reader(cfg)
    suffix = {"bioc": "xml"}.get(cfg.format, cfg.format)
    counts = {}
    with open_output_folder(cfg.output) as folder:
        for split in cfg.splits:
            docs = reader.load(split)
            target = Path(folder) / (split if cfg.format in FOLDER_FORMATS else f"{split}.{suffix}")
            with open_span_writer(target, cfg.format, reader.entity_types) as writer:
                for doc in docs:
                    writer.write(doc, doc.spans)
            counts[split] = {"documents": writer.documents, "mentions": writer.spans}
    return {
        "dataset": cfg.dataset.name,
        "format": cfg.format,
        "output": str(cfg.output),
        "splits": counts,
        "seconds": time.perf_counter() - started,
    }


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
        kinds = list(OVERLAP_KINDS)
        header = ["split", "documents", "sentences", "tokens", "mentions", *kinds, *types]

        def row(name: str, s: dict[str, Any], absent: Any = 0) -> list[Any]:
            counts = [s["documents"], s["sentences"], s["tokens"], s["mentions"]]
            counts += [s["overlaps"][k] for k in kinds]
            return [name, *counts, *(s["per_type"].get(t, absent) for t in types)]

        rows = []
        for name, s in splits.items():
            rows.append(row(name, s))
            # A member's row: "-" under the types it does not annotate (not 0: unknown). A
            # member trained on only (dataset.train_only) has no devel or test row.
            rows += [
                row(f"  {key}", member[name], "-")
                for key, member in result.get("members", {}).items()
                if name in member
            ]
        title = f"{result['dataset']}"
        if "split" in result:
            ratio = result["split"]
            title += (
                f" · dataset.split: {'+'.join(ratio['source'])} dealt by ratio "
                f"{'/'.join(f'{r:g}' for r in ratio['ratios'])}, seed {ratio['seed']}, "
                f"{'stratified by entity types' if ratio['stratify'] else 'not stratified'}"
            )
        if "relabel" in result:
            parts = []
            for name, r in result["relabel"].items():
                what = [
                    f"{verb} " + ", ".join(f"{t} {n:,}" for t, n in r[verb].items())
                    for verb in ("renamed", "dropped")
                    if r[verb]
                ]
                what += [f"merged {r['merged']:,}"] if r["merged"] else []
                parts.append(f"{name} " + (", ".join(what) or "unchanged"))
            title += "\ndataset.relabel (gold mentions): " + "; ".join(parts)
        if "filter" in result:
            parts = []
            for name, f in result["filter"].items():
                rules = ", ".join(f"{k} {v:,}" for k, v in f["removed"].items())
                parts.append(
                    f"{name} {f['documents'] - f['kept']:,}" + (f" ({rules})" if rules else "")
                )
            title += "\ndataset.filter removed: " + ", ".join(parts)
        if "repairs" in result:
            parts = [
                f"{name} " + ", ".join(f"{n:,} {what}" for what, n in kinds.items())
                for name, kinds in result["repairs"].items()
            ]
            title += "\nrepaired by a dataset option: " + "; ".join(parts)
        if "train_subset" in result:
            sub = result["train_subset"]
            title += (
                f"\ndataset.train_subset: train keeps {sub['kept']:,} of {sub['documents']:,} "
                f"documents (fraction {sub['fraction']:g}, seed {sub['seed']})"
            )
    elif command == "check":
        keys = ["gold", "beyond_head", "lost", "changed", "spurious", "units", "windows"]
        keys.append("long_units")
        if "preprocess" in result:
            keys.append("rewrites")
        header = ["split", *keys]
        rows = [[name, *(s[k] for k in keys)] for name, s in splits.items()]
        settings = " ".join(f"{k}={v}" for k, v in result["alignment"].items())
        title = f"{result['dataset']} · model={result['model']} · {settings}"
        if "preprocess" in result:
            title += f" · {result['preprocess']}"
    elif command == "export":
        header = ["split", "documents", "mentions"]
        rows = [[name, s["documents"], s["mentions"]] for name, s in splits.items()]
        title = f"{result['dataset']} -> {result['output']} (format={result['format']})"
    elif command == "augment":
        lines = [
            f"{result['dataset']}/{result['split']} · augmentation={result['augmentation']} · "
            f"seed={result['seed']}: {result['documents_changed']} of "
            f"{result['documents_visited']} documents visited changed"
        ]
        for s in result["sentences"]:
            lines += ["", f"[{s['document']}]", f"  - {s['original']}", f"  + {s['augmented']}"]
        return "\n".join(lines)
    else:
        return f"{result['dataset']}: {result['status']} in {result['root']}"
    return f"{title}\n{_table(rows, header)}\n({result['seconds']:.1f} s)"


@cli_main("bioner-data", config="data", help=False)
def main(argv: list[str] | None = None) -> int:
    """Entry point of ``bioner-data``."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    args = [a for a in args if a not in ("--json", DEBUG_FLAG)]
    if args[:1] in (["-h"], ["--help"], ["help"]) or (args and {"-h", "--help"} & set(args)):
        datasets = sorted(p.stem for p in (CONFIG_DIR / "dataset").glob("*.yaml"))
        print(HELP.replace("{datasets}", ", ".join(datasets)))
        return 0
    if not args:
        print(f"{USAGE}\n(bioner-data --help explains each command)", file=sys.stderr)
        return 2
    if args[0] not in COMMANDS:
        close = difflib.get_close_matches(args[0], COMMANDS, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        print(
            f"bioner-data: error: unknown command {args[0]!r}{hint} (commands: "
            f"{', '.join(COMMANDS)})\n{USAGE}",
            file=sys.stderr,
        )
        return 2
    command, overrides = args[0], args[1:]
    if command == "download" and overrides and "=" not in overrides[0]:
        overrides[0] = f"dataset={overrides[0]}"
    cfg = compose_config("data", overrides)
    commands = {
        "stats": stats,
        "check": check,
        "download": download,
        "augment": augment,
        "export": export,
    }
    result = commands[command](cfg)
    print(json.dumps(result, indent=2) if as_json else _render(command, result))
    if command == "check" and any(s["lost"] for s in result["splits"].values()):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
