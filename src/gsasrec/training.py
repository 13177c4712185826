"""The training loop (docs/reference.md, "Training"): Adam, epochs of at most max_batches_per_epoch batches,
validation after each epoch, the best checkpoint by val_metric, early stopping.

Runs are resumable: after every epoch (and on SIGTERM or Ctrl-C, mid-epoch) the whole state goes to
last.pt: weights, optimizer, every random stream, the epoch's user order and the position in it, and
the early-stopping state. A resumed CPU run with a fixed seed ends with the same weights as one that was
never interrupted. With torchrun (WORLD_SIZE > 1) the loop runs data-parallel (distributed.py).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from gsasrec import native
from gsasrec.baselines import BASELINES, evaluate_baseline
from gsasrec.batches import TrainingBatches
from gsasrec.checkpoint import (
    LAST_CHECKPOINT,
    dataset_location,
    load_model,
    read_resume_state,
    save_checkpoint,
    store_transition_term,
)
from gsasrec.config import GSASRecExperimentConfig, make_config
from gsasrec.data.folder import Dataset, fingerprint_difference
from gsasrec.data.recipes import open_dataset
from gsasrec.distributed import (
    finish_together,
    from_main,
    gather_at_main,
    join,
    leave,
    mean_over_ranks,
    object_from_main,
)
from gsasrec.errors import GSASRecError, first_line
from gsasrec.evaluation import check_limit, choose_transition_weights, evaluate_config
from gsasrec.model import GSASRec
from gsasrec.objectives import objective_for
from gsasrec.progress import LINE_EVERY_SECONDS, Budget, RunProgress
from gsasrec.runs import RUN_CONFIG, RunDir, default_run_dir, environment, read_run_config
from gsasrec.runstate import Progress, RunState
from gsasrec.runtime import is_main_process, new_seed, retain_freed_memory, stop_requests, warn_if_emulated
from gsasrec.step import TrainingStep, learning_rate_at
from gsasrec.transition_term import TransitionTerm


@dataclass
class RunOptions:
    """How one run goes, beyond the experiment config."""

    output_dir: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int | None = None
    max_steps: int | None = None
    max_minutes: float | None = None
    progress: bool | None = None  # a bar (True), plain lines (False) or whichever fits stdout (None)
    progress_every: float = LINE_EVERY_SECONDS  # seconds between plain progress lines
    force: bool = False  # start over in an output_dir that already holds a run
    precision: str = "fp32"  # "bf16": autocast matmuls to bfloat16; the loss stays float32
    compile: bool = False  # torch.compile the model for training steps
    config_notes: dict = field(default_factory=dict)  # field -> why it has its value, for <run>/config.py
    # Called after each validation with (steps, metrics); True stops the run there, as early stopping
    # does (tuning prunes a trial that is clearly behind with it). Single-process runs only.
    after_validation: Callable[[int, dict], bool] | None = field(default=None, repr=False)
    compare_baselines: bool = True  # print the baselines' validation figure beside the run's at its end
    command: str | None = None  # the command line that started the run, kept in its checkpoints


@dataclass
class RunResult:
    run_dir: Path
    best_checkpoint: Path
    best_metric: float
    best_step: int
    steps: int
    epochs: int
    seconds: float
    val_metric: str = "nDCG@10"
    interrupted: bool = False
    model: GSASRec | None = field(default=None, repr=False)  # the final weights
    baselines: dict = field(default_factory=dict)  # baseline name -> its val_metric on the validation users


class Stop(IntEnum):
    """What happens after a step: rank 0's decision, broadcast to every rank as an int."""

    CONTINUE = 0
    BUDGET_SPENT = 1  # --max-steps or --max-minutes reached: validate, save, end (resumable)
    INTERRUPTED = 2  # SIGTERM or Ctrl-C: save last.pt mid-epoch and end


def train(config: GSASRecExperimentConfig, dataset: Dataset, options: RunOptions) -> RunResult:
    """Train until early stopping, max_epochs, --max-steps or --max-minutes; return where the best is.

    A run folder that already holds a run is refused (its best.pt and log would mix with the new run's)
    unless options.force, which clears it first. Every rank checks before any rank writes: joining the
    process group waits for all of them.
    """
    with run_lock(options.output_dir):
        if options.output_dir is not None:
            RunDir(options.output_dir).claim(options.force, is_main_process())
        trainer = Trainer(config, dataset, options)
        try:
            return finish_together(trainer.world, trainer.run())
        finally:
            leave(trainer.world)


