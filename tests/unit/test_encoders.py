"""Encoders: offline loading, the tiny BERT cache, hub failures and the model configs."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from bioner.config import CONFIG_DIR
from bioner.models import encoders
from bioner.models.encoders import (
    EncoderNotFoundError,
    HubEncoder,
    PackagedEncoder,
    TinyBert,
    checkpointing_enabled,
)

ID2LABEL = {0: "O", 1: "B-Chemical", 2: "I-Chemical", 3: "B-Disease", 4: "I-Disease"}


def _logits(
    model: torch.nn.Module, tokenizer: Any, words: list[list[str]]
) -> tuple[torch.Tensor, torch.Size]:
    batch = tokenizer(words, is_split_into_words=True, padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        return model(**batch).logits, batch["input_ids"].shape


def test_minilm_loads_offline_with_a_new_head() -> None:
    encoder = PackagedEncoder()
    assert Path(encoder.resolve(), "config.json").is_file()
    tokenizer = encoder.load_tokenizer()
    # tokenizer_config says 512, positions 512, sentence-transformers trained with 256.
    assert encoder.max_length == 256 == tokenizer.model_max_length
    # The packaged tokenizer.json truncates at 128 and pads to 128; both must be off.
    assert tokenizer.backend_tokenizer.truncation is None
    assert tokenizer.backend_tokenizer.padding is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = encoder.load_model(ID2LABEL)
    assert not [w for w in caught if "randomly initialised" in str(w.message)]
    assert model.config.id2label == ID2LABEL and model.config.num_labels == 5
    logits, shape = _logits(model, tokenizer, [["Naloxone", "reverses", "hypotension"], ["x"]])
    assert logits.shape == (*shape, 5)
    assert torch.isfinite(logits).all()


def test_tiny_loads_from_the_shared_build(tiny_model_dir: Path) -> None:
    folder = Path(tiny_model_dir)  # TinyBert.resolve() returns a str
    encoder = TinyBert(cache_dir=str(folder.parent.parent))
    assert encoder.resolve() == str(folder)  # reused, not rebuilt
    tokenizer = encoder.load_tokenizer()
    assert encoder.max_length == 512
    model = encoder.load_model(ID2LABEL, dropout=0.3, gradient_checkpointing=True)
    assert model.config.hidden_size == 64 and model.config.num_hidden_layers == 2
    assert model.config.hidden_dropout_prob == 0.3 == model.config.attention_probs_dropout_prob
    assert checkpointing_enabled(model)
    assert not checkpointing_enabled(encoder.load_model(ID2LABEL))
    logits, shape = _logits(model, tokenizer, [["Naloxone", "reverses", "hypotension"]])
    assert logits.shape == (*shape, 5)
    # Same vocabulary as MiniLM, so the two encoders share one tokenisation.
    minilm = PackagedEncoder().load_tokenizer()
    assert tokenizer.get_vocab() == minilm.get_vocab()


def test_tiny_is_reproducible_and_keyed_by_hyper_parameters(tmp_path: Path) -> None:
    a = TinyBert(cache_dir=str(tmp_path / "a"), hidden_size=32, intermediate_size=64)
    b = TinyBert(cache_dir=str(tmp_path / "b"), hidden_size=32, intermediate_size=64)
    c = TinyBert(cache_dir=str(tmp_path / "a"), hidden_size=32, intermediate_size=64, seed=1)
    assert a.folder != c.folder
    assert a.folder.name == b.folder.name
    weights = [m.load_model(ID2LABEL).bert.state_dict() for m in (a, b, c)]
    assert a.folder.is_dir() and c.folder.is_dir()
    key = "embeddings.word_embeddings.weight"
    assert torch.equal(weights[0][key], weights[1][key])
    assert not torch.equal(weights[0][key], weights[2][key])


def test_tiny_build_leaves_global_rng_alone(tmp_path: Path) -> None:
    # Lightning seeds the global RNG before building the model; the build must not shift it.
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    TinyBert(cache_dir=str(tmp_path), hidden_size=16, num_heads=2, intermediate_size=32).resolve()
    assert torch.equal(torch.rand(3), expected)


def test_tiny_rejects_heads_that_do_not_divide_width(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must divide"):
        TinyBert(cache_dir=str(tmp_path), hidden_size=64, num_heads=3)


def test_unknown_hub_id_fails_at_once_offline() -> None:
    assert encoders._hub_offline(), "conftest sets HF_HUB_OFFLINE=1"
    encoder = HubEncoder("made-up-org/no-such-biomedical-model")
    start = time.perf_counter()
    with pytest.raises(EncoderNotFoundError) as err:
        encoder.resolve()
    assert time.perf_counter() - start < 5
    message = str(err.value)
    for hint in ("model=minilm", "model=tiny", "model.name_or_path="):
        assert hint in message
    assert "made-up-org/no-such-biomedical-model" in message


def test_unreachable_hub_fails_with_alternatives(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(hub_id: str, revision: str | None) -> None:
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(encoders, "_hub_offline", lambda: False)
    monkeypatch.setattr(encoders, "_probe_hub", no_network)
    with pytest.raises(EncoderNotFoundError, match="cannot reach.*model=minilm"):
        HubEncoder("made-up-org/no-such-biomedical-model").resolve()


def test_local_folders(tiny_model_dir: Path, tmp_path: Path) -> None:
    encoder = HubEncoder(str(tiny_model_dir))
    assert encoder.resolve() == str(tiny_model_dir)
    assert encoder.name == Path(tiny_model_dir).name.lower()
    assert encoder.load_tokenizer().is_fast
    with pytest.raises(EncoderNotFoundError, match="no folder"):
        HubEncoder(str(tmp_path / "missing")).resolve()
    with pytest.raises(EncoderNotFoundError, match="no config.json"):
        HubEncoder(str(tmp_path)).resolve()
    # A bioner-train run folder: its exported model/ is the folder meant.
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    with pytest.raises(EncoderNotFoundError, match=r"the run's model/ folder is one: .*model$"):
        HubEncoder(str(tmp_path)).resolve()


class RunsCode:
    """Unpickled, it would create the file ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_pickled_weights_file_is_refused_and_runs_nothing(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Files from others are data: a pytorch_model.bin that names code is one message, and
    the code it names never runs; a .bin of plain tensors still loads."""
    import shutil

    from safetensors.torch import load_file

    from bioner.errors import FormatError

    folder = tmp_path / "from-someone"
    shutil.copytree(tiny_model_dir, folder)
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(weights, folder / "pytorch_model.bin")  # plain tensors: data
    assert HubEncoder(str(folder)).load_model(ID2LABEL) is not None
    marker = tmp_path / "ran"
    torch.save({"weights": RunsCode(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(
        FormatError, match="from-someone: its weights file is a pickle that holds more"
    ):
        HubEncoder(str(folder)).load_model(ID2LABEL)
    assert not marker.exists()


def test_a_config_that_names_code_of_its_own_is_refused_and_runs_nothing(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """transformers imports the .py file that a config.json's auto_map names when trusted, and
    asks "Do you wish to run the custom code? [y/N]" on a terminal when not told; bioner tells
    it never to, and says so."""
    import json
    import shutil

    from bioner.errors import FormatError

    folder = tmp_path / "custom"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    # A model type transformers does not know: only the folder's code could build it.
    config["model_type"] = "custombert"
    config["auto_map"] = {"AutoConfig": "custom.Config", "AutoModel": "custom.Model"}
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "ran"
    (folder / "custom.py").write_text(f"open({str(marker)!r}, 'w')\n")
    for load in (
        HubEncoder(str(folder)).load_tokenizer,
        lambda: HubEncoder(str(folder)).load_model(ID2LABEL),
    ):
        with pytest.raises(FormatError, match="custom: its config.json names code of its own"):
            load()
    assert not marker.exists()


def _drop_model_type(folder: Path) -> None:
    import json

    config = json.loads((folder / "config.json").read_text())
    del config["model_type"]
    (folder / "config.json").write_text(json.dumps(config))


def _widen(folder: Path) -> None:
    import json

    config = json.loads((folder / "config.json").read_text())
    config["hidden_size"] = 48  # the weights have 64
    (folder / "config.json").write_text(json.dumps(config))


def _shrink_vocabulary(folder: Path) -> None:
    import json

    config = json.loads((folder / "config.json").read_text())
    config["vocab_size"] = 1000
    (folder / "config.json").write_text(json.dumps(config))


def _as_bart(folder: Path) -> None:
    import json

    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "bart"  # an encoder-decoder: no token-classification class
    (folder / "config.json").write_text(json.dumps(config))


def _cut_weights(folder: Path) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[:5000])


def _remove(*names: str):
    def remove(folder: Path) -> None:
        for name in names:
            (folder / name).unlink()

    return remove


@pytest.mark.parametrize(
    ("damage", "load", "message"),
    [
        # Saved with model.save_pretrained only: transformers builds a tokenizer of five special
        # tokens, every word became [UNK], and the run trained on nothing, silently.
        (
            _remove("tokenizer.json", "tokenizer_config.json"),
            "tokenizer",
            r"turns each of the words the, of, .* into \[UNK\] \(its vocabulary has 5 entries\): "
            "the folder lacks its tokenizer's files",
        ),
        (
            lambda f: (f / "tokenizer.json").write_text('{"broken'),
            "tokenizer",
            r"tokenizer.json: not valid JSON \(",
        ),
        (_drop_model_type, "tokenizer", r"Unrecognized model .* `model_type`"),
        (_remove("model.safetensors"), "model", r"damaged: Error no file named model.safetensors"),
        (_cut_weights, "model", r"damaged: its weights file cannot be read \(.*\): cut short"),
        (_widen, "model", r"damaged: the weights do not have the shapes that its config.json"),
        (_as_bart, "model", r"no AutoModelForTokenClassification for its model type \(bart\)"),
        # Another model's tokenizer with more entries than the embedding table has rows: an
        # IndexError in the first batch that held one of its ids.
        (
            _shrink_vocabulary,
            "tokenizer",
            r"has 30522 entries, but the model has 1000 embedding rows .* another model",
        ),
    ],
)
def test_a_folder_transformers_cannot_read_is_one_message_naming_it(
    tiny_model_dir: Path, tmp_path: Path, damage, load: str, message: str
) -> None:
    import shutil

    from bioner.errors import FormatError

    folder = tmp_path / "damaged"
    shutil.copytree(tiny_model_dir, folder)
    damage(folder)
    encoder = HubEncoder(str(folder))
    with pytest.raises(FormatError, match=message):
        encoder.load_tokenizer() if load == "tokenizer" else encoder.load_model(ID2LABEL)


def test_a_sentencepiece_folder_without_its_converter_names_the_package(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    # DeBERTa-v3's hub folders ship spm.model and no tokenizer.json: transformers converts it
    # with sentencepiece, and without it said "`tiktoken` is required to read a `tiktoken` file".
    import importlib.util
    import json
    import shutil

    from bioner.errors import FormatError

    if importlib.util.find_spec("sentencepiece") is not None:
        pytest.skip("sentencepiece is installed: the folder's tokenizer converts")
    folder = tmp_path / "deberta-v3"
    shutil.copytree(tiny_model_dir, folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    (folder / "spm.model").write_bytes(bytes(range(256)) * 8)
    config = {"tokenizer_class": "DebertaV2Tokenizer", "unk_token": "[UNK]"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(FormatError, match=r"\(spm.model\) needs .* pip install sentencepiece"):
        HubEncoder(str(folder)).load_tokenizer()


def test_missing_package_is_named() -> None:
    with pytest.raises(EncoderNotFoundError, match="pip install no-such-package"):
        PackagedEncoder(package="no_such_package").resolve()


def test_bad_id2label_and_dropout(tiny_model_dir: Path) -> None:
    encoder = HubEncoder(str(tiny_model_dir), name="tiny")
    with pytest.raises(ValueError, match="0..n-1"):
        encoder.load_model({1: "O", 2: "B-X"})
    with pytest.raises(ValueError, match="dropout"):
        encoder.load_model(ID2LABEL, dropout=1.5)


@pytest.mark.parametrize(
    ("name", "cls", "short"),
    [
        ("biobert", HubEncoder, "biobert"),
        ("pubmedbert", HubEncoder, "pubmedbert"),
        ("minilm", PackagedEncoder, "minilm"),
        ("tiny", TinyBert, "tiny"),
    ],
)
def test_model_configs_instantiate(
    name: str, cls: type, short: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIONER_CACHE_DIR", str(tmp_path))
    cfg = OmegaConf.merge(
        {"paths": OmegaConf.load(CONFIG_DIR / "paths" / "default.yaml")},
        {"model": OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml")},
    )
    encoder = instantiate(cfg.model)  # no I/O: nothing is resolved or downloaded here
    assert type(encoder) is cls
    assert encoder.name == short
    if name == "tiny":
        assert encoder.cache_dir == tmp_path
    if name == "biobert":
        assert encoder.tokenizer_kwargs == {"do_lower_case": False}  # BioBERT is cased


def test_half_precision_checkpoints_train_from_fp32_weights(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    # transformers 5 keeps a checkpoint's saved dtype; a bf16 folder must still give fp32
    # master weights (equal to the saved values), or mixed precision has nothing to cast from.
    from transformers import AutoModel

    folder = tmp_path / "bf16"
    AutoModel.from_pretrained(tiny_model_dir).to(torch.bfloat16).save_pretrained(folder)
    encoder = HubEncoder(str(folder))
    model = encoder.load_model(ID2LABEL)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    saved = AutoModel.from_pretrained(folder, dtype=torch.bfloat16).embeddings.word_embeddings
    loaded = model.base_model.embeddings.word_embeddings
    assert torch.equal(loaded.weight, saved.weight.float())


@pytest.mark.parametrize(
    ("config_class", "limit"),
    [
        # Number positions from pad_token_id + 1 = 2: two rows of the table are never used.
        ("LongformerConfig", 64),
        ("MPNetConfig", 64),
        ("CamembertConfig", 64),
        ("XLMRobertaConfig", 64),
        ("BertConfig", 66),
        ("DebertaV2Config", 66),
    ],
)
def test_the_input_limit_leaves_out_positions_a_model_never_numbers(
    tmp_path: Path, config_class: str, limit: int
) -> None:
    # Without a limit from the tokenizer, the position table says it (a Longformer whose
    # tokenizer config had none took inputs two positions too long: IndexError in training).
    import transformers

    config = getattr(transformers, config_class)(max_position_embeddings=66, pad_token_id=1)
    config.save_pretrained(tmp_path)
    assert HubEncoder(str(tmp_path))._derive_max_length(str(tmp_path), None) == limit


@pytest.mark.parametrize(
    ("config_class", "expected"),
    [
        (
            "BertConfig",
            {"hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"},
        ),
        # A fixed list of names left ModernBERT's embedding and MLP dropout at their own values.
        (
            "ModernBertConfig",
            {"attention_dropout", "embedding_dropout", "mlp_dropout", "classifier_dropout"},
        ),
        (
            "AlbertConfig",
            {"hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout_prob"},
        ),
        ("T5Config", {"dropout_rate", "classifier_dropout"}),
    ],
)
def test_module_dropout_reaches_every_dropout_of_the_family(
    config_class: str, expected: set
) -> None:
    import transformers

    from bioner.models.encoders import dropout_attributes

    assert set(dropout_attributes(getattr(transformers, config_class)())) == expected


def test_a_trained_tagger_folder_keeps_its_head_where_the_labels_fit(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Fine-tuning from a tagger trained elsewhere: the same labels keep its head, matched by
    name; other labels (BC5CDR's tagger on NCBI-disease) get a new head on its encoder, where
    loading failed for a size mismatch (or, at the same size, kept rows of other labels)."""
    import shutil

    folder = tmp_path / "tagger"
    shutil.copytree(tiny_model_dir, folder)
    trained = HubEncoder(str(tiny_model_dir)).load_model(ID2LABEL)
    trained.save_pretrained(folder)
    rows = dict(zip(ID2LABEL.values(), trained.classifier.weight.detach().clone(), strict=True))
    encoder = HubEncoder(str(folder))

    reordered = dict(enumerate(reversed(list(ID2LABEL.values()))))
    head = encoder.load_model(reordered).classifier.weight
    for i, label in reordered.items():
        assert torch.equal(head[i], rows[label]), label

    disease = {0: "O", 1: "B-Disease", 2: "I-Disease"}
    model = encoder.load_model(disease)
    assert model.classifier.weight.shape[0] == 3
    embeddings = model.get_input_embeddings().weight
    assert torch.equal(embeddings, trained.get_input_embeddings().weight)  # the encoder stays

    others = {i: label.replace("Chemical", "Gene") for i, label in ID2LABEL.items()}
    head = encoder.load_model(others).classifier.weight
    assert not torch.equal(head[1], rows["B-Chemical"])  # started afresh, not Chemical's row


def test_model_hub_takes_any_folder_with_its_own_tokenizer_settings(tiny_model_dir: Path) -> None:
    from bioner.config import compose_config

    cfg = compose_config("train", ["model=hub", f"model.name_or_path={tiny_model_dir}"])
    encoder = instantiate(cfg.model)
    assert type(encoder) is HubEncoder and encoder.name == "hub"
    assert encoder.tokenizer_kwargs == {}  # do_lower_case: null, the folder's
    assert encoder.load_tokenizer().tokenize("Aspirin") == ["as", "##pi", "##rin"]
