"""A run directory describes one training run completely:

    config.json      the resolved config, run options, dataset stats, environment (versions, device)
    config.py        the config as a Python file to edit and train again with (`gsasrec train --config`)
    metrics.jsonl    one JSON line per epoch: epoch, step, loss, validation metrics, seconds
    curve.png        validation metric against steps and against wall time, redrawn every epoch
    best.pt          the best checkpoint by val_metric
    last.pt          everything needed to resume: weights, optimizer, RNG states, progress
    state.json       last.pt's progress alone (epoch, steps, seconds, best, finished), for `runs list`
"""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from gsasrec import native
from gsasrec.checkpoint import BEST_CHECKPOINT, LAST_CHECKPOINT, read_resume_state
from gsasrec.errors import GSASRecError
from gsasrec.figures import save_figure, subplots
from gsasrec.files import write_text_atomic
from gsasrec.runstate import progress_from

RUN_CONFIG = "config.json"
CONFIG_FILE = "config.py"
METRICS_LOG = "metrics.jsonl"
CURVE = "curve.png"
RUN_STATE = "state.json"


def default_run_dir(dataset_name: str) -> Path:
    return Path("runs") / f"{dataset_name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def environment(device: torch.device, world_size: int) -> dict:
    from gsasrec import __version__

    env = {"gsasrec": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
           "numpy": np.__version__, "platform": platform.platform(), "device": str(device),
           "threads": torch.get_num_threads(), "world_size": world_size,
           "started": datetime.now().isoformat(timespec="seconds")}
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
    else:  # which gBCE path a CPU run takes: the C kernel's sums round differently from torch's
        env["native_gbce"] = native.available()
    return env


def write_run_config(run_dir: Path, payload: dict) -> None:
    write_text_atomic(run_dir / RUN_CONFIG, json.dumps(payload, indent=2) + "\n")


def write_config_file(run_dir: Path, config, notes: dict | None = None) -> Path:
    """config.py: the run's config in the seed's form, with the reason for each derived field."""
    from gsasrec.config import config_file_text

    header = (f"The config of the run in {run_dir}: edit it and train again with\n"
              f"  gsasrec train --config {Path(run_dir) / CONFIG_FILE}")
    path = Path(run_dir) / CONFIG_FILE
    write_text_atomic(path, config_file_text(config, notes, header))
    return path


# Each line of metrics.jsonl: field -> the types it may have (a number may be an int or a float).
RECORD_FIELDS = {"epoch": (int,), "step": (int,), "loss": (int, float), "metrics": (dict,), "best": (bool,),
                 "seconds": (int, float)}


def read_records(run_dir: Path) -> list[dict]:
    """metrics.jsonl's records; a damaged line (cut off, not a JSON object, a field missing or of the
    wrong type) is a one-line error naming the file and line."""
    path = Path(run_dir) / METRICS_LOG
    if not path.exists():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise GSASRecError(f"{path}: cannot be read ({getattr(error, 'strerror', None) or error})") from None
    return [parse_record(line, path, number) for number, line in enumerate(lines, start=1) if line.strip()]


