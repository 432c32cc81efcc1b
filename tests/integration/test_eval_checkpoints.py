"""``bioner-eval`` on checkpoints: untrusted files are data, never code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from test_train import compose

from bioner.config import compose_config
from bioner.errors import ConfigError, FormatError
from bioner.eval import evaluate_checkpoint
from bioner.runtime import UntrustedCheckpointError
from bioner.runtime.checkpoints import read_checkpoint
from bioner.train import train


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, shared_data: Path):
    """The best checkpoint of a one-epoch tiny-BERT run on a BC5CDR subset."""
    run_dir = tmp_path_factory.mktemp("run")
    train(
        compose(
            run_dir,
            tiny_model_dir,
            f"paths.data_dir={shared_data}",
            "data.limit_documents=16",
            "data.batch_size=8",
            "trainer.max_epochs=1",
            "bootstrap_samples=0",
        )
    )
    return run_dir / "checkpoints" / "best.ckpt"


def evaluate(ckpt: Path, out: Path, *overrides: str) -> dict:
    return evaluate_checkpoint(
        compose_config(
            "eval",
            [
                f"ckpt_path={ckpt}",
                f"run_dir={out}",
                "data.limit_documents=16",
                "bootstrap_samples=0",
                "trainer.enable_progress_bar=false",
                *overrides,
            ],
        )
    )


class _Payload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_is_read_without_unpickling(checkpoint: Path, tmp_path: Path) -> None:
    # bioner-train's own checkpoints hold only what weights_only=True reads.
    torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert evaluate(checkpoint, tmp_path / "clean")["test"]["documents"] == 16

    marker = tmp_path / "pwned"
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state["extra"] = _Payload(marker)
    crafted = tmp_path / "crafted.ckpt"
    torch.save(state, crafted)
    with pytest.raises(UntrustedCheckpointError, match="trust_checkpoint=true"):
        evaluate(crafted, tmp_path / "refused")
    assert not marker.exists()
    # Only when told to trust it is the file unpickled (and the payload runs).
    evaluate(crafted, tmp_path / "trusted", "trust_checkpoint=true")
    assert marker.exists()


def test_a_checkpoint_config_may_name_only_bioner_classes(checkpoint: Path, tmp_path: Path) -> None:
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    payload = tmp_path / "payload.pt"
    marker = tmp_path / "pwned"
    torch.save(_Payload(marker), payload)
    for node, value in (
        ("model", {"_target_": "torch.load", "f": str(payload), "weights_only": False}),
        ("data", {**state["bioner_config"]["data"], "reader": {"_target_": "torch.load"}}),
        ("alignment", {"_target_": "torch.load", "f": str(payload), "weights_only": False}),
    ):
        crafted = dict(state, bioner_config={**state["bioner_config"], node: value})
        path = tmp_path / f"{node}.ckpt"
        torch.save(crafted, path)
        with pytest.raises(ValueError, match="torch.load"):
            evaluate(path, tmp_path / node)
        assert not marker.exists()


def test_a_file_that_is_not_a_bioner_checkpoint_is_a_user_error(
    checkpoint: Path, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n", encoding="utf-8")
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(checkpoint.read_bytes()[:100_000])  # a copy that stopped part way
    for path in (text, cut):
        with pytest.raises(FormatError, match=f"{path.name} is not a checkpoint that bioner"):
            read_checkpoint(path)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(ConfigError, match="holds no bioner config"):
        read_checkpoint(tensor)


def test_a_corpus_with_fewer_types_is_scored_on_the_shared_ones(
    checkpoint: Path, tmp_path: Path, shared_data: Path
) -> None:
    # The checkpoint predicts Chemical and Disease; bc5cdr_chem annotates Chemical only.
    both = evaluate(checkpoint, tmp_path / "both", f"paths.data_dir={shared_data}")
    chem = evaluate(
        checkpoint, tmp_path / "chem", "dataset=bc5cdr_chem", f"paths.data_dir={shared_data}"
    )
    for split in ("devel", "test"):
        metrics = chem[split]["metrics"]
        # The headline is the Chemical score: Disease predictions are not false positives ...
        assert metrics["f1"] == pytest.approx(metrics["f1_Chemical"])
        assert [row["type"] for row in chem[split]["per_type"]] == ["Chemical"]
        # ... and equals the Chemical score on the two-type corpus (the same mentions).
        assert metrics["f1_Chemical"] == pytest.approx(both[split]["metrics"]["f1_Chemical"])
        # The Disease predictions are counted apart.
        disease = {row["type"]: row for row in both[split]["per_type"]}["Disease"]
        dropped = chem["label_sets"][split]["dropped_predictions"]
        assert dropped == ({"Disease": disease["tp"] + disease["fp"]} if dropped else {})
        assert chem["label_sets"][split]["unpredictable_gold"] == {}
    assert chem["label_sets"]["scored_types"] == ["Chemical"]
    assert chem["label_sets"]["model_only"] == ["Disease"]
    assert "label_sets" not in both


def test_a_corpus_with_more_types_does_not_crash(
    checkpoint: Path, tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    run_dir = tmp_path / "chem_run"
    train(
        compose(
            run_dir,
            tiny_model_dir,
            "dataset=bc5cdr_chem",
            f"paths.data_dir={shared_data}",
            "data.limit_documents=16",
            "data.batch_size=8",
            "trainer.max_epochs=1",
            "bootstrap_samples=0",
        )
    )
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    chem = evaluate(ckpt, tmp_path / "chem")
    both = evaluate(ckpt, tmp_path / "both", "dataset=bc5cdr", f"paths.data_dir={shared_data}")
    for split in ("devel", "test"):
        # Disease mentions, which the model cannot predict, are counted apart, not as missed.
        assert both[split]["metrics"]["f1"] == pytest.approx(chem[split]["metrics"]["f1"])
        gold = both["label_sets"][split]["unpredictable_gold"]
        assert set(gold) == {"Disease"} and gold["Disease"] > 0
    assert both["label_sets"]["corpus_only"] == ["Disease"]
    # Members of an ensemble tag the same types: refused before any is scored.
    members = compose_config("eval", [f"ckpt_path=[{checkpoint},{ckpt}]", f"run_dir={tmp_path}"])
    with pytest.raises(
        ConfigError, match=r"predicts \['Chemical'\], .* the members of an ensemble"
    ):
        evaluate_checkpoint(members)


def test_the_same_types_in_another_order_score_the_same(
    checkpoint: Path, tmp_path: Path, shared_data: Path
) -> None:
    same = evaluate(checkpoint, tmp_path / "same", f"paths.data_dir={shared_data}")
    swapped = evaluate(
        checkpoint,
        tmp_path / "swapped",
        f"paths.data_dir={shared_data}",
        "dataset=bc5cdr",
        "dataset.entity_types=[Disease,Chemical]",
    )
    assert "label_sets" not in swapped
    for split in ("devel", "test"):
        assert swapped[split]["metrics"] == same[split]["metrics"]


def test_a_corpus_s_types_renamed_as_it_is_read_are_scored_under_their_new_names(
    checkpoint: Path, tmp_path: Path, shared_data: Path
) -> None:
    # The checkpoint predicts Chemical and Disease. Read with Chemical renamed, BC5CDR shares
    # Disease alone with it; with Disease dropped too, nothing.
    both = evaluate(checkpoint, tmp_path / "both", f"paths.data_dir={shared_data}")
    drug = evaluate(
        checkpoint,
        tmp_path / "drug",
        f"paths.data_dir={shared_data}",
        "dataset.relabel.map={Chemical: Drug}",
    )
    assert drug["label_sets"]["scored_types"] == ["Disease"]
    assert drug["label_sets"]["corpus_only"] == ["Drug"]
    for split in ("devel", "test"):
        metrics = drug[split]["metrics"]
        assert metrics["f1"] == pytest.approx(both[split]["metrics"]["f1_Disease"])
        # Counted over the whole split as read (data.limit_documents cuts after).
        renamed = drug["dataset_preparation"]["relabel"][split]["renamed"]["Chemical"]
        assert 0 < drug["label_sets"][split]["unpredictable_gold"]["Drug"] <= renamed
    with pytest.raises(ConfigError, match=r"no type in common.*dataset\.relabel\.map="):
        evaluate(
            checkpoint,
            tmp_path / "none",
            f"paths.data_dir={shared_data}",
            "dataset.relabel.map={Chemical: Drug, Disease: null}",
        )
