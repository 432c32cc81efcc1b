"""The application layer: what turns a config into a run, shared by every entry point.

* :mod:`bioner.runtime.build`: start a run (folder, config checks, seeds), build its data module,
  callbacks and trainer, fit, and end it (scores, export, the run's README).
* :mod:`bioner.runtime.run`: the run folder, the callback and logger groups, how training ended.
* :mod:`bioner.runtime.finish`: the evaluation tail: prediction files, confusion plots,
  post-processing, robustness and ``metrics.json``.
* :mod:`bioner.runtime.checkpoints`: finding a checkpoint, reading the config and preprocessing
  it stores, resuming.

Entry points (``bioner.train``, ``bioner.eval``, ...) import from here; nothing here imports an
entry point, and the library layers below (data, models, inference, ...) never import from here.
"""

from bioner.runtime.build import (
    Run,
    build_callbacks,
    build_datamodule,
    build_trainer,
    check_monitors,
    closing,
    exit_on_signal,
    export_metadata,
    finish_run,
    fit,
    fit_or_exit,
    release_training_state,
    score_and_export,
    scored_checkpoint,
    start_run,
    training_records,
)
from bioner.runtime.checkpoints import (
    UntrustedCheckpointError,
    read_checkpoint,
    resolve_checkpoint,
    resolve_ckpt_path,
    stored_config,
    training_config,
)
from bioner.runtime.finish import Scoring, build_scoring, finish_evaluation
from bioner.runtime.run import (
    finish_loggers,
    instantiate_callbacks,
    instantiate_loggers,
    log_config,
    prepare_run_dir,
    resume_command,
    write_run_readme,
)

__all__ = [
    "Run",
    "Scoring",
    "UntrustedCheckpointError",
    "build_callbacks",
    "build_datamodule",
    "build_scoring",
    "build_trainer",
    "check_monitors",
    "closing",
    "exit_on_signal",
    "export_metadata",
    "finish_evaluation",
    "finish_loggers",
    "finish_run",
    "fit",
    "fit_or_exit",
    "instantiate_callbacks",
    "instantiate_loggers",
    "log_config",
    "prepare_run_dir",
    "read_checkpoint",
    "release_training_state",
    "resolve_checkpoint",
    "resolve_ckpt_path",
    "resume_command",
    "score_and_export",
    "scored_checkpoint",
    "start_run",
    "stored_config",
    "training_config",
    "training_records",
    "write_run_readme",
]
