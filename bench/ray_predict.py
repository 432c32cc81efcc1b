"""``bioner-predict runner=ray`` against the single process, on PubMed XML.

The BC5CDR test abstracts (``bc5cdr_pubtator/CDR_TestSet.PubTator.txt``, 500 documents; the
first ``--limit`` for a smoke run) are
written as PubMed XML (``tests/fixtures/pubmed_xml.py``, real schema, gzip) into ``--shards``
files, and tagged by ``bioner-predict`` three ways, each in its own process:

- ``local``: ``runner=local`` (one process, ``tagger.*`` defaults, torch's default threads: one
  per core), one output file; ``local1``: the same on one thread (``OMP_NUM_THREADS=1``, as a
  one-CPU actor runs);
- ``ray1`` / ``ray2``: ``runner=ray runner.num_actors=1`` / ``2`` (one CPU slot each), one output
  file per input file.

Each is run on the whole corpus and on a one-document file; the one-document run's wall time is
the fixed cost (Python, imports, model loading, starting Ray and its actors), so
``documents/s = (N - 1) / (wall(N) - wall(1))`` is the steady rate. ``logged_s`` is the time the
run itself logs ("tagged N documents ... in X s"): the tagging alone for ``local``, tagging plus
starting the actors for ``ray``. Per-actor efficiency is
``rate(rayK) / (K * rate(ray1))``. Peak memory: the resident set of every process of the run's
tree is sampled every 0.2 s from ``/proc``: the driver, each Ray actor (``ray::MapWorker``) and
the whole tree at its largest. Finally the spans (offsets and type) of every document of the Ray
runs are compared with the single process's.

It also times the Ray driver's own work per document (decoding a tagged row and writing it),
the ceiling of documents/s one driver can take from any number of actors.

The model: ``--model <run or exported folder>``, or by default MiniLM (``model=minilm``) with a
random, seeded classification head, exported untrained (speed does not depend on the weights;
the spans of a random head are plentiful and arbitrary, which makes the comparison harder, not
easier). Usage::

    BIONER_DATA_DIR=../shared/data python bench/ray_predict.py --work /tmp/ray_bench

For ``local`` the tagging time it logs gives a second rate (``tagging_only_documents_per_s``).
For ``ray`` no such in-run rate is given: rows come back in input order, in bursts as Ray Data
releases blocks (in one run all 500 documents came back within the last second), so the time
of the first document back is no start-up time. On a machine whose load varies, the fixed costs
vary by tens of seconds and the difference can fail (``None``).

The script ends by printing one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fixture_module():
    spec = importlib.util.spec_from_file_location(
        "pubmed_xml", REPO / "tests" / "fixtures" / "pubmed_xml.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_corpus(work: Path, shards: int, limit: int | None) -> tuple[Path, Path, int]:
    """The BC5CDR test abstracts (the first ``limit``) as ``shards`` PubMed files, a
    one-document file, and the number of documents."""
    from bioner.config import compose_config
    from bioner.inference.inputs import read_pubtator

    pubmed_xml = fixture_module()
    data_dir = Path(compose_config("data", []).paths.data_dir)  # BIONER_DATA_DIR
    source = data_dir / "bc5cdr_pubtator" / "CDR_TestSet.PubTator.txt"
    articles = []
    for record in read_pubtator(source):
        end = record.meta["title_end"]
        title, abstract = record.text[:end], record.text[end + 1 :]
        articles.append(pubmed_xml.plain_article(record.id, title, abstract))
    articles = articles[:limit] if limit else articles
    corpus, one = work / "pubmed", work / "one"
    subprocess.run(["rm", "-rf", str(corpus), str(one)], check=True)
    for folder in (corpus, one):
        folder.mkdir(parents=True)
    size = -(-len(articles) // shards)
    for i in range(shards):
        pubmed_xml.write_pubmed(
            corpus / f"bench26n{i + 1:04d}.xml.gz", articles[i * size : (i + 1) * size]
        )
    pubmed_xml.write_pubmed(one / "bench26n9999.xml.gz", articles[:1])
    return corpus, one, len(articles)


def export_minilm(folder: Path) -> Path:
    """MiniLM with a seeded random head over BC5CDR's labels, exported as bioner-train does."""
    if (folder / "config.json").is_file():
        return folder
    import torch
    from hydra.utils import instantiate

    from bioner.config import compose_config
    from bioner.data.alignment import Alignment
    from bioner.inference.export import export_pretrained

    types = ["Chemical", "Disease"]
    encoder = instantiate(compose_config("data", ["model=minilm"]).model)
    model = encoder.load_model(dict(enumerate(Alignment().labels(types))))
    torch.manual_seed(0)
    torch.nn.init.normal_(model.classifier.weight, std=1.0)
    metadata = {
        "alignment": {"_target_": "bioner.data.alignment.Alignment", "label_strategy": "first"},
        "entity_types": types,
    }
    return export_pretrained(model, encoder.load_tokenizer(), folder, metadata)


