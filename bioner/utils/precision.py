"""Choosing the training and tagging precision from the hardware when the config says ``auto``."""

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


def has_native_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` (``cuda``, ``cpu``, a :class:`torch.device`) computes in bf16 natively:
    a visible CUDA GPU that supports bf16, or a CPU with :func:`cpu_has_native_bf16`."""
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return kind == "cpu" and cpu_has_native_bf16()


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
        chosen = "bf16-mixed" if has_native_bf16("cuda") else "16-mixed"
        why = "GPU with bf16" if chosen == "bf16-mixed" else "GPU without bf16"
    elif use_gpu:
        # Lightning reports the missing GPU itself; the precision must still be valid.
        chosen, why = "32-true", "no CUDA device visible"
    elif accelerator in ("cpu", "auto") and has_native_bf16("cpu"):
        chosen, why = "bf16-mixed", "CPU with native bf16 (avx512_bf16/AMX)"
    else:
        chosen, why = "32-true", f"{accelerator} accelerator without native bf16"
    log.info("precision auto -> %s (%s)", chosen, why)
    return chosen


def tagging_precision(requested: str, trained: str | None, device: torch.device) -> tuple[str, str]:
    """The precision a trained model tags in on ``device``, and why.

    ``auto`` tags in bf16 when the model trained (and so was scored on devel and test) under
    ``bf16-mixed`` and ``device`` runs bf16 natively (a CUDA GPU with bf16, a CPU with
    ``avx512_bf16``/AMX), so that its spans are those the run reported, at the speed of bf16; in
    fp32 (``32``) otherwise: a model trained in fp32 or fp16, a folder that does not record how
    it trained, or hardware that would only emulate bf16. ``32`` and ``bf16`` are returned as
    they are.

    Args:
        requested: ``auto``, ``32`` or ``bf16``.
        trained: the Lightning precision the model trained in (``bioner.json``'s ``precision``),
            ``None`` when not recorded.
        device: where the model runs.
    """
    if requested != "auto":
        return requested, "asked for"
    if not str(trained or "").startswith("bf16"):
        return "32", f"trained in {trained}" if trained else "training precision not recorded"
    if has_native_bf16(device):
        return "bf16", f"trained in {trained}, native bf16 on {device.type}"
    return "32", f"trained in {trained}, but {device.type} has no native bf16"
