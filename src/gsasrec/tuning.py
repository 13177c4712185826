"""Hyperparameter search with Optuna (`gsasrec tune`): each trial is a short training run from the derived
settings (derive.py) with some fields drawn from SEARCH_SPACE, pruned on validation when it is clearly
behind, in a study kept in a database (an SQLite file in the tune folder, or any URL Optuna accepts, which
several processes or machines may share). An interrupted tune resumes where it was: finished trials stay
finished, and --trials counts them.

    <tune dir>/study.db          the Optuna study (SQLite), unless --storage names another database
    <tune dir>/trial-N/          each trial's run folder (config.py, metrics.jsonl, best.pt, ...)
    <tune dir>/best_config.py    the best trial's config, to train with `gsasrec train --config`
    <tune dir>/trials.csv        one row per trial: number, state, value, minutes, parameters
    <tune dir>/trials.png        validation metric against trial number, with the best so far
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path

from gsasrec.config import GSASRecExperimentConfig, config_file_text
from gsasrec.data.folder import Dataset
from gsasrec.derive import (
    derive_config,
    measure_step_seconds,
    steps_in_minutes,
    with_overrides,
)
from gsasrec.errors import GSASRecError
from gsasrec.figures import save_figure, subplots
from gsasrec.files import write_text_atomic

STUDY_FILE = "study.db"
BEST_CONFIG = "best_config.py"
TRIALS_TABLE = "trials.csv"
TRIALS_PLOT = "trials.png"

# field -> (kind, choices or (low, high)): what a trial may change; everything else is derived.
SEARCH_SPACE = {
    "embedding_dim": ("choice", (32, 64, 128, 256)),
    "num_blocks": ("choice", (1, 2, 3)),
    "dropout_rate": ("float", (0.0, 0.5)),
    "learning_rate": ("log", (2e-4, 5e-3)),
    "negs_per_pos": ("choice", (16, 64, 256)),
    "gbce_t": ("float", (0.5, 1.0)),
}
# The pruner waits for this many finished trials, and each trial for this many validations, before it
# compares: earlier validations say little.
STARTUP_TRIALS, WARMUP_VALIDATIONS = 3, 2


@dataclass
class TuneOptions:
    trials: int
    minutes_per_trial: float | None  # each trial's budget: minutes, or
    steps_per_trial: int | None  # steps (one of the two)
    output_dir: Path
    storage: str | None = None  # None: sqlite:///<output_dir>/study.db
    study_name: str | None = None  # None: gsasrec-<dataset>
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"


def suggest(trial, num_items: int) -> dict:
    """One trial's fields from SEARCH_SPACE (negatives capped by the catalogue)."""
    values = {}
    for name, (kind, space) in SEARCH_SPACE.items():
        if kind == "choice":
            values[name] = trial.suggest_categorical(name, list(space))
        else:
            values[name] = trial.suggest_float(name, *space, log=kind == "log")
    values["negs_per_pos"] = max(1, min(values["negs_per_pos"], num_items - 1))
    return values


def open_study(dataset_name: str, options: TuneOptions):
    import optuna

    options.output_dir.mkdir(parents=True, exist_ok=True)
    url = options.storage or f"sqlite:///{(options.output_dir / STUDY_FILE).resolve()}"
    try:
        # A heartbeat marks the trials of a killed process as failed, so a resumed tune does not wait on them.
        storage = optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=90)
    except Exception as error:  # SQLAlchemy and Optuna raise many kinds for a bad URL
        raise GSASRecError(f"cannot open the study database {url!r}: {str(error).splitlines()[0]}") from None
    pruner = optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS, n_warmup_steps=0,
                                         n_min_trials=STARTUP_TRIALS)
    return optuna.create_study(study_name=options.study_name or f"gsasrec-{dataset_name}", storage=storage,
                               direction="maximize", load_if_exists=True, pruner=pruner,
                               sampler=optuna.samplers.TPESampler(seed=options.seed))


def finished_trials(study) -> list:
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return [t for t in study.get_trials(deepcopy=False) if t.state in done]