def _tree(root: int) -> dict[int, tuple[str, int]]:
    """``pid -> (command line, RSS bytes)`` of ``root`` and its descendants (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    info: dict[int, tuple[str, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        ppid = int(fields.get("PPid", "0").strip())
        rss = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
        children.setdefault(ppid, []).append(int(entry))
        info[int(entry)] = (cmd.strip(), rss)
    found, stack = {}, [root]
    while stack:
        pid = stack.pop()
        if pid in info:
            found[pid] = info[pid]
        stack += children.get(pid, [])
    return found


def run(name: str, args: list[str], threads: int | None = None) -> dict:
    """Run ``bioner-predict`` with ``args``; wall time and peak RSS (driver, actors, tree)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "bioner.predict", *args]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peaks: dict[int, tuple[str, int]] = {}
    tree_peak = 0
    done = threading.Event()
    stderr: list[bytes] = []
    reader = threading.Thread(target=lambda: stderr.append(proc.stderr.read()))
    reader.start()
    while not done.is_set():
        tree = _tree(proc.pid)
        tree_peak = max(tree_peak, sum(rss for _, rss in tree.values()))
        for pid, (command, rss) in tree.items():
            if rss > peaks.get(pid, ("", 0))[1]:
                peaks[pid] = (command, rss)
        if proc.poll() is not None:
            done.set()
        time.sleep(0.2)
    wall = time.perf_counter() - start
    reader.join()
    if proc.returncode != 0:
        sys.exit(f"{name} failed:\n{b''.join(stderr).decode()[-3000:]}")
    mib = 1 << 20
    # Both runners log "tagged N documents (...): S spans in X s": for runner=local X is the
    # tagging alone (the model is loaded before), for runner=ray it includes starting the actors.
    log = b"".join(stderr)
    logged = re.search(rb"tagged (\d+) documents .*? in ([\d.]+) s", log)
    first = re.search(rb"the first document back after ([\d.]+) s", log)
    actors = [rss / mib for cmd, rss in peaks.values() if cmd.startswith("ray::MapWorker")]
    return {
        "wall_s": round(wall, 2),
        "driver_peak_mib": round(peaks[proc.pid][1] / mib),
        "actor_peak_mib": [round(a) for a in sorted(actors)],
        "tree_peak_mib": round(tree_peak / mib),
        "logged_s": float(logged.group(2)) if logged else None,
        "first_document_s": float(first.group(1)) if first else None,
    }


def spans_of(paths: list[Path]) -> dict[str, list]:
    out = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            out[record["id"]] = [(s["start"], s["end"], s["type"]) for s in record["spans"]]
    return out


