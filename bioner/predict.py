"""Tag raw text: ``bioner-predict model=<folder> input=<file|folder|-> output=<file|->``.

Composes ``conf/predict.yaml``, builds the tagger and its post-processing steps from their
config nodes and streams the input through them (:func:`bioner.inference.run.predict_files`).
Examples::

    bioner-predict model=logs/train/runs/<run> input=abstracts.txt output=spans.jsonl
    cat note.txt | bioner-predict model=<run> input=- output=- format=pubtator
    bioner-predict model=[<chemical run>,<disease run>] postprocess=[abbreviations,overlaps] \\
        input=pubmed.pubtator output=out.xml format=bioc
    bioner-predict model=<run> runner=ray input=pubmed_baseline/ output=tagged/  # docs/pubmed.md
    bioner-predict model=<run> input=notes/ output=to_correct/ format=brat  # correct in brat

``model=`` stands for ``tagger.folder=``: ``conf/model/`` is a config group of training, and Hydra
would read ``model=...`` as choosing one of its options.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from bioner.cli.app import check_config
from bioner.cli.errors import hydra_entry_point
from bioner.config import instantiate_node


def predict(cfg: DictConfig) -> dict[str, Any]:
    """Tag ``cfg.input`` into ``cfg.output``; return the counts (documents, spans, seconds).

    ``cfg.runner`` does the work: ``runner=local`` in this process
    (:class:`bioner.inference.run.LocalRunner`), ``runner=ray`` on Ray
    (:class:`bioner.inference.ray_runner.RayRunner`).
    """
    check_config(cfg)  # before the model loads
    return instantiate_node(cfg.runner, "runner").run(cfg)


def _model_shorthand(argv: list[str]) -> list[str]:
    return [f"tagger.folder={a[len('model=') :]}" if a.startswith("model=") else a for a in argv]


@hydra_entry_point(
    "bioner-predict",
    config="predict",
    aliases={"model": "tagger.folder"},
    rewrite_argv=_model_shorthand,
)
def main(cfg: DictConfig) -> None:
    """Console entry point."""
    predict(cfg)


if __name__ == "__main__":
    main()