def tune(dataset: Dataset, options: TuneOptions, report=print) -> GSASRecExperimentConfig:
    """Run trials until the study has options.trials finished ones; write the best config, the table and
    the plot; return the best config."""
    import optuna
    import torch

    from gsasrec.training import RunOptions, train

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(dataset.name, options)
    device = torch.device(options.device)
    base = derive_config(dataset, max_steps=1).config
    metric = base.val_metric

    def objective(trial) -> float:
        fields = suggest(trial, dataset.num_items)
        config = with_overrides(base, fields)
        if options.steps_per_trial is None:
            seconds = measure_step_seconds(config, dataset, device, options.precision)
            config = with_overrides(config, {"lr_decay_steps": steps_in_minutes(options.minutes_per_trial, seconds)})
        else:
            config = with_overrides(config, {"lr_decay_steps": options.steps_per_trial})
        validations, pruned = [], []

        def after_validation(steps: int, metrics: dict) -> bool:
            validations.append(metrics[metric])
            trial.report(metrics[metric], len(validations))
            if len(validations) > WARMUP_VALIDATIONS and trial.should_prune():
                pruned.append(steps)
            return bool(pruned)

        started = time.perf_counter()
        result = train(config, dataset, RunOptions(
            output_dir=options.output_dir / f"trial-{trial.number}", device=device,
            seed=options.seed + trial.number, max_minutes=options.minutes_per_trial,
            max_steps=options.steps_per_trial, progress=False, precision=options.precision, force=True,
            after_validation=after_validation, compare_baselines=False))
        if result.interrupted:  # Ctrl-C or SIGTERM: the trial fails (a rerun resumes the study) and tune stops
            raise KeyboardInterrupt
        trial.set_user_attr("minutes", round((time.perf_counter() - started) / 60, 2))
        trial.set_user_attr("steps", result.steps)
        trial.set_user_attr("config", config.to_dict())
        if pruned:
            raise optuna.TrialPruned(f"stopped at step {pruned[0]}: {max(validations):.4f}, behind the median")
        return result.best_metric

    def after_trial(study, trial) -> None:
        finished = len(finished_trials(study))
        params = " ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
        value = "pruned" if trial.state == optuna.trial.TrialState.PRUNED else (
            f"{metric} {trial.value:.4f}" if trial.value is not None else trial.state.name.lower())
        best = _best(study)
        best_text = f"best {best.value:.4f} (trial {best.number})" if best else "no best yet"
        report(f"trial {trial.number} [{finished}/{options.trials}]: {value} in "
               f"{trial.user_attrs.get('minutes', 0):.1f} min; {best_text}; {params}")

    remaining = options.trials - len(finished_trials(study))
    if remaining <= 0:
        report(f"the study already has {options.trials} finished trials; writing its results")
    else:
        budget = (f"{options.steps_per_trial} steps" if options.steps_per_trial is not None
                  else f"{options.minutes_per_trial:g} minutes")
        report(f"tuning {dataset.name}: {remaining} trials of {budget} "
               f"({len(finished_trials(study))} already finished), study in {study_location(options)}")
        stop = optuna.study.MaxTrialsCallback(options.trials, states=(optuna.trial.TrialState.COMPLETE,
                                                                      optuna.trial.TrialState.PRUNED))
        study.optimize(objective, n_trials=remaining, callbacks=[after_trial, stop], catch=(GSASRecError,))
    return write_results(study, options, metric)


def study_location(options: TuneOptions) -> str:
    return options.storage or str(options.output_dir / STUDY_FILE)


def _best(study):
    complete = [t for t in study.get_trials(deepcopy=False) if t.value is not None and t.state.name == "COMPLETE"]
    return max(complete, key=lambda t: t.value, default=None)


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def write_results(study, options: TuneOptions, metric: str) -> GSASRecExperimentConfig:
    from gsasrec.config import make_config

    best = _best(study)
    if best is None:
        raise GSASRecError(f"no trial of the study finished (see {study_location(options)})")
    config = make_config(**best.user_attrs["config"])
    reasons = {name: f"tuned: trial {best.number}, validation {metric} {best.value:.4f}" for name in best.params}
    header = (f"The best of {len(finished_trials(study))} trials of `gsasrec tune` (study {study.study_name}).\n"
              f"Train with: gsasrec train --config {options.output_dir / BEST_CONFIG}")
    write_text_atomic(options.output_dir / BEST_CONFIG, config_file_text(config, reasons, header))
    write_text_atomic(options.output_dir / TRIALS_TABLE, trials_table(study))
    plot_trials(study, options.output_dir / TRIALS_PLOT, metric)
    return config


def trials_table(study) -> str:
    names = list(SEARCH_SPACE)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["trial", "state", "value", "minutes", "steps", *names])
    for t in study.get_trials(deepcopy=False):
        writer.writerow([t.number, t.state.name.lower(), "" if t.value is None else f"{t.value:.6f}",
                         t.user_attrs.get("minutes", ""), t.user_attrs.get("steps", ""),
                         *[t.params.get(name, "") for name in names]])
    return out.getvalue()


def plot_trials(study, path: Path, metric: str) -> Path:
    """Each trial's best validation metric (pruned ones: their last reported value, hollow) and the best
    so far."""
    figure, axes = subplots(figsize=(7, 4), dpi=100)
    best_so_far, running = [], -math.inf
    for t in study.get_trials(deepcopy=False):
        value = t.value if t.value is not None else (max(t.intermediate_values.values())
                                                     if t.intermediate_values else None)
        if value is None:
            continue
        pruned = t.state.name == "PRUNED"
        axes.plot([t.number], [value], "o", color="#3b75af", fillstyle="none" if pruned else "full")
        if not pruned and t.value is not None:
            running = max(running, t.value)
        best_so_far.append((t.number, running))
    shown = [(n, v) for n, v in best_so_far if v > -math.inf]
    if shown:
        axes.step(*zip(*shown), where="post", color="#d0603c", label="best so far")
        axes.legend(loc="lower right")
    axes.set_xlabel("trial")
    axes.set_ylabel(f"validation {metric}")
    axes.set_title(f"{study.study_name}: {len(study.trials)} trials (hollow: pruned)")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path)
