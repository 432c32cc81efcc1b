"""bench/minilm_weights.py: MiniLM's weights packed in bf16 come back as float32 of the same
rounded values, in place of missing weights only."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))


def test_pack_then_unpack_gives_the_bf16_rounded_weights_in_float32(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import minilm_weights

    source, target, bundle = tmp_path / "full", tmp_path / "bare", tmp_path / "bundle"
    source.mkdir()
    target.mkdir()
    rng = torch.Generator().manual_seed(0)
    weights = {
        "a.weight": torch.randn(7, 5, generator=rng) * 300,
        "b.bias": torch.randn(3, generator=rng),
    }
    save_file(weights, str(source / "model.safetensors"))

    monkeypatch.setattr(minilm_weights, "model_folder", lambda: source)
    packed = minilm_weights.pack(bundle)
    assert packed == bundle / minilm_weights.PACKED

    monkeypatch.setattr(minilm_weights, "model_folder", lambda: target)
    unpacked = load_file(str(minilm_weights.unpack(bundle)))
    assert unpacked.keys() == weights.keys()
    for name, value in weights.items():
        assert unpacked[name].dtype == torch.float32
        assert torch.equal(unpacked[name], value.bfloat16().float())
        # Rounded, not kept: the test would pass with the float32 values carried whole otherwise.
        assert not torch.equal(unpacked[name], value)
    assert not list(target.glob("*.partial"))
    assert (target / "model.safetensors").stat().st_mode & 0o777 == 0o644

    # Weights already there are left alone.
    (bundle / minilm_weights.PACKED).unlink()
    before = (target / "model.safetensors").read_bytes()
    minilm_weights.unpack(bundle)
    assert (target / "model.safetensors").read_bytes() == before


def test_unpack_without_the_packed_file_says_how_to_make_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import minilm_weights

    monkeypatch.setattr(minilm_weights, "model_folder", lambda: tmp_path)
    with pytest.raises(SystemExit, match="minilm_weights.py pack"):
        minilm_weights.unpack(tmp_path / "bundle")
    assert not (tmp_path / "model.safetensors").exists()