def driver_cost(local_output: Path) -> dict:
    """The Ray driver's own work per document (decode a tagged row, write it as JSONL), timed
    in this process on the single process's output: the ceiling of documents/s one driver
    can take from any number of actors."""
    import io

    from bioner.inference.formats import open_writer
    from bioner.inference.ray_runner import row_document

    rows = []
    for line in local_output.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        spans = [[s["start"], s["end"], s["type"], s["score"], None] for s in record["spans"]]
        rows.append(
            {
                "id": record["id"],
                "text": record["text"],
                "meta": "{}",
                "words": "[]",
                "sentences": "[]",
                "spans": json.dumps(spans),
            }
        )
    writer = open_writer("jsonl", io.StringIO())
    start = time.perf_counter()
    for _ in range(5):
        for row in rows:
            writer.write(*row_document(row))
    seconds = (time.perf_counter() - start) / (5 * len(rows))
    return {"us_per_document": round(seconds * 1e6, 1), "documents_per_s": round(1 / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/ray_bench"))
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64, help="runner.batch_size")
    parser.add_argument("--recipes", default="local,ray1,ray2")
    parser.add_argument("--limit", type=int, default=None, help="first N abstracts (a smoke run)")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    corpus, one, documents = write_corpus(work, args.shards, args.limit)
    model = args.model or export_minilm(work / "minilm_random_head")
    results: dict[str, dict] = {}
    for recipe in args.recipes.split(","):
        figures = {}
        for size, source in (("one", one), ("all", corpus)):
            out = work / "out" / f"{recipe}_{size}"
            subprocess.run(["rm", "-rf", str(out)], check=True)
            common = [f"model={model}", f"input={source}", "input_format=pubmed"]
            if recipe.startswith("local"):
                extra = [f"output={out / 'all.jsonl'}"]
            else:
                actors = int(recipe.removeprefix("ray"))
                extra = [
                    f"output={out}",
                    "runner=ray",
                    f"runner.num_actors={actors}",
                    f"runner.batch_size={args.batch_size}",
                    "runner.progress=false",
                ]
            threads = 1 if recipe == "local1" else None
            figures[size] = run(f"{recipe} {size}", common + extra, threads)
            print(recipe, size, figures[size], flush=True)
        whole = figures["all"]
        extra_s = whole["wall_s"] - figures["one"]["wall_s"]
        results[recipe] = {**whole, "fixed_s": figures["one"]["wall_s"]}
        # The steady rate by the difference of the wall times (None where the noise in the fixed
        # cost exceeds the tagging time); for local also its logged tagging time alone.
        results[recipe]["documents_per_s"] = (
            round((documents - 1) / extra_s, 2) if extra_s > 0 else None
        )
        if recipe.startswith("local"):
            results[recipe]["tagging_only_documents_per_s"] = round(
                documents / whole["logged_s"], 2
            )
    outputs = {
        recipe: sorted((work / "out" / f"{recipe}_all").glob("*.jsonl")) for recipe in results
    }
    local = next((r for r in outputs if r.startswith("local")), None)
    reference = spans_of(outputs[local]) if local else None
    for recipe, paths in outputs.items():
        spans = spans_of(paths)
        results[recipe]["documents"] = len(spans)
        results[recipe]["spans"] = sum(len(s) for s in spans.values())
        if reference is not None and recipe != local:
            same = sum(spans.get(k) == v for k, v in reference.items())
            results[recipe]["documents_with_local_spans"] = f"{same}/{len(reference)}"
    if "ray1" in results:
        base = results["ray1"]["documents_per_s"]
        for recipe in results:
            if recipe.startswith("ray") and base and results[recipe]["documents_per_s"]:
                k = int(recipe.removeprefix("ray"))
                results[recipe]["per_actor_efficiency"] = round(
                    results[recipe]["documents_per_s"] / (k * base), 3
                )
    if local:
        results["driver"] = driver_cost(outputs[local][0])
    load = os.getloadavg()
    print(f"load average after the runs: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for recipe, r in results.items():
        print(recipe, r)
    print(json.dumps({"model": str(model), "load_average": load, "results": results}))


if __name__ == "__main__":
    main()