def run_lock(run_dir: str | Path | None):
    """The run folder's lock, held by the main process for the whole run: a second `train` or `--resume`
    on the same folder is refused at once instead of interleaving its records and checkpoints."""
    if run_dir is None or not is_main_process():
        return nullcontext()
    return RunDir(run_dir).lock()


# Logits one training step may hold: (batch, length, 1 + negatives). 2^31 float32 values are 8 GiB, and
# the backward pass and a sparse path's gathered (..., dim) embeddings multiply that.
MAX_STEP_LOGITS = 1 << 31


def check_step_size(config: GSASRecExperimentConfig, num_items: int) -> None:
    """Refuse, before allocating anything, a config whose training step cannot fit in memory."""
    per_position = objective_for(config, num_items).logits_per_position
    logits = config.train_batch_size * config.sequence_length * per_position
    if logits > MAX_STEP_LOGITS:
        what = f"the {num_items + 2:,} rows of the catalogue (loss 'ce')" if config.loss == "ce" else \
            f"negs_per_pos + 1 = {per_position:,}"
        remedy = "use loss 'sampled_ce' or 'gbce', or lower" if config.loss == "ce" else "lower negs_per_pos or"
        raise GSASRecError(
            f"a training step would hold {logits:,} logits (train_batch_size x sequence_length x {what}), over "
            f"{MAX_STEP_LOGITS:,} ({MAX_STEP_LOGITS * 4 / 2**30:.0f} GiB in float32); {remedy} train_batch_size "
            f"or sequence_length")


# Run options that a resumed run keeps from the interrupted one unless told otherwise.
RECORDED_OPTIONS = ("max_steps", "max_minutes", "precision", "compile", "command")


def resume(run_dir: str | Path, datasets_dir: str | Path | None = None, **changes) -> RunResult:
    """Continue the run in run_dir from its last.pt.

    The run goes on as it was started (its budget, precision and compile setting) except for what
    `changes` sets: RunOptions fields, None keeping the recorded value. Budgets count the whole run:
    max_steps=400 stops at step 400, max_minutes at that much training time in all. The dataset is the
    folder the run trained on, or <datasets_dir>/<dataset_name> when given.
    """
    with run_lock(run_dir):
        return resume_locked(run_dir, datasets_dir, changes)


def resume_locked(run_dir: str | Path, datasets_dir: str | Path | None, changes: dict) -> RunResult:
    state = read_resume_state(run_dir)
    config = make_config(**state["config"])  # read_resume_state upgraded it to today's format
    folder = dataset_location(state, config.dataset_name, datasets_dir)  # the rule evaluate and recommend use
    dataset = open_dataset(folder.name, folder.parent)
    check_same_dataset(run_dir, state["dataset_stats"] or {}, dataset)
    options = resume_options(run_dir, state, changes)
    reason = why_ended(state, options)
    if reason:
        raise GSASRecError(f"{run_dir} {reason}")
    if is_main_process():
        print(resume_line(run_dir, state["progress"], options), flush=True)
    if changes.get("precision") is None:  # the recorded one, maybe from other hardware: warned as if given
        warn_if_emulated(options.precision, options.device)
    trainer = Trainer(config, dataset, options, resume_state=state)
    try:
        return finish_together(trainer.world, trainer.run())
    finally:
        leave(trainer.world)


def resume_options(run_dir: str | Path, state: dict, changes: dict) -> RunOptions:
    """The recorded run options of last.pt's state, with `changes` (None keeps the recorded value)."""
    given = {name: value for name, value in changes.items() if value is not None}
    recorded = state.get("run_options", {})
    if set(recorded) - set(RECORDED_OPTIONS):
        raise GSASRecError(f"{Path(run_dir) / LAST_CHECKPOINT}: 'run_options' has unknown field "
                           f"{sorted(set(recorded) - set(RECORDED_OPTIONS))[0]!r}")
    options = RunOptions(**{**recorded, **given})
    options.output_dir, options.seed = Path(run_dir), state["seed"]
    return options


