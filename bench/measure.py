"""Timing, memory and profiling helpers shared by the benchmark scripts in ``bench/``.

GPU work is asynchronous: a timestamp taken when the host has *queued* a step says nothing
about when the device finished it. :func:`now` synchronises the device first, so step timers
measure finished work on a GPU as on a CPU.

:class:`StepProfile` records ``torch.profiler`` traces of a few training steps (CPU and, on a
GPU, CUDA activity) and summarises them: the operators that take the host's and the device's
time, and the host-device synchronisations per step (each one stalls the host until the
device has drained its queue, so the host cannot prepare the next step meanwhile).
"""

from __future__ import annotations

import resource
import time
import warnings
from collections import Counter
from typing import Any

import torch

# Host-side events that wait for the device: explicit synchronisations, and device-to-host
# copies of a tensor's value (``.item()``, ``.tolist()``, ``.cpu()``, ``bool(tensor)``).
SYNC_EVENTS = (
    "cudaStreamSynchronize",
    "cudaDeviceSynchronize",
    "cudaEventSynchronize",
    "aten::_local_scalar_dense",
)


def now() -> float:
    """``time.perf_counter()`` once the current CUDA device (if any) has finished its work."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter()


def current_rss_mib() -> float:
    """This process's resident memory now (Linux; 0 where ``/proc`` is missing)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except OSError:
        return 0.0
    return pages * resource.getpagesize() / 2**20


def rss_by_mapping(top: int = 8) -> dict[str, float]:
    """Resident MiB of this process per mapped file (``[heap]``, anonymous, each library).

    Tells where host memory sits, e.g. CUDA libraries loaded whole against Python's own heap.
    """
    sizes: dict[str, float] = {}
    name = "?"
    try:
        with open("/proc/self/smaps") as f:
            for line in f:
                first = line.split(maxsplit=1)[0]
                if "-" in first and not first.endswith(":"):  # a mapping's header line
                    parts = line.split()
                    name = parts[5] if len(parts) > 5 else "[anonymous]"
                    name = name.rsplit("/", 1)[-1]
                elif first == "Rss:":
                    sizes[name] = sizes.get(name, 0.0) + int(line.split()[1]) / 1024
    except OSError:
        return {}
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:top])


def memory_figures() -> dict[str, float]:
    """Peak host RSS of this process and, on a GPU, peak allocated and reserved device memory."""
    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_gpu_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        out["peak_gpu_reserved_mib"] = torch.cuda.max_memory_reserved() / 2**20
    return out


class StepProfile:
    """Profile the steps ``first .. first + count - 1`` of a training loop.

    Call :meth:`step_start` and :meth:`step_end` around each step (from a Lightning or
    Hugging Face callback); the summary is ready once :attr:`done`.

    Args:
        first: the 1-based number of the first profiled step (earlier steps warm up).
        count: how many steps to profile.
        rows: operators listed per table.
    """

    def __init__(self, first: int, count: int, rows: int = 25) -> None:
        self.first = first
        self.count = count
        self.rows = rows
        self.steps = 0
        self.done = False
        self.summary: dict[str, Any] = {}
        self._prof: torch.profiler.profile | None = None
        self._start = 0.0
        self._warnings: warnings.catch_warnings | None = None
        self._caught: list[warnings.WarningMessage] = []

    def step_start(self) -> None:
        self.steps += 1
        if self.steps != self.first or self.done:
            return
        activities = [torch.profiler.ProfilerActivity.CPU]
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        if len(activities) > 1:
            # Each synchronising CUDA call then warns from the Python line that made it.
            self._warnings = warnings.catch_warnings(record=True)
            self._caught = self._warnings.__enter__()
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
        self._start = now()
        self._prof = torch.profiler.profile(activities=activities)
        self._prof.__enter__()

    def step_end(self) -> None:
        if self._prof is None or self.steps != self.first + self.count - 1:
            return
        seconds = now() - self._start
        self._prof.__exit__(None, None, None)
        self.summary = summarise(self._prof, self.count, seconds, self.rows)
        if self._warnings is not None:
            torch.cuda.set_sync_debug_mode("default")
            self._warnings.__exit__(None, None, None)
            sites = Counter(
                f"{w.filename}:{w.lineno}" for w in self._caught if "synchroniz" in str(w.message)
            )
            self.summary["sync_sites"] = {k: v / self.count for k, v in sites.most_common()}
        self._prof = None
        self.done = True