def parse_record(line: str, path: Path, number: int) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise GSASRecError(f"{path}, line {number}: damaged ({error.msg}); expected one JSON object per "
                           f"epoch") from None
    if not isinstance(record, dict):
        raise GSASRecError(f"{path}, line {number}: expected a JSON object, got {type(record).__name__}")
    for name, types in RECORD_FIELDS.items():
        value = record.get(name)
        if not isinstance(value, types) or (types != (bool,) and isinstance(value, bool)):
            wanted = " or ".join(t.__name__ for t in types)
            raise GSASRecError(f"{path}, line {number}: field {name!r} should be {wanted}, got {value!r:.60}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in record["metrics"].values()):
        raise GSASRecError(f"{path}, line {number}: field 'metrics' should map names to numbers")
    return record


def append_record(run_dir: Path, record: dict) -> None:
    with open(Path(run_dir) / METRICS_LOG, "a") as log:
        log.write(json.dumps(record) + "\n")


def record_epoch(run_dir: Path, record: dict, metric: str) -> str:
    """Log one validated epoch (metrics.jsonl and curve.png) and return its console line."""
    append_record(run_dir, record)
    draw_curve(run_dir, metric)
    return epoch_line(record)


def epoch_line(record: dict) -> str:
    """'epoch 3 step 144 loss 0.0080 nDCG@10 0.0730 ... (best) [56s]'; an epoch the budget ended early
    (a record with 'epoch_steps') says how far into the epoch it got."""
    metrics = " ".join(f"{name} {value:.4f}" for name, value in record["metrics"].items())
    best = " (best)" if record["best"] else ""
    partial = f" ({record['epoch_steps']} steps into the epoch: budget reached)" if "epoch_steps" in record else ""
    return (f"epoch {record['epoch']} step {record['step']}{partial} loss {record['loss']:.4f} {metrics}{best} "
            f"[{record['seconds']:.0f}s]")


def keep_records_until(run_dir: Path, steps: int) -> None:
    """Drop log lines written after the resume state was saved at `steps` (a kill between the two):
    the resumed run repeats those steps."""
    kept = [r for r in read_records(run_dir) if r["step"] <= steps]
    write_text_atomic(Path(run_dir) / METRICS_LOG, "".join(json.dumps(r) + "\n" for r in kept))


def draw_curve(run_dir: Path, metric: str) -> Path | None:
    """curve.png: the validation metric against steps and against minutes."""
    records = read_records(run_dir)
    if not records:
        return None
    steps = [r["step"] for r in records]
    minutes = [r["seconds"] / 60 for r in records]
    values = [r["metrics"].get(metric, float("nan")) for r in records]
    figure, (by_step, by_time) = subplots(1, 2, figsize=(10, 3.8), dpi=100, sharey=True)
    for axes, x, label in ((by_step, steps, "training steps"), (by_time, minutes, "wall time, minutes")):
        axes.plot(x, values, marker=".", color="#3b75af")
        axes.set_xlabel(label)
        axes.grid(alpha=0.3)
    by_step.set_ylabel(f"validation {metric}")
    figure.suptitle(Path(run_dir).name)
    figure.tight_layout()
    return save_figure(figure, Path(run_dir) / CURVE)


def read_json_object(path: Path):
    """The JSON value of a run file; unreadable or cut-off text is a one-line error naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = getattr(error, "msg", None) or getattr(error, "strerror", None) or str(error)
        raise GSASRecError(f"{path}: damaged ({reason}); expected the JSON object a run writes") from None


def read_run_config(run_dir: Path) -> dict:
    """config.json of a run folder: config, run options, dataset stats, environment. Damage (cut off, not
    an object, no 'config' mapping) is a one-line error naming the file."""
    path = Path(run_dir) / RUN_CONFIG
    if not path.exists():
        raise GSASRecError(f"{run_dir} is not a run directory (no {RUN_CONFIG})")
    payload = read_json_object(path)
    if not isinstance(payload, dict) or not isinstance(payload.get("config"), dict):
        raise GSASRecError(f"{path}: expected a JSON object with a 'config' mapping")
    for key in ("environment", "run_options", "dataset_stats"):
        if payload.get(key) is not None and not isinstance(payload[key], dict):
            raise GSASRecError(f"{path}: {key!r} should be a mapping, got {type(payload[key]).__name__}")
    return payload


def summarize_run(run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    payload = read_run_config(run_dir)
    config = payload.get("config", {})
    metric = config.get("val_metric", "nDCG@10")
    records = read_records(run_dir)
    best = max(records, key=lambda r: r["metrics"].get(metric, -1), default=None)
    # last.pt is where the run is (also mid-epoch, after an interruption); the log only has validations.
    saved = saved_progress(run_dir)
    if saved is not None:
        epochs, epoch_steps, steps, seconds = saved["epoch"] - 1, saved["batch"], saved["steps"], saved["seconds"]
    else:
        last = records[-1] if records else {"epoch": 0, "step": 0, "seconds": 0.0}
        epochs, epoch_steps, steps, seconds = last["epoch"], 0, last["step"], last["seconds"]
    return {
        "run": str(run_dir), "dataset": config.get("dataset_name"), "val_metric": metric,
        "epochs": epochs, "epoch_steps": epoch_steps, "steps": steps, "minutes": round(seconds / 60, 1),
        "best": best["metrics"].get(metric) if best else None, "best_step": best["step"] if best else None,
        "last_loss": records[-1]["loss"] if records else None,
        "resumable": saved is not None and not saved.get("finished", False),
        "started": payload.get("environment", {}).get("started"),
        "device": payload.get("environment", {}).get("device"),
    }


def write_run_state(run_dir: Path, progress: dict) -> None:
    write_text_atomic(Path(run_dir) / RUN_STATE, json.dumps({"progress": progress}) + "\n")


def saved_progress(run_dir: Path) -> dict | None:
    """The progress recorded with a run's last.pt (epoch, batch within it, steps, seconds, finished): from
    state.json, else (a run of an older version) from last.pt itself; None without either. A damaged
    state.json is a one-line error naming it."""
    run_dir = Path(run_dir)
    if not (run_dir / LAST_CHECKPOINT).exists():
        return None
    if (run_dir / RUN_STATE).exists():
        state = read_json_object(run_dir / RUN_STATE)
        if not isinstance(state, dict):
            raise GSASRecError(f"{run_dir / RUN_STATE}: expected a JSON object with 'progress'")
        return asdict(progress_from(state.get("progress"), run_dir / RUN_STATE))
    try:
        return read_resume_state(run_dir)["progress"]
    except GSASRecError:
        return None


def run_files(run_dir: Path) -> list[Path]:
    """The files of a run that a run folder holds (none: the folder is free for a new run)."""
    names = (RUN_CONFIG, CONFIG_FILE, METRICS_LOG, CURVE, BEST_CHECKPOINT, LAST_CHECKPOINT, RUN_STATE)
    return [Path(run_dir) / name for name in names if (Path(run_dir) / name).exists()]


def find_runs(root: Path) -> list[Path]:
    return sorted(p.parent for p in Path(root).glob(f"*/{RUN_CONFIG}"))


class RunDir:
    """One run folder: the place of each of its files, the lock that keeps a second writer out, and the
    reading and writing of them (through the functions above, which `runs list/show` use directly)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.best, self.last = self.path / BEST_CHECKPOINT, self.path / LAST_CHECKPOINT

    def lock(self):
        """Held by the run's main process for the whole run: a second `train` or `--resume` on this folder
        is refused at once instead of interleaving its records and checkpoints."""
        from gsasrec.files import exclusive

        return exclusive(self.path, "run folder")

    def claim(self, force: bool, main_process: bool = True) -> None:
        """Refuse a folder holding an earlier run (unless force: then its run files go, by the main
        process only)."""
        earlier = run_files(self.path)
        if earlier and not force:
            raise GSASRecError(f"{self.path} already holds a run ({', '.join(p.name for p in earlier)}); continue "
                               f"it with: gsasrec train --resume {self.path}, or start over with --force")
        if earlier and main_process:
            for path in earlier:
                path.unlink(missing_ok=True)

    def start(self, payload: dict, config, notes: dict | None) -> None:
        """A new run's config.json and config.py."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_run_config(self.path, payload)
        write_config_file(self.path, config, notes)

    def record_epoch(self, record: dict, metric: str) -> str:
        return record_epoch(self.path, record, metric)

    def keep_records_until(self, steps: int) -> None:
        keep_records_until(self.path, steps)

    def write_state(self, progress: dict) -> None:
        write_run_state(self.path, progress)
