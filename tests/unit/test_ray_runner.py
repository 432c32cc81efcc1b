"""``runner=ray``'s planning, without Ray: which files become which outputs, what is skipped,
and the errors for inputs and outputs it cannot take (the Ray run itself:
tests/integration/test_predict.py)."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest

from bioner.cli.app import check_config
from bioner.config import CONFIG_DIR, compose_config
from bioner.data.errors import CorpusFormatError
from bioner.errors import ConfigError, UserError
from bioner.inference.ray_runner import RayRunner, _user_error, plan_shards


def test_each_input_file_becomes_one_output_file(tmp_path: Path) -> None:
    src = tmp_path / "baseline"
    (src / "updates").mkdir(parents=True)
    for name in ["pubmed26n0002.xml.gz", "pubmed26n0001.xml.gz", "updates/pubmed26n1400.xml"]:
        (src / name).write_bytes(b"")
    # Checksums, notes and hidden files are not inputs.
    for name in ["pubmed26n0001.xml.gz.md5", "README.md", ".DS_Store.xml"]:
        (src / name).write_bytes(b"")
    (src / "notes.jsonl").write_text('{"id": "n", "text": "x"}\n')
    out = tmp_path / "tagged"
    shards = plan_shards(src, out, "auto", "bioc")
    assert [(s.input.relative_to(src).as_posix(), s.output, s.input_format) for s in shards] == [
        ("notes.jsonl", out / "notes.xml", "jsonl"),
        ("pubmed26n0001.xml.gz", out / "pubmed26n0001.xml", "pubmed"),
        ("pubmed26n0002.xml.gz", out / "pubmed26n0002.xml", "pubmed"),
        ("updates/pubmed26n1400.xml", out / "updates" / "pubmed26n1400.xml", "pubmed"),
    ]
    [one] = plan_shards(src / "notes.jsonl", out, "jsonl", "pubtator")
    assert one.output == out / "notes.pubtator"


def test_inputs_and_outputs_it_cannot_take_are_clear_errors(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.xml").write_bytes(b"")
    (src / "a.xml.gz").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"a\.xml and .*a\.xml\.gz would both be written"):
        plan_shards(src, tmp_path / "out", "auto", "jsonl")
    (src / "a.xml.gz").unlink()
    taken = tmp_path / "spans.jsonl"
    taken.write_text("")
    with pytest.raises(ConfigError, match="is a file; runner=ray writes one output file per"):
        plan_shards(src, taken, "auto", "jsonl")
    with pytest.raises(ConfigError, match="standard input and output need runner=local"):
        plan_shards("-", tmp_path / "out", "auto", "jsonl")
    with pytest.raises(ConfigError, match="needs runner=local, or give input_format=text"):
        plan_shards(src, tmp_path / "out", "folder", "jsonl")
    with pytest.raises(ConfigError, match="format=brat writes one folder of documents; it needs"):
        plan_shards(src, tmp_path / "out", "auto", "brat")
    with pytest.raises(ConfigError, match="holds no input files"):
        plan_shards(_empty(tmp_path), tmp_path / "o", "auto", "jsonl")
    with pytest.raises(ConfigError, match="at least 1"):
        RayRunner(num_actors=0)


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "x.md5").write_text("")
    return folder


def test_without_ray_installed_runner_ray_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if not installed
    (tmp_path / "a.xml").write_bytes(b"")
    cfg = compose_config(
        "predict",
        ["runner=ray", "tagger.folder=unused", f"input={tmp_path}", f"output={tmp_path / 'o'}"],
    )
    with pytest.raises(UserError, match=r"runner=ray needs Ray: pip install 'bioner\[ray\]'"):
        RayRunner(**{k: v for k, v in cfg.runner.items() if k != "_target_"}).run(cfg)


def test_a_run_whose_outputs_all_exist_does_nothing(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    (tmp_path / "a.xml").write_bytes(b"")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.jsonl").write_text("done\n")
    cfg = compose_config(
        "predict",
        [
            "runner=ray",
            "tagger.folder=unused",
            f"input={tmp_path / 'a.xml'}",
            f"output={tmp_path / 'out'}",
        ],
    )
    summary = RayRunner().run(cfg)  # no Ray started, no model loaded
    assert summary["files_skipped"] == 1 and summary["files_written"] == 0
    assert (tmp_path / "out" / "a.jsonl").read_text() == "done\n"


def test_a_workers_format_error_reaches_the_user_as_itself() -> None:
    """Ray pickles a worker's error and wraps it; bioner-predict re-raises the bioner error so
    that the user sees its one-line message (file, line, fix), not Ray's traceback."""
    error = CorpusFormatError("a.jsonl", 2, "not JSON", "fix it")
    again = pickle.loads(pickle.dumps(error))
    assert (again.path, again.line, again.problem, again.fix, str(again)) == (
        "a.jsonl",
        2,
        "not JSON",
        "fix it",
        str(error),
    )

    class Wrapper(Exception):  # stands in for ray.exceptions.RayTaskError
        def __init__(self, cause: BaseException) -> None:
            super().__init__("task failed")
            self.cause = cause

    outer = RuntimeError("dataset failed")
    outer.__cause__ = Wrapper(again)
    assert _user_error(outer) is again
    assert _user_error(RuntimeError("a bug")) is None


def test_both_runners_pass_the_config_check() -> None:
    """Each runner option's keys are parameters of its class (a renamed one fails here)."""
    base = ["tagger.folder=x", "input=in", "output=out"]
    for option in sorted(p.stem for p in (CONFIG_DIR / "runner").glob("*.yaml")):
        check_config(compose_config("predict", [*base, f"runner={option}"]), overrides=[])
    bad = compose_config("predict", [*base, "runner=ray", "runner.num_actors=two"])
    with pytest.raises(ConfigError, match="runner.num_actors='two' must be an integer"):
        check_config(bad, overrides=[])
