"""Host memory per batch shape: MiniLM training steps on the CPU, over new or repeated shapes.

Each step is one forward and backward pass of MiniLM (the offline encoder of ``model=minilm``)
with a token-classification head and an AdamW step, on random token ids. The batch shapes are
drawn as bioner's token cap makes them: per step a length ``L`` between 8 and 160 and ``min(32,
1536 // L)`` sequences (``--repeat K``: the first ``K`` draws over and over). Exact lengths meet
a new shape on most steps; ``--pad-to-multiple-of 8`` rounds every length up as
``data.pad_to_multiple_of`` does, which leaves at most 20 shapes.

Figures: RSS every ``--every`` steps (and, with ``--trim``, again after glibc's
``malloc_trim(0)``, which returns the freed heap: what stays is held, not fragmented), the
growth per step from the first report to the last, and the seconds per step; then one JSON line.

    python bench/shape_memory.py --precision bf16 --steps 80              # exact lengths
    python bench/shape_memory.py --precision bf16 --steps 80 --pad-to-multiple-of 8
    python bench/shape_memory.py --precision bf16 --steps 80 --repeat 8   # 8 shapes again and again
    python bench/shape_memory.py --precision 32 --steps 80
    python bench/shape_memory.py --precision bf16 --steps 80 --trim
    ONEDNN_PRIMITIVE_CACHE_CAPACITY=0 python bench/shape_memory.py --precision bf16 --steps 80

``--precision bf16`` trains under ``torch.autocast("cpu", torch.bfloat16)`` as Lightning's
``bf16-mixed`` does; it is fast only on CPUs with native bf16. Run with ``OMP_NUM_THREADS=1``
beside other jobs.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import random
import time

import torch
from measure import current_rss_mib


def shapes(steps: int, repeat: int, multiple: int, seed: int) -> list[tuple[int, int]]:
    """Batch shapes ``(sequences, length)`` under a 1536-token cap: a length drawn per step, or
    the first ``repeat`` draws over and over."""
    rng = random.Random(seed)
    plan = []
    for _ in range(repeat or steps):
        length = -(-rng.randint(8, 160) // multiple) * multiple
        plan.append((max(1, min(32, 1536 // length)), length))
    return [plan[i % len(plan)] for i in range(steps)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--precision", choices=("32", "bf16"), default="bf16")
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--repeat", type=int, default=0, help="cycle the first K draws (0: off)")
    parser.add_argument("--pad-to-multiple-of", type=int, default=1)
    parser.add_argument("--every", type=int, default=20, help="report RSS every n steps")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) at each report")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.steps < 2 * args.every:
        parser.error("--steps must be at least twice --every (growth needs two reports)")
    if args.pad_to_multiple_of < 1 or args.repeat < 0:
        parser.error("--pad-to-multiple-of must be positive and --repeat not negative")
    libc = None
    if args.trim:
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.malloc_trim  # noqa: B018 (glibc only)
        except (OSError, AttributeError):
            parser.error("--trim needs glibc's malloc_trim (Linux with glibc)")

    from hydra.utils import instantiate

    from bioner.config import compose_config

    torch.manual_seed(args.seed)
    encoder = instantiate(compose_config("data", ["model=minilm"]).model)
    model = encoder.load_model({i: f"L{i}" for i in range(5)})
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    plan = shapes(args.steps, args.repeat, args.pad_to_multiple_of, args.seed)
    reports: list[dict[str, float]] = []
    start_rss = current_rss_mib()
    start = time.perf_counter()
    for step, (sequences, length) in enumerate(plan, 1):
        ids = torch.randint(1000, 2000, (sequences, length))
        labels = torch.randint(0, 5, (sequences, length))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % args.every == 0:
            report = {"step": step, "rss_mib": round(current_rss_mib(), 1)}
            if libc is not None:
                libc.malloc_trim(0)
                report["rss_after_trim_mib"] = round(current_rss_mib(), 1)
            report["seconds"] = round(time.perf_counter() - start, 1)
            reports.append(report)
            print(" ".join(f"{k} {v}" for k, v in report.items()), flush=True)
    key = "rss_after_trim_mib" if args.trim else "rss_mib"
    first, last = reports[0], reports[-1]
    growth = (last[key] - first[key]) / (last["step"] - first["step"])
    result = {
        "precision": args.precision,
        "steps": args.steps,
        "distinct_shapes": len(set(plan)),
        "pad_to_multiple_of": args.pad_to_multiple_of,
        "trim": args.trim,
        "threads": torch.get_num_threads(),
        "rss_before_mib": round(start_rss, 1),
        "growth_mib_per_step": round(growth, 2),
        "seconds_per_step": round(last["seconds"] / last["step"], 3),
        "reports": reports,
    }
    print(
        f"{args.precision}, {result['distinct_shapes']} distinct shapes over {args.steps} steps: "
        f"RSS {first[key]:.0f} -> {last[key]:.0f} MiB from step {first['step']} to "
        f"{last['step']} ({growth:+.1f} MiB per step{', after malloc_trim' if args.trim else ''}), "
        f"{result['seconds_per_step']} s per step"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