def why_ended(state: dict, options: RunOptions) -> str | None:
    """Why the run of last.pt's state cannot go on under `options` (finished, or its budget spent), or None."""
    progress = state["progress"]
    if progress.get("finished"):
        return "has finished (early stopping or max_epochs); nothing to resume"
    steps, seconds = progress["steps"], progress["seconds"]
    if (options.max_steps is not None and steps >= options.max_steps) or \
            (options.max_minutes is not None and seconds >= options.max_minutes * 60):
        return (f"stopped at its budget (step {steps}, {seconds / 60:.1f} min); give a larger --max-steps or "
                f"--max-minutes to continue")
    return None


def existing_run(run_dir: str | Path) -> tuple[dict | None, dict | None]:
    """(the config of the run that run_dir holds, or None when it holds none; its last.pt state, or None
    when it has not saved one yet): what `train --resume-if-exists` decides from."""
    run_dir = Path(run_dir)
    if (run_dir / LAST_CHECKPOINT).exists():
        state = read_resume_state(run_dir)
        return state["config"], state
    if (run_dir / RUN_CONFIG).exists():
        return make_config(**read_run_config(run_dir)["config"]).to_dict(), None
    return None, None


def config_difference(recorded: dict, wanted: dict) -> str | None:
    """The first field of `wanted` whose value the recorded config does not have, described; or None."""
    for name, value in wanted.items():
        if recorded.get(name) != value:
            return f"{name} is {recorded.get(name)!r} there, {value!r} here"
    return None


def check_same_dataset(run_dir: str | Path, trained_on: dict, dataset: Dataset) -> None:
    """Refuse to resume on another dataset: its counts (items, users, interactions) are the fingerprint
    recorded with the run; another folder that only shares the item count would train on silently."""
    difference = fingerprint_difference(trained_on, dataset.stats)
    if difference:
        raise GSASRecError(f"{run_dir} was trained on a dataset with {difference} ({dataset.path}): resume it "
                           f"on the dataset it was trained on")


def resume_line(run_dir: str | Path, progress: dict, options: RunOptions) -> str:
    """'resuming runs/x at step 624 (epoch 14, 0 of its 48 steps done), 3.1 minutes trained; budget: ...'"""
    budget = " and ".join(part for part in (
        f"{options.max_steps} steps" if options.max_steps is not None else "",
        f"{options.max_minutes:g} minutes" if options.max_minutes is not None else "") if part) or "none"
    best = progress.get("best_metric")
    best_text = f", best {best:.4f} at step {progress.get('best_step')}" if best not in (None, -math.inf) else ""
    return (f"resuming {run_dir} at step {progress['steps']} (epoch {progress['epoch']}, {progress['batch']} of "
            f"its steps done), {progress['seconds'] / 60:.1f} minutes trained{best_text}; budget: {budget}")


