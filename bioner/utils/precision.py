"""Choosing the training precision from the hardware when the config says ``auto``."""

from __future__ import annotations

from pathlib import Path

import torch

from bioner.utils.log import get_logger

log = get_logger(__name__)

# CPU flags (as in /proc/cpuinfo) that give native bf16 matrix products; without them bf16
# autocast is emulated and slower than fp32.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether the CPU advertises native bf16 arithmetic (``avx512_bf16`` or AMX).

    Args:
        cpuinfo: the file listing CPU flags; when it cannot be read (macOS, Windows) the answer
            is ``False``, which only costs speed.
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = {
        flag for line in text.splitlines() if line.startswith("flags") for flag in line.split()
    }
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def resolve_precision(precision: str | int | None, accelerator: str = "auto") -> str | int | None:
    """Turn ``precision="auto"`` into a Lightning precision for the hardware at hand.

    ``auto`` picks ``bf16-mixed`` on a GPU with bf16 (``16-mixed`` on older GPUs), ``bf16-mixed``
    on a CPU with native bf16 and ``32-true`` elsewhere. Any other value is returned unchanged.
    The choice is logged.

    Args:
        precision: the configured precision (``auto``, ``32-true``, ``bf16-mixed``, ...).
        accelerator: the trainer's accelerator (``cpu``, ``gpu``, ``cuda``, ``auto``).
    """
    if str(precision) != "auto":
        return precision
    use_gpu = accelerator in ("gpu", "cuda") or (
        accelerator == "auto" and torch.cuda.is_available()
    )
    if use_gpu and torch.cuda.is_available():
        chosen = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        why = "GPU with bf16" if chosen == "bf16-mixed" else "GPU without bf16"
    elif use_gpu:
        # Lightning reports the missing GPU itself; the precision must still be valid.
        chosen, why = "32-true", "no CUDA device visible"
    elif accelerator in ("cpu", "auto") and cpu_has_native_bf16():
        chosen, why = "bf16-mixed", "CPU with native bf16 (avx512_bf16/AMX)"
    else:
        chosen, why = "32-true", f"{accelerator} accelerator without native bf16"
    log.info("precision auto -> %s (%s)", chosen, why)
    return chosen
