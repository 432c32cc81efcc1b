"""Ensembles by vote: the spans enough models predict, scored by their agreement, in the tagger
(tagger.min_votes) and in bioner-eval (ckpt_path=[...], tested in test_train)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_inference import export_tiny, random_texts

from bioner.data.document import Span
from bioner.errors import ConfigError
from bioner.evaluation.ensemble import vote, votes_needed
from bioner.inference import Tagger


def test_votes_needed_is_a_majority_or_a_number_of_models() -> None:
    assert [votes_needed("majority", n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]
    assert votes_needed(3, 3) == 3
    for bad in (0, 4, "most", True, 1.5):
        with pytest.raises(ValueError, match="min_votes="):
            votes_needed(bad, 3)


def test_a_span_is_kept_with_enough_votes_and_scored_by_its_voters_over_all_models() -> None:
    a = Span(0, 5, "C", score=0.9)
    members = [
        [a, Span(10, 12, "D", score=0.6)],
        [Span(0, 5, "C", score=0.6, id="MESH:1"), Span(10, 13, "D", score=0.9)],
        [Span(20, 22, "C", score=0.8)],
    ]
    (kept,) = vote(members, 2)
    assert (kept.start, kept.end, kept.label, kept.id) == (0, 5, "C", "MESH:1")
    assert kept.score == pytest.approx((0.9 + 0.6) / 3)
    union = vote(members, 1)
    assert [(s.start, s.end) for s in union] == [(0, 5), (10, 12), (10, 13), (20, 22)]
    assert union[3].score == pytest.approx(0.8 / 3)
    assert vote(members, 3) == []
    # A model that lists a span twice votes once; a span without a score keeps none.
    assert vote([[a, a], []], 2) == []
    assert vote([[Span(0, 5, "C")], [Span(0, 5, "C", score=0.5)]], 2)[0].score is None


def test_the_tagger_votes_among_its_models(tiny_model_dir: Path, tmp_path: Path) -> None:
    folders = [export_tiny(tiny_model_dir, tmp_path / f"m{i}", seed=i) for i in range(3)]
    texts = random_texts(12, seed=5)
    alone = [Tagger.load(f, device="cpu").predict(texts) for f in folders]
    voted = Tagger.load(folders, device="cpu", min_votes="majority").predict(texts)
    assert voted == [vote(list(per_text), 2) for per_text in zip(*alone)]
    assert any(voted) and voted != alone[0]
    # min_votes=auto, the default: models of the same types vote.
    assert Tagger.load(folders, device="cpu").predict(texts) == voted
    # Pooling them would list each span they agree on once per model.
    with pytest.raises(ConfigError, match=r"tagger.min_votes=null: the 3 models tag the same"):
        Tagger.load(folders, device="cpu", min_votes=None)
    with pytest.raises(ConfigError, match=r"min_votes='all': majority, .*, or auto, or null"):
        Tagger.load(folders, device="cpu", min_votes="all")
    # Three copies of one model: its own spans, its own scores.
    same = Tagger.load([folders[0]] * 3, device="cpu", min_votes="majority").predict(texts)
    assert same == alone[0]
    scores = [s.score for d in same for s in d]
    assert scores == pytest.approx([s.score for d in alone[0] for s in d])
    with pytest.raises(ConfigError, match=r"tagger.min_votes=4: from 1 to the number of models"):
        Tagger.load(folders, device="cpu", min_votes=4)
    chem = export_tiny(tiny_model_dir, tmp_path / "chem", types=["Chemical"], seed=1)
    with pytest.raises(ConfigError, match=r"tagger.min_votes: the models tag different types"):
        Tagger.load([folders[0], chem], device="cpu", min_votes="majority")