class Trainer:
    def __init__(self, config: GSASRecExperimentConfig, dataset: Dataset, options: RunOptions,
                 resume_state: dict | None = None):
        if dataset.num_items < 2:
            raise GSASRecError(f"dataset {dataset.name}: training needs at least 2 items, found {dataset.num_items}")
        if len(dataset.val.inputs) == 0:
            raise GSASRecError(f"dataset {dataset.name}: val/input.txt is empty; validation needs users")
        check_step_size(config, dataset.num_items)
        check_limit(config, dataset.num_items, dataset.name)
        self.config, self.dataset, self.options = config, dataset, options
        self.dataset_path = str(dataset.path.resolve())
        self.world = join(options.device)
        # Settings derived from a timing (train --dataset) may differ between ranks: rank 0's are the run's.
        if self.world.distributed:
            self.config = config = make_config(**object_from_main(self.world, config.to_dict()))
        device = self.world.device
        if device.type == "cpu":
            retain_freed_memory()
        self.seed = options.seed if options.seed is not None else new_seed()
        self.seed = from_main(self.world, self.seed)
        self.run_dir = Path(options.output_dir or default_run_dir(config.dataset_name))
        self.files = RunDir(self.run_dir)
        torch.manual_seed(self.seed)  # model initialisation (identical on every rank) and dropout
        self.model = GSASRec.from_config(config, dataset.num_items).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate,
                                          fused=device.type == "cuda")
        # One stream orders users (the same on every rank), one draws negatives (different per rank).
        self.order_generator = torch.Generator(device=device).manual_seed(self.seed)
        self.term_figure: float | None = None  # val_metric of the final weights with the transition term
        self.negatives_generator = torch.Generator(device=device).manual_seed(self.seed + 7919 * (self.world.rank + 1))
        self.batches = TrainingBatches(dataset.train, config.sequence_length, self.model.padding_id,
                                       config.train_batch_size, device, config.random_windows)
        network = self.model
        if self.world.distributed:
            network = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.step = TrainingStep(self.model, self.optimizer, config, dataset.num_items, self.negatives_generator,
                                 options.precision, options.compile, network=network)
        self.progress = Progress()
        self.order: torch.Tensor | None = None
        self.steps_per_epoch = min(len(self.batches), config.max_batches_per_epoch)
        if resume_state is not None:
            self.load_state(resume_state)
        if self.world.is_main:
            try:
                if resume_state is None:
                    self.files.start(self.describe(), config, options.config_notes)
            except (OSError, GSASRecError) as error:  # a file in the way, a read-only folder, a full disk
                reason = str(error) if isinstance(error, GSASRecError) else error.strerror or first_line(error)
                raise GSASRecError(f"cannot write the run folder {self.run_dir}: {reason}") from None
            if resume_state is not None:
                self.files.keep_records_until(self.progress.steps)

    def describe(self) -> dict:
        o = self.options
        return {"config": self.config.to_dict(),
                "run": {"seed": self.seed, "device": str(self.world.device), "max_steps": o.max_steps,
                        "max_minutes": o.max_minutes, "precision": o.precision, "compile": o.compile,
                        "world_size": self.world.size, "dataset_path": str(self.dataset.path)},
                "dataset_stats": self.dataset.stats,
                "environment": environment(self.world.device, self.world.size)}

    def run(self) -> RunResult:
        p, config, world = self.progress, self.config, self.world
        budget = Budget(self.options.max_steps, self.options.max_minutes, spent_seconds=p.seconds)
        progress = RunProgress(budget, config.max_epochs * self.steps_per_epoch, p.steps, self.options.progress,
                               shown=world.is_main, every=self.options.progress_every)
        started = time.perf_counter() - p.seconds
        stop = False
        # SIGTERM and Ctrl-C finish the current step, save last.pt and return.
        with stop_requests() as requests:
            while p.epoch <= config.max_epochs and not stop:
                self.model.train()
                if self.order is None:
                    self.order = self.batches.shuffle(self.order_generator)
                progress.start_epoch(p.epoch, self.steps_per_epoch, p.batch)
                while p.batch < self.steps_per_epoch:
                    batch = self.batches.batch(self.order, p.batch, world.rank, world.size, self.order_generator)
                    for group in self.optimizer.param_groups:  # from the step count: resumes exactly
                        group["lr"] = learning_rate_at(config, p.steps)
                    p.epoch_losses.append(self.step(batch))
                    p.batch += 1
                    p.steps += 1
                    progress.after_step(p.steps, lambda: torch.stack(p.epoch_losses[-10:]).mean().item())
                    # One decision per step, rank 0's, so that every rank stops at the same step.
                    decision = Stop(from_main(world, Stop.INTERRUPTED if requests.stop
                                              else Stop.BUDGET_SPENT if budget.spent(p.steps) else Stop.CONTINUE))
                    if decision is Stop.INTERRUPTED:
                        progress.end_epoch()
                        return self.stop_interrupted(started)
                    if decision is Stop.BUDGET_SPENT:
                        stop = True
                        break
                progress.end_epoch()
                if p.batch < self.steps_per_epoch:
                    # The budget ended mid-epoch: validate the final weights but leave the epoch open, so
                    # that --resume finishes it and every epoch has steps_per_epoch steps.
                    self.validate(started, partial=True)
                else:
                    early_stop = self.end_epoch(started)
                    p.finished = early_stop or p.epoch > config.max_epochs
                    stop = stop or early_stop
                p.seconds = time.perf_counter() - started
                self.save_last()
        if world.is_main and config.transition_term:
            self.fit_transition_term()
        result = self.result(started)
        if world.is_main and self.options.compare_baselines:
            result.baselines = self.compare_with_baselines()
        return result

    def fit_transition_term(self) -> None:
        """Choose the transition term's weights on the validation users, for the final weights and for the
        best ones, and store each in its checkpoint (config.transition_term; transition_term.py)."""
        counted = TransitionTerm.count(self.dataset.train, self.dataset.num_items)
        term, figures = choose_transition_weights(self.model, self.dataset.val, self.config, counted)
        self.model.transition_term = term if term.active else None
        store_transition_term(self.files.last, term)
        if self.files.best.exists():
            best_term = term if self.progress.best_step == self.progress.steps else choose_transition_weights(
                load_model(self.files.best, device=self.world.device)[0], self.dataset.val, self.config, counted)[0]
            store_transition_term(self.files.best, best_term)
        self.term_figure, alone = figures[term.weights], figures[(0.0,) * len(term.weights)]
        weights = ", ".join(f"{w:g}" for w in term.weights)
        orders = ", ".join(str(counts.order) for counts in term.counts)
        tqdm.write(f"transition term: weights {weights} (orders {orders}), validation "
                   f"{self.config.val_metric} {figures[term.weights]:.4f} (the model alone {alone:.4f}); "
                   f"stored in the checkpoints")

    def compare_with_baselines(self) -> dict[str, float]:
        """val_metric of the popularity and transition baselines on the validation users, printed beside
        the run's best: whether the model is worth its cost."""
        config = self.config
        baselines = {name: evaluate_baseline(name, self.dataset.train, self.dataset.val, self.dataset.num_items,
                                             [config.val_metric], config.recommendation_limit,
                                             config.filter_rated)[config.val_metric]
                     for name in BASELINES}
        figures = ", ".join(f"{name} {value:.4f}" for name, value in baselines.items())
        with_term = "" if self.term_figure is None else \
            f", its final weights with the transition term {self.term_figure:.4f}"
        tqdm.write(f"validation {config.val_metric}: this run's best {self.progress.best_metric:.4f}{with_term}; "
                   f"baselines: {figures}")
        return baselines

    def end_epoch(self, started: float) -> bool:
        """Validate, then start the next epoch; True when early stopping says stop."""
        stop = self.validate(started, partial=False)
        p = self.progress
        p.epoch, p.batch, p.epoch_losses, self.order = p.epoch + 1, 0, [], None
        return stop

    def validate(self, started: float, partial: bool) -> bool:
        """Validate (rank 0), log, keep the best; True when early stopping says stop. The validation of a
        partial epoch (a budget stop) is logged and may be the best, but does not count towards patience."""
        p, config = self.progress, self.config
        epoch_loss = torch.stack(p.epoch_losses).mean().item() if p.epoch_losses else float("nan")
        epoch_loss = mean_over_ranks(self.world, epoch_loss)
        stop = False
        if self.world.is_main:
            validation_started = time.perf_counter()
            metrics = evaluate_config(self.model, self.dataset.val, config, config.metrics + [config.val_metric])
            validation_seconds = time.perf_counter() - validation_started
            value = metrics[config.val_metric]
            improved = value > p.best_metric
            if improved:
                p.best_metric, p.best_step, p.epochs_without_improvement = value, p.steps, 0
                save_checkpoint(self.files.best, self.model, config, self.dataset.stats,
                                step=p.steps, epoch=p.epoch, seed=self.seed, val_metrics=metrics,
                                dataset_path=self.dataset_path, command=self.options.command)
            elif not partial:
                p.epochs_without_improvement += 1
            record = {"epoch": p.epoch, "step": p.steps, "loss": epoch_loss, "metrics": metrics, "best": improved,
                      "seconds": round(time.perf_counter() - started, 3),
                      "validation_seconds": round(validation_seconds, 3)}
            if partial:
                record["epoch_steps"] = p.batch
            tqdm.write(self.files.record_epoch(record, config.val_metric))
            stop = p.epochs_without_improvement >= config.early_stopping_patience
            if self.options.after_validation is not None and self.options.after_validation(p.steps, metrics):
                stop = True
        return bool(from_main(self.world, int(stop)))

    def stop_interrupted(self, started: float) -> RunResult:
        self.progress.seconds = time.perf_counter() - started
        self.save_last()
        if self.world.is_main:
            tqdm.write(f"interrupted: saved {self.files.last} at step {self.progress.steps}; "
                       f"continue with: gsasrec train --resume {self.run_dir}")
        result = self.result(started)
        result.interrupted = True
        return result

    def result(self, started: float) -> RunResult:
        p = self.progress
        return RunResult(self.run_dir, self.files.best, p.best_metric, p.best_step, p.steps,
                         p.epoch - 1, time.perf_counter() - started, self.config.val_metric, model=self.model)

    # --- state for resuming --------------------------------------------------------------------------

    def save_last(self) -> None:
        """last.pt: rank 0's weights and Adam's state (the same on every rank), and every rank's random
        streams and epoch losses, gathered to rank 0 (a collective: every rank calls this at the same
        step). A rank that has died makes the gather fail, so no last.pt is written without all of them."""
        p = self.progress
        own = {"rng": self.random_streams(), "epoch_losses": [float(x) for x in p.epoch_losses]}
        ranks = gather_at_main(self.world, own)
        if not self.world.is_main:
            return
        state = RunState(p, self.seed, {name: getattr(self.options, name) for name in RECORDED_OPTIONS},
                         ranks[0]["rng"], self.order, ranks if self.world.distributed else None)
        save_checkpoint(self.files.last, self.model, self.config, self.dataset.stats,
                        dataset_path=self.dataset_path, optimizer=self.optimizer.state_dict(),
                        command=self.options.command, step=p.steps, **state.to_payload())
        # after last.pt: `runs list` reads this small file instead of unpickling weights and Adam's state
        self.files.write_state(p.to_dict())

    def random_streams(self) -> dict:
        cuda = self.world.device.type == "cuda"
        return {"torch": torch.get_rng_state(), "order": self.order_generator.get_state(),
                "negatives": self.negatives_generator.get_state(),
                "cuda": torch.cuda.get_rng_state(self.world.device) if cuda else None}

    def load_state(self, state: dict) -> None:
        """Continue from last.pt. With the world size it was saved with, each rank takes back its own random
        streams and losses: bit-identical on the CPU. With another, ranks it lacks start fresh streams
        (the user order still follows rank 0's), and the run goes on, no longer bit-identical."""
        self.model.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        saved = RunState.from_payload(state, self.files.last)
        self.progress = saved.progress
        ranks = saved.ranks or [{"rng": saved.rng, "epoch_losses": saved.progress.epoch_losses}]
        own = ranks[self.world.rank] if self.world.rank < len(ranks) else None
        if own is None:  # a rank the saved run did not have: its own draws, the shared order, rank 0's losses
            own = {"rng": {**ranks[0]["rng"], "cuda": None}, "epoch_losses": ranks[0]["epoch_losses"]}
            fresh = self.seed + 7919 * (self.world.rank + 1) + saved.progress.steps
            own["rng"]["torch"] = torch.Generator().manual_seed(fresh).get_state()
            own["rng"]["negatives"] = self.negatives_generator.manual_seed(fresh).get_state()
        # on the training device: the losses of this epoch's remaining steps join them there (torch.stack)
        self.progress.epoch_losses = [torch.tensor(x, device=self.world.device) for x in own["epoch_losses"]]
        torch.set_rng_state(own["rng"]["torch"])
        self.order_generator.set_state(ranks[0]["rng"]["order"])
        self.negatives_generator.set_state(own["rng"]["negatives"])
        if own["rng"].get("cuda") is not None and self.world.device.type == "cuda":
            torch.cuda.set_rng_state(own["rng"]["cuda"], self.world.device)
        if saved.order is not None:
            self.order = saved.order.to(self.world.device)
        if self.world.is_main:
            note_changes(self.run_dir, saved.world_size, self.world.size)