class StepWindow:
    """The timed and profiled window of a training loop, shared by every recipe's step timer.

    The first ``warmup`` steps are not timed; then ``timed`` steps are (``None``: every later
    step); then ``profile`` steps are profiled (:class:`StepProfile`, outside the timed window so
    its overhead is not timed). Timestamps wait for the GPU only at the window's ends: waiting
    after every step would stop the host from queueing the next one meanwhile. RSS is sampled at
    fit start and after steps 1 and ``warmup``.

    A loop adapter calls :meth:`fit_start`, :meth:`step_start` and :meth:`step_end`, and
    :meth:`count_batch` once per step with the step's attention mask.

    Sentences per second alone can mislead over a window of some steps: each recipe's sampler
    puts different sentences into the same number of steps (bioner's length buckets, the
    ``Trainer``'s length-grouped mega-batches), and a window of shorter sentences trains more of
    them per second at the same efficiency. :meth:`rates` therefore also gives the real sub-word
    tokens per second (and the padding, padded over real tokens) of the timed steps, and how
    many batch shapes the timed steps met for the first time (a new shape costs once: kernel
    choices and plans are made and cached per shape, on a CPU by oneDNN, on a GPU by cuDNN).
    """

    def __init__(self, warmup: int, timed: int | None = None, profile: int = 0) -> None:
        self.warmup = warmup
        self.timed = timed
        self.steps = 0
        self.start: float | None = None
        self.end: float | None = None
        self.rss: dict[str, float] = {}
        first = warmup + (timed or 0) + 1
        self.profile = StepProfile(first, profile) if profile and timed else None
        self.sentences = 0
        self.padded_tokens = 0
        # A tensor on the batch's device until :meth:`rates`: no host-device sync per step.
        self._real_tokens: torch.Tensor | int = 0
        self.shapes: set[tuple[int, ...]] = set()
        self.new_shapes_timed = 0

    def fit_start(self) -> None:
        self.rss = {"fit_start": current_rss_mib()}

    def step_start(self) -> None:
        if self.warmup == 0 and self.start is None:
            # Without warm-up the window opens at the first step (step_end never sees step 0).
            self.start = now()
        if self.profile is not None:
            self.profile.step_start()

    def step_end(self) -> None:
        """Count a finished step: the window opens at the end of the last warm-up step and
        closes at the end of the last timed one (``timed=None``: of the latest step)."""
        self.steps += 1
        if self.steps in (1, self.warmup):
            self.rss[f"after_step_{self.steps}"] = current_rss_mib()
        if self.profile is not None:
            self.profile.step_end()
        if self.steps == self.warmup:
            self.start = now()
        if self.timed is None or self.steps == self.warmup + self.timed:
            self.end = now()

    def in_timed_window(self, step: int) -> bool:
        """Whether the 1-based ``step`` is one of the timed steps."""
        return step > self.warmup and (self.timed is None or step <= self.warmup + self.timed)

    def count_batch(self, attention_mask: torch.Tensor) -> None:
        """Count the sentences and sub-word tokens of the step under way (between
        :meth:`step_start` and :meth:`step_end`), if it is a timed one, and its batch shape."""
        shape = tuple(attention_mask.shape)
        new_shape = shape not in self.shapes
        self.shapes.add(shape)
        if self.in_timed_window(self.steps + 1):
            self.new_shapes_timed += new_shape
            self.sentences += int(attention_mask.shape[0])
            self.padded_tokens += attention_mask.numel()
            self._real_tokens = self._real_tokens + attention_mask.sum()

    @property
    def real_tokens(self) -> int:
        return int(self._real_tokens)

    @property
    def seconds(self) -> float:
        return (self.end or 0.0) - (self.start or 0.0)

    def rates(self) -> dict[str, float]:
        """Sentences and real sub-word tokens per second of the timed steps, and their padding."""
        real = self.real_tokens
        return {
            "sentences": self.sentences,
            "sentences_per_s": self.sentences / self.seconds,
            "tokens_per_s": real / self.seconds,
            "subwords_per_sentence": real / max(self.sentences, 1),
            "padding": self.padded_tokens / max(real, 1),
            "batch_shapes": len(self.shapes),
            "new_batch_shapes_timed": self.new_shapes_timed,
        }

    def figures(self, name: str) -> dict[str, Any]:
        """Memory figures, the RSS trace and, if profiled, the profile (its tables printed)."""
        out: dict[str, Any] = {
            **memory_figures(),
            "rss_mib": {**self.rss, "end": current_rss_mib()},
            "rss_by_mapping_mib": rss_by_mapping(),
        }
        if self.profile is not None and self.profile.done:
            print_profile(name, self.profile.summary)
            out["profile"] = {k: v for k, v in self.profile.summary.items() if "table" not in k}
        return out


def summarise(prof: torch.profiler.profile, steps: int, seconds: float, rows: int) -> dict:
    """Per-step figures and the top operator tables of a finished profile."""
    events = prof.key_averages()
    # Kernels only: operators also report the time of the kernels they launched.
    kernels = [
        e
        for e in events
        if e.device_type == torch.autograd.DeviceType.CUDA
        # record_function ranges (``Optimizer.step#AdamW.step``) also show on the device.
        and not getattr(e, "is_user_annotation", False)
        and "#" not in e.key
    ]
    device_total = sum(e.self_device_time_total for e in kernels) / 1e3
    syncs = {e.key: e.count / steps for e in events if e.key in SYNC_EVENTS}
    summary = {
        "steps": steps,
        "ms_per_step": 1e3 * seconds / steps,
        # Sum of kernel times: how busy the device was (overlapping streams counted twice).
        "device_busy_ms_per_step": device_total / steps,
        "syncs_per_step": syncs,
        "table_host": events.table(sort_by="self_cpu_time_total", row_limit=rows),
    }
    if device_total:
        summary["table_device"] = events.table(sort_by="self_device_time_total", row_limit=rows)
    return summary


def print_profile(name: str, summary: dict) -> None:
    """Print a :func:`summarise` result for a human reader."""
    print(
        f"== {name}: {summary['ms_per_step']:.1f} ms per step over {summary['steps']} profiled "
        f"steps; device busy {summary['device_busy_ms_per_step']:.1f} ms per step; "
        f"host-device syncs per step {summary['syncs_per_step']}"
    )
    for site, per_step in summary.get("sync_sites", {}).items():
        print(f"   sync per step {per_step:5.1f} at {site}")
    print(summary["table_host"])
    if "table_device" in summary:
        print(summary["table_device"])
