"""The experiment configuration: the seed's field names and defaults, validated, and loadable from the
seed's Python config files unchanged (they begin `from config import GSASRecExperimentConfig`)."""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gsasrec.errors import GSASRecError
from gsasrec.metrics import measure_cutoff, measure_name

DEFAULT_METRICS = ("nDCG@10", "R@1", "R@10")
LOSSES = ("gbce", "ce", "sampled_ce")


@dataclass
class GSASRecExperimentConfig:
    """All settings of one experiment. The reference's fields keep its defaults; the fields it lacks (from
    score_chunk_elements on) default to what makes gBCE learn from the first steps, init_std and
    logit_offset above all, whose reference values are `None` and `False` (docs/reference.md, "Where the
    defaults depart")."""

    dataset_name: str
    sequence_length: int = 200
    embedding_dim: int = 256
    train_batch_size: int = 128
    num_heads: int = 4
    num_blocks: int = 3
    dropout_rate: float = 0.0
    negs_per_pos: int = 256
    max_epochs: int = 10000
    max_batches_per_epoch: int = 100
    metrics: list = field(default_factory=lambda: list(DEFAULT_METRICS))
    val_metric: Any = "nDCG@10"
    early_stopping_patience: int = 200
    gbce_t: float = 0.75
    filter_rated: bool = True
    eval_batch_size: int = 512
    recommendation_limit: int = 10
    reuse_item_embeddings: bool = False
    # Not in the reference: evaluation scores items in blocks of at most this many (users x items)
    # elements, so a large catalogue never needs a full (users, items) matrix.
    score_chunk_elements: int = 1 << 26
    # Not in the reference (its behaviour is the default): the training loss ("gbce"; "ce", softmax
    # cross-entropy over the whole catalogue; "sampled_ce", softmax over the positive and the uniform
    # negatives), Adam's learning rate, and the standard deviation of the normal initialisation of the
    # embedding tables (None: PyTorch's default N(0, 1), as the reference).
    loss: str = "gbce"
    learning_rate: float = 0.001
    init_std: float | None = 0.02
    # Not in the reference: a learnable bias on every item's score, started at the loss-minimising
    # constant (loss.initial_logit_offset). With it and small tables (init_std above) gBCE learns from the
    # first hundred steps; `init_std=None, logit_offset=False` is the reference's dynamics: PyTorch's
    # N(0, 1) tables and no bias, which sit at popularity level for thousands of steps.
    logit_offset: bool = True
    # Not in the reference: None keeps the learning rate constant; a number of steps decays it along a
    # cosine to LR_FLOOR x learning_rate over that many steps, then keeps it there.
    lr_decay_steps: int | None = None
    # Not in the reference (False is its behaviour): train each user with a random window of
    # sequence_length + 1 consecutive items, drawn anew each batch, instead of always the last one, so
    # that the older part of a long history is trained on too (a third of ML-1M's training items).
    random_windows: bool = False
    # Not in the reference (False is its behaviour): after training, add to the scores w1 x log(1 + how
    # often the item followed the history's last item in training) + w2 x log(1 + how often it followed
    # the last two), the weights chosen on the validation users, 0 included (transition_term.py). It pays
    # on logs whose next item is paired with the ones before; `train --dataset` turns it on.
    transition_term: bool = False
    # Not in the reference (False is its behaviour): draw the negatives once per batch row and score every
    # position of the row against them, instead of drawing them for each position. Each position still
    # scores negs_per_pos uniform draws, so its expected loss is the same; the positions of one row (one
    # user, or the few users packed into it) share them. The (positions, items) logits of the dense path
    # become one batched product with negs_per_pos columns: a cheaper step (benchmarks/RESULTS.md,
    # "Negatives shared by a row").
    shared_negatives: bool = False

    def __post_init__(self) -> None:
        # numpy, torch-free numeric types (np.float64, np.int64, np.bool_, Fraction) become plain Python
        # values here: a checkpoint stores the config and must load with torch.load(weights_only=True),
        # which refuses to unpickle any other type.
        for name in FIELD_NAMES:
            setattr(self, name, plain_value(getattr(self, name)))
        # ir-measures objects (as in the seed's own config.py) and plain names are both accepted;
        # one spelling, the measure's name, is kept from here on.
        self.metrics = [measure_name(m, "metrics") for m in _as_list(self.metrics)]
        self.val_metric = measure_name(self.val_metric, "val_metric")
        validate(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(GSASRecExperimentConfig))


def make_config(**fields: Any) -> GSASRecExperimentConfig:
    """Build a config, naming any unknown field (a dataclass would only say 'unexpected keyword')."""
    unknown = [name for name in fields if name not in FIELD_NAMES]
    if unknown:
        raise GSASRecError(
            f"unknown config field {unknown[0]!r}; known fields: {', '.join(FIELD_NAMES)}"
        )
    if "dataset_name" not in fields:
        raise GSASRecError("config field 'dataset_name' is required")
    return GSASRecExperimentConfig(**fields)


