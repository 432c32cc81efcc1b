"""Help, override checks and suggestions shared by the Hydra console scripts (bioner.cli.app)."""

from __future__ import annotations

import pytest

import bioner.eval
import bioner.predict
import bioner.train
from bioner.cli.app import (
    check_config,
    command_help,
    did_you_mean,
    suggest_for_hydra_error,
    with_run_dir,
)
from bioner.config import CONFIG_DIR, compose_config
from bioner.errors import ConfigError

TRAIN = ["run_dir=/tmp/never-written", "model=tiny"]


def test_predict_help_shows_model_and_only_the_groups_it_uses() -> None:
    text = command_help(
        "bioner-predict", "predict", bioner.predict.__doc__, {"model": "tagger.folder"}
    )
    assert "model=???  (shorthand of tagger.folder=)" in text
    assert "postprocess" in text
    for unused in ("attack", "augmentation", "trainer", "callbacks"):
        assert unused not in text.split("config groups")[1]
    assert text.count("bioner-predict model=") >= 3  # the docstring's examples


@pytest.mark.parametrize(("module", "name"), [(bioner.train, "train"), (bioner.eval, "eval")])
def test_help_has_a_description_and_examples_not_the_config(module, name) -> None:
    text = command_help(f"bioner-{name}", name, module.__doc__)
    description, examples = text.split("examples:")
    assert len(description.split("\n\n")) >= 2 and "``" not in description
    assert len([line for line in examples.split("\n\n")[0].splitlines() if line.strip()]) >= 3
    assert "_target_" not in text and len(text.splitlines()) < 80


def test_every_option_of_every_group_passes_the_check() -> None:
    # Each option's keys must be parameters of what it builds; a renamed parameter fails here.
    # `name` included: the attack and augmentation callbacks take it as a parameter.
    for group in ("attack", "augmentation", "alignment", "model", "dataset", "trainer"):
        for option in sorted(p.stem for p in (CONFIG_DIR / group).glob("[!_]*.yaml")):
            check_config(compose_config("train", [*TRAIN, f"{group}={option}"]), overrides=[])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("module.lr=abc", r"module.lr='abc' must be a number"),
        ("trainer.max_steps=ten", r"trainer.max_steps='ten' must be an integer"),
        ("+module.lrr=1", r"no parameter 'lrr'. Did you mean module.lr\?"),
        ("+atack=pgd", r"\+atack: nothing reads this key.*Did you mean attack\?"),
        ("+cv.fodls=3", r"Did you mean cv.folds"),
    ],
)
def test_mistakes_are_caught_before_anything_is_built(override: str, message: str) -> None:
    cfg = compose_config("train", [*TRAIN, override])
    with pytest.raises(ConfigError, match=message):
        check_config(cfg, overrides=[override])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # A float, a list or a bool where an integer goes: PGD once ran 2.5 steps without a word.
        (["attack=pgd", "attack.steps=2.5"], r"attack.steps=2.5 must be an integer$"),
        (["attack=pgd", "attack.steps=[1,2]"], r"attack.steps=\[1, 2\] must be an integer$"),
        (["attack=pgd", "attack.steps=true"], r"attack.steps=true must be an integer$"),
        # null where the parameter takes no None; `or null` said where it does.
        (["attack=pgd", "attack.epsilon=null"], r"attack.epsilon=null must be a number$"),
        (["attack=pgd", "attack.alpha=x"], r"attack.alpha='x' must be a number or null$"),
        # Inside a list of nodes (augmentation=mix), named as an override writes it.
        (
            ["augmentation=mix", "augmentation.transform.transforms.1.rate=x"],
            r"augmentation.transform.transforms.1.rate='x' must be a number$",
        ),
    ],
)
def test_values_of_the_wrong_kind_are_caught_before_anything_is_built(
    overrides: list[str], message: str
) -> None:
    cfg = compose_config("train", [*TRAIN, *overrides])
    with pytest.raises(ConfigError, match=message):
        check_config(cfg, overrides=overrides)


@pytest.mark.parametrize(
    "override", ["+trainer.limit_train_batches=2", "+attack=pgd", "+callbacks.extra.x=1"]
)
def test_added_keys_that_are_read_pass(override: str) -> None:
    cfg = compose_config("train", ["run_dir=/tmp/x", "model=tiny"])
    check_config(cfg, overrides=[override])


def test_hydra_errors_get_a_suggestion_from_the_config() -> None:
    msg = "Could not override 'module.lrr'.\nKey 'lrr' is not in struct"
    assert "module.lr?" in suggest_for_hydra_error(msg, "train", ["model=tiny", "module.lrr=1"])
    missing = "In 'train': Could not find 'dataset/bc5'"
    assert "bc5cdr" in suggest_for_hydra_error(missing, "train", ["dataset=bc5"])
    assert did_you_mean("zzz", ["attack"]) == ""


