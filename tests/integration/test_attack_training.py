"""Every attack config trains through ``bioner-train`` with every trainer config this machine can
run: fp32, bf16-mixed with gradient checkpointing and accumulation, DDP over 2 CPU processes
(and the GPU configs where a GPU exists)."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from test_train import assert_scores_match_predictions, compose, run_train, tiny_overrides

from bioner.config import CONFIG_DIR, compose_config
from bioner.errors import ConfigError
from bioner.eval import evaluate_checkpoint
from bioner.inference import Tagger
from bioner.inference.formats import read_jsonl
from bioner.train import train

ATTACKS = sorted(p.stem for p in (CONFIG_DIR / "attack").glob("*.yaml") if p.stem != "none")
SHORT = [
    "data.limit_documents=10",
    "data.batch_size=4",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=4",
    "bootstrap_samples=0",
]
SETTINGS = {
    "fp32": ["trainer.precision=32-true"],
    "bf16_checkpointing_accumulation": [
        "trainer.precision=bf16-mixed",
        "module.gradient_checkpointing=true",
        "trainer.accumulate_grad_batches=2",
    ],
}
GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
GPU_SETTINGS = {
    "gpu_bf16": (["trainer=gpu", "trainer.precision=bf16-mixed"], 1),
    "gpu_fp16": (["trainer=gpu", "trainer.precision=16-mixed"], 1),
    "ddp": (["trainer=ddp"], 2),
}


# Radii large enough for the adversarial loss to stand clear of dropout noise on the tiny random
# BERT (the configs' defaults are the small radii chosen for MiniLM on BC5CDR).
EPSILON = {"fgm": 0.3, "fgsm": 0.01, "freelb": 0.3, "pgd": 0.3, "vat": 0.3}


def test_attack_list_is_complete() -> None:
    assert ATTACKS == ["fgm", "fgsm", "freelb", "pgd", "vat"]


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("attack", ATTACKS)
def test_every_attack_trains_on_the_cpu(
    attack: str, setting: str, tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    cfg = compose(
        tmp_path,
        tiny_model_dir,
        f"attack={attack}",
        f"attack.epsilon={EPSILON[attack]}",
        f"paths.data_dir={shared_data}",
        *SHORT,
        *SETTINGS[setting],
        "logger=csv",
        "trainer.log_every_n_steps=1",
    )
    assert f"_atk-{attack}_" in cfg.run_name
    summary = train(cfg)
    assert_scores_match_predictions(tmp_path, summary, splits=("devel",))
    # The adversary trained: its losses were logged at every step, adversarial above clean on
    # average (dropout makes single steps noisy); VAT's is a divergence, above zero.
    (metrics_csv,) = tmp_path.rglob("metrics.csv")
    rows = list(csv.DictReader(metrics_csv.open()))
    steps = [r for r in rows if r.get("train/loss_adversarial")]
    assert steps
    clean = sum(float(r["train/loss_clean"]) for r in steps)
    adversarial = sum(float(r["train/loss_adversarial"]) for r in steps)
    assert adversarial > (0 if attack == "vat" else clean)


@pytest.mark.parametrize("head", ["flat", "crf", "multilabel"])
def test_vat_trains_on_unlabelled_text_beside_the_labelled(
    head: str, tmp_path: Path, tiny_model_dir: Path, shared_data: Path, caplog
) -> None:
    # The BC5CDR training abstracts in PubTator (their annotation lines are not read), 2 per
    # labelled sentence.
    text = shared_data / "bc5cdr_pubtator" / "CDR_TrainingSet.PubTator.txt"
    run = tmp_path / "run"
    settings = ["attack=vat", "attack.epsilon=0.3", f"module.head={head}", "logger=csv"]
    unlabeled = [f"attack.unlabeled={text}", "attack.unlabeled_ratio=2"]
    cfg = compose(run, tiny_model_dir, *settings, *unlabeled, f"paths.data_dir={shared_data}",
                  *SHORT, "trainer.log_every_n_steps=1")  # fmt: skip
    with caplog.at_level(logging.INFO, logger="bioner"):
        summary = train(cfg)
    assert summary["devel"]["documents"] == 10
    assert "500 unlabelled documents, 4552 sequences; 2 per labelled sequence" in caplog.text
    (metrics_csv,) = run.rglob("metrics.csv")
    steps = [r for r in csv.DictReader(metrics_csv.open()) if r.get("train/loss_adversarial")]
    # 10 labelled sentences in batches of 4: 3 steps, as without the unlabelled text.
    assert len(steps) == 3 and all(float(r["train/loss_adversarial"]) > 0 for r in steps)
    missing = compose(tmp_path / "missing", tiny_model_dir, *settings, "attack.unlabeled=nope.txt",
                      f"paths.data_dir={shared_data}", *SHORT)  # fmt: skip
    with pytest.raises(ConfigError, match="attack.unlabeled=nope.txt: no such file or folder"):
        train(missing)


@pytest.mark.slow
@pytest.mark.parametrize("attack", ATTACKS)
def test_every_attack_trains_under_ddp_sim(
    attack: str, tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    overrides = [*tiny_overrides(tiny_model_dir), f"attack={attack}", "trainer=ddp_sim"]
    metrics = run_train(tmp_path, tmp_path, [*overrides, f"paths.data_dir={shared_data}", *SHORT])
    assert metrics["devel"]["documents"] == 10


@GPU
@pytest.mark.parametrize("setting", sorted(GPU_SETTINGS))
@pytest.mark.parametrize("attack", ATTACKS)
def test_every_attack_trains_on_gpus(
    attack: str, setting: str, tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    overrides, devices = GPU_SETTINGS[setting]
    if torch.cuda.device_count() < devices:
        pytest.skip(f"needs {devices} GPUs")
    run_train(
        tmp_path,
        tmp_path,
        [
            *tiny_overrides(tiny_model_dir),
            f"attack={attack}",
            *overrides,
            f"paths.data_dir={shared_data}",
            *SHORT,
        ],
    )


def evaluate_trained(tmp_path: Path, shared_data: Path, overrides: list[str]) -> dict:
    """``bioner-eval`` of the best checkpoint of the run in ``tmp_path/train`` on its first 10
    documents, into ``tmp_path/eval``; returns its ``metrics.json``."""
    return evaluate_checkpoint(
        compose_config(
            "eval",
            [
                f"ckpt_path={tmp_path / 'train' / 'checkpoints' / 'best.ckpt'}",
                f"run_dir={tmp_path / 'eval'}",
                f"paths.data_dir={shared_data}",
                "data.limit_documents=10",
                "bootstrap_samples=0",
                "trainer.enable_progress_bar=false",
                *overrides,
            ],
        )
    )


def test_robustness_after_training_and_in_eval_agree(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    robustness = [
        "robustness=default",
        "robustness.limit_documents=12",
        "robustness.text_kinds=[case,typos_inside]",
    ]
    cfg = compose(
        tmp_path / "train",
        tiny_model_dir,
        "attack=fgm",
        f"paths.data_dir={shared_data}",
        *SHORT,
        *robustness,
    )
    trained = train(cfg)["robustness"]
    assert trained["documents"] == 10 and trained["split"] == "test"
    assert set(trained["embedding"]) == {"fgsm", "pgd"} and set(trained["text"]) == {
        "case",
        "typos_inside",
    }
    assert (tmp_path / "train" / "robustness_epsilon.png").is_file()
    evaluated = evaluate_trained(tmp_path, shared_data, robustness)["robustness"]
    assert evaluated == trained


@pytest.mark.parametrize("attack", ["fgm", "vat"])
def test_the_crf_head_trains_under_attack_and_tags_as_it_was_scored(
    attack: str, tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    robustness = ["robustness=default", "robustness.limit_documents=6", "robustness.text_kinds=[]"]
    cfg = compose(
        tmp_path / "train",
        tiny_model_dir,
        "module.head=crf",
        f"attack={attack}",
        f"paths.data_dir={shared_data}",
        *SHORT,
        *robustness,
    )
    summary = train(cfg)
    assert_scores_match_predictions(tmp_path / "train", summary)
    assert set(summary["robustness"]["embedding"]) == {"fgsm", "pgd"}
    # The exported folder holds the learned transitions, as numbers, and the tagger decodes with
    # them: the test predictions of the run again.
    record = json.loads((tmp_path / "train" / "model" / "bioner.json").read_text())
    assert record["alignment"]["head"] == "crf"
    assert record["crf"]["tags"] == ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]
    assert any(v != 0 for row in record["crf"]["transitions"] for v in row)
    assert "ignores the CRF's transitions" in (tmp_path / "train" / "README.md").read_text()
    tagger = Tagger.load(tmp_path / "train", device="cpu")
    records = read_jsonl(tmp_path / "train" / "predictions" / "test.jsonl")
    docs = instantiate(cfg.dataset).load("test")[: len(records)]
    assert sum(len(r["spans"]) for r in records) > 0
    assert tagger.predict_documents(docs) == [r["spans"] for r in records]
    # bioner-eval rebuilds the head from the checkpoint: the same scores and robustness.
    evaluated = evaluate_trained(tmp_path, shared_data, robustness)
    for split in ("devel", "test"):
        assert evaluated[split]["metrics"] == summary[split]["metrics"]
    assert evaluated["robustness"] == summary["robustness"]