def plain_value(value: Any) -> Any:
    """`value` as a plain bool, int, float or str (or a list of them) when it is one in another type;
    anything else unchanged, for validation to judge."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    return value


def _as_list(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    raise GSASRecError("config field 'metrics' must be a list of measures, e.g. ['nDCG@10', 'R@10']",
                       field="metrics")


def _check(ok: bool, field_name: str, expected: str, value: Any) -> None:
    if not ok:
        raise GSASRecError(f"config field {field_name!r} must be {expected}, got {value!r}", field=field_name)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate(config: GSASRecExperimentConfig) -> None:
    """Raise GSASRecError naming the first impossible field."""
    c = config
    _check(isinstance(c.dataset_name, str) and c.dataset_name.strip() != "", "dataset_name",
           "a non-empty string", c.dataset_name)
    positive_ints = ("sequence_length", "embedding_dim", "train_batch_size", "num_heads", "num_blocks",
                     "negs_per_pos", "max_epochs", "max_batches_per_epoch", "early_stopping_patience",
                     "eval_batch_size", "recommendation_limit", "score_chunk_elements")
    for name in positive_ints:
        value = getattr(c, name)
        _check(_is_int(value) and value >= 1, name, "an integer >= 1", value)
    _check(c.embedding_dim % c.num_heads == 0, "num_heads",
           f"a divisor of embedding_dim={c.embedding_dim}", c.num_heads)
    _check(_is_number(c.dropout_rate) and 0 <= c.dropout_rate < 1, "dropout_rate",
           "a number in [0, 1)", c.dropout_rate)
    _check(_is_number(c.gbce_t) and 0 <= c.gbce_t <= 1, "gbce_t", "a number in [0, 1]", c.gbce_t)
    _check(c.loss in LOSSES, "loss", f"one of {', '.join(map(repr, LOSSES))}", c.loss)
    _check(_is_number(c.learning_rate) and c.learning_rate > 0, "learning_rate", "a number > 0", c.learning_rate)
    _check(c.init_std is None or (_is_number(c.init_std) and c.init_std > 0), "init_std",
           "None or a number > 0", c.init_std)
    _check(c.lr_decay_steps is None or (_is_int(c.lr_decay_steps) and c.lr_decay_steps >= 1), "lr_decay_steps",
           "None or an integer >= 1", c.lr_decay_steps)
    for name in ("filter_rated", "reuse_item_embeddings", "random_windows", "logit_offset", "transition_term",
                 "shared_negatives"):
        _check(isinstance(getattr(c, name), bool), name, "True or False", getattr(c, name))
    _check(len(c.metrics) > 0, "metrics", "a non-empty list of measures", c.metrics)
    for name in c.metrics + [c.val_metric]:
        cutoff = measure_cutoff(name)
        if cutoff is not None and cutoff < 1:
            raise GSASRecError(f"config field 'metrics': {name} has cutoff {cutoff}; a cutoff counts list "
                               f"positions, 1 or more (e.g. nDCG@10)", field="metrics")
        if cutoff is not None and cutoff > c.recommendation_limit:
            raise GSASRecError(
                f"config field 'recommendation_limit' must be >= the cutoff of every measure: "
                f"{name} needs {cutoff}, recommendation_limit is {c.recommendation_limit}",
                field="recommendation_limit")


def load_config(path: str | Path) -> GSASRecExperimentConfig:
    """Run a Python config file and return the `config` it defines.

    The seed's files import `GSASRecExperimentConfig` from a top-level module named `config`; a stand-in
    module of that name is provided while the file runs, so those files load as they are.
    """
    path = Path(path)
    try:
        source = path.read_text()
    except OSError as error:
        raise GSASRecError(f"cannot read config file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise GSASRecError(f"{path}: not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                           f"{error.start}); a config file is Python source") from None
    shim = types.ModuleType("config")
    shim.GSASRecExperimentConfig = make_config
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": "gsasrec_config_file"}
    previous = sys.modules.get("config")
    sys.modules["config"] = shim
    try:
        exec(compile(source, str(path), "exec"), namespace)
    except GSASRecError as error:
        raise GSASRecError(f"{_location(path, error)}: {error}") from None
    except SyntaxError as error:
        raise GSASRecError(f"{path}:{error.lineno}: invalid Python syntax: {error.msg}") from None
    except Exception as error:
        raise GSASRecError(f"{_location(path, error)}: {type(error).__name__}: {error}") from None
    except SystemExit as error:  # a config that exits would end `train` having done nothing, status 0
        raise GSASRecError(f"{_location(path, error)}: the config file called sys.exit({error.code!r}); a config "
                           f"file only defines `config`") from None
    finally:
        if previous is None:
            sys.modules.pop("config", None)
        else:
            sys.modules["config"] = previous
    config = namespace.get("config")
    if not isinstance(config, GSASRecExperimentConfig):
        raise GSASRecError(f"{path}: must define `config = GSASRecExperimentConfig(...)`")
    return config


def _location(path: Path, error: BaseException) -> str:
    """'file:line' of the deepest traceback frame inside the config file itself."""
    lines = [f.lineno for f in traceback.extract_tb(error.__traceback__) if f.filename == str(path)]
    return f"{path}:{lines[-1]}" if lines else str(path)


def config_file_text(config: GSASRecExperimentConfig, reasons: dict[str, str] | None = None,
                     header: str = "") -> str:
    """A Python config file (the seed's form) that loads back as `config`: every field, with its reason
    as a comment where there is one."""
    reasons = reasons or {}
    lines = [f"# {line}" for line in header.splitlines()]
    lines += ["from config import GSASRecExperimentConfig", "", "config = GSASRecExperimentConfig("]
    for name, value in config.to_dict().items():
        note = f"  # {reasons[name]}" if name in reasons else ""
        lines.append(f"    {name}={value!r},{note}")
    lines.append(")")
    return "\n".join(lines) + "\n"