@pytest.mark.parametrize(
    ("override", "suggestion"),
    [
        # The default attack=none has no epsilon: five options do, and one must be chosen.
        ("attack.epsilon=0.1", "of attack=fgm,fgsm,freelb,pgd,vat, not of the attack chosen"),
        ("robustness.text_kinds=[case]", "as in robustness=default robustness.text_kinds=[case]"),
        ("postprocess.overlaps.keep=longest", "as in postprocess=overlaps postprocess.overlaps"),
        # A parameter of the node's target that its config leaves out: + adds it.
        (
            "trainer.max_time=00:01:00:00",
            "of lightning.pytorch.Trainer that the config does not list; add it: "
            "+trainer.max_time=00:01:00:00",
        ),
        # Any keyword argument goes in a *_kwargs mapping: not "Did you mean do_lower_case?".
        (
            "model.tokenizer_kwargs.add_prefix_space=false",
            "model.tokenizer_kwargs passes on any keyword argument; add one it does not list: "
            "+model.tokenizer_kwargs.add_prefix_space=false",
        ),
        # model=minilm has no name_or_path, and the tokenizer_kwargs override breaks too: the
        # hint comes from the config without overrides, whose model (biobert) lists the key,
        # so it is not "a parameter the config does not list".
        (
            "model.name_or_path=/x",
            "model.name_or_path is a key of model=biobert,hub,pubmedbert, not of the model chosen",
        ),
    ],
)
def test_a_key_of_another_option_of_its_group_names_those_options(
    override: str, suggestion: str
) -> None:
    key = override.split("=")[0]
    msg = f"Could not override '{key}'.\nKey '{key.split('.')[1]}' is not in struct"
    argv = ["model=tiny", override]
    if key.startswith("model.tokenizer_kwargs"):
        argv = ["model=biobert", override]
    if key == "model.name_or_path":
        argv = ["experiment=quickstart", override, "model.tokenizer_kwargs=null"]
    assert suggestion in suggest_for_hydra_error(msg, "train", argv)
    if key.startswith("attack."):  # bioner-eval has no attack group: nothing to choose there
        assert suggest_for_hydra_error(msg, "eval", ["ckpt_path=x", override]) == ""


@pytest.mark.parametrize(
    ("config", "override", "suggestion"),
    [
        # Hugging Face TrainingArguments / run_ner.py names.
        ("train", "learning_rate=1e-4", "module.lr? (bioner's name for learning_rate)"),
        ("train", "num_train_epochs=3", "trainer.max_epochs?"),
        ("train", "output_dir=out", "run_dir?"),
        ("train", "overwrite_output_dir=true", "overwrite?"),
        ("train", "fp16=true", "trainer.precision=16-mixed?"),
        ("eval", "checkpoint=x.ckpt", "ckpt_path?"),
        # The first of bioner's names that this script has.
        ("predict", "output_dir=out", "output?"),
        ("predict", "per_device_eval_batch_size=8", "tagger.batch_size?"),
        # A key of that name one group down.
        ("train", "lr=1e-4", "module.lr?"),
        ("train", "batch_size=16", "data.batch_size?"),
    ],
)
def test_names_from_elsewhere_get_bioner_s_key(config: str, override: str, suggestion: str) -> None:
    key = override.split("=")[0]
    msg = f"Could not override '{key}'.\nKey '{key}' is not in struct"
    base = {"predict": ["model=x", "input=-", "output=-"]}.get(config, ["model=tiny"])
    assert f"Did you mean {suggestion}" in suggest_for_hydra_error(msg, config, [*base, override])


def test_run_dir_is_hydra_s_output_folder_too() -> None:
    assert with_run_dir(["run_dir=out", "seed=1"]) == ["run_dir=out", "seed=1", "hydra.run.dir=out"]
    assert with_run_dir(["seed=1"]) == ["seed=1"]
    assert with_run_dir(["-m", "run_dir=out"]) == ["-m", "run_dir=out"]
    assert with_run_dir(["run_dir=a", "hydra.run.dir=b"]) == ["run_dir=a", "hydra.run.dir=b"]


def test_the_console_scripts_answer_help_and_typos_themselves(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr("sys.argv", ["bioner-predict", "--help"])
    with pytest.raises(SystemExit) as done:
        bioner.predict.main()
    assert done.value.code == 0 and "model=???" in capsys.readouterr().out
    monkeypatch.setattr("sys.argv", ["bioner-train", "model=tiny", "module.lrr=1e-4"])
    with pytest.raises(SystemExit) as done:
        bioner.train.main()
    err = capsys.readouterr().err
    assert done.value.code == 2 and "Did you mean module.lr?" in err
    assert "+module.lrr" not in err  # Hydra's advice to append would add a key nothing reads