def note_changes(run_dir: Path, saved_world_size: int, world_size: int) -> None:
    """Say so when a run resumes on another number of processes or CPU threads, or with or without the C gBCE
    kernel (gsasrec.native) where it had the other: other random draws, or
    another order of floating-point sums, so the result will not be bit-identical to an uninterrupted run
    (README, "Repeatability, precisely")."""
    changes = []
    if saved_world_size != world_size:
        changes.append(f"was trained on {saved_world_size} process{'es' * (saved_world_size > 1)} and resumes "
                       f"on {world_size}")
    try:
        recorded = dict(read_run_config(run_dir)["environment"])
    except (GSASRecError, KeyError, ValueError, TypeError):
        recorded = {}
    threads = recorded.get("threads")
    if threads is not None and threads != torch.get_num_threads():
        changes.append(f"was trained with {threads} CPU threads and resumes with {torch.get_num_threads()}")
    kernel = recorded.get("native_gbce")
    if kernel is not None and kernel != native.available():
        changes.append(f"was trained {'with' if kernel else 'without'} the C gBCE kernel and resumes "
                       f"{'without' if kernel else 'with'} it")
    if changes:
        print(f"note: {run_dir} {' and '.join(changes)}: it will not be bit-identical to an uninterrupted run",
              file=sys.stderr)
