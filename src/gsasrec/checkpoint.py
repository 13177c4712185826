"""Checkpoint files: weights plus the resolved config and dataset stats, so evaluation needs nothing else.

Two kinds, one format: a run's best.pt (the best weights by val_metric) and last.pt, which adds what
resuming needs (optimizer, random streams, progress). Both are read with torch.load(weights_only=True):
tensors and plain containers only, never pickled code. A bare reference state_dict also loads, given a
config.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from gsasrec.config import GSASRecExperimentConfig, make_config
from gsasrec.data.folder import dataset_folder
from gsasrec.errors import GSASRecError, first_line
from gsasrec.files import atomic_path
from gsasrec.items import embedding_rows
from gsasrec.model import GSASRec
from gsasrec.runstate import RunState
from gsasrec.transition_term import TransitionTerm

# The format written now. Older files are brought up to it by upgrade(), one step per version, so that
# the rest of the package only ever sees this one.
CHECKPOINT_FORMAT = "gsasrec-checkpoint-2"
BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
ARCHITECTURE_FIELDS = ("sequence_length", "embedding_dim", "num_heads", "num_blocks",
                       "reuse_item_embeddings")


def save_checkpoint(path: Path, model: GSASRec, config: GSASRecExperimentConfig, dataset_stats: dict,
                    **extra: Any) -> None:
    """Write weights, config, dataset stats, the model's transition term if it has one, and `extra` (plain
    values and tensors) atomically."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": config.to_dict(),
        "dataset_stats": dict(dataset_stats),
        **extra,
    }
    if model.transition_term is not None:
        payload["transition_term"] = model.transition_term.to_payload()
    _write(payload, path)


def _write(payload: dict, path: Path) -> None:
    with atomic_path(path) as temporary:  # write errors (a full disk included) are one line; the old file stays
        torch.save(payload, temporary)


def store_transition_term(path: Path, term: TransitionTerm) -> None:
    """Add (or replace) the transition term of a written checkpoint, and say so in its config (evaluate
    --no-transition-term turns it off there); everything else stays as it was."""
    payload = _load(path)
    payload["transition_term"] = term.to_payload()
    if isinstance(payload.get("config"), dict):
        payload["config"] = {**payload["config"], "transition_term": True}
    _write(payload, path)


def _load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GSASRecError(f"checkpoint {path} not found") from None
    except Exception as error:
        raise GSASRecError(f"checkpoint {path} cannot be read as weights-only PyTorch data: "
                           f"{first_line(error)}") from None


def upgrade_1_to_2(payload: dict) -> dict:
    """Format 1 predates the logit offset: a config stored without `logit_offset` was trained without one
    (its state_dict has no output_bias). Format 2 stores every config field."""
    config = payload.get("config")
    if isinstance(config, dict) and "logit_offset" not in config:
        payload["config"] = {**config, "logit_offset": False}
    return {**payload, "format": "gsasrec-checkpoint-2"}


UPGRADES = {"gsasrec-checkpoint-1": upgrade_1_to_2}  # format -> the step to the next one


def upgrade(payload, path: Path):
    """A gsasrec checkpoint payload of any format, brought to CHECKPOINT_FORMAT; None when `payload` is
    not one (a bare state_dict, or anything else)."""
    if not isinstance(payload, dict) or not str(payload.get("format", "")).startswith("gsasrec-checkpoint-"):
        return None
    while payload["format"] != CHECKPOINT_FORMAT:
        step = UPGRADES.get(payload["format"])
        if step is None:
            raise GSASRecError(f"checkpoint {path} has format {payload['format']!r}, which this version of "
                               f"gsasrec does not know (it reads up to {CHECKPOINT_FORMAT!r}): upgrade gsasrec")
        payload = step(payload)
    return payload


def with_zero_bias(state_dict: dict, model: GSASRec) -> dict:
    """A state_dict without output_bias (the reference's, which have no bias: a bias of 0) for a model
    that has one (a config with logit_offset, such as the seed's config files loaded today)."""
    if model.output_bias is not None and "output_bias" not in state_dict:
        return {**state_dict, "output_bias": torch.zeros_like(model.output_bias)}
    return state_dict


def read_resume_state(run_dir: str | Path) -> dict:
    """A run folder's last.pt: a checkpoint plus 'optimizer', 'progress', 'rng', 'order', 'seed'."""
    path = Path(run_dir) / LAST_CHECKPOINT
    if not path.exists():
        raise GSASRecError(f"{run_dir} has no {LAST_CHECKPOINT} to resume from")
    state = upgrade(_load(path), path)
    needed = ("optimizer", "progress", "rng", "seed")
    if state is None or any(k not in state for k in needed):
        raise GSASRecError(f"{path} is not a gsasrec resume state (it needs {', '.join(needed)})")
    check_payload(state, path)
    RunState.from_payload(state, path)  # its checks: a damaged state fails here, in one line
    if not isinstance(state["optimizer"], dict):
        raise GSASRecError(f"{path}: 'optimizer' should be the optimizer's state mapping")
    return state


def check_payload(payload: dict, path: Path) -> None:
    """A one-line error for a damaged or hand-made checkpoint, before anything indexes into it."""
    if not isinstance(payload.get("state_dict"), dict) or not payload["state_dict"]:
        raise GSASRecError(f"checkpoint {path} has no weights ('state_dict' must be a non-empty mapping)")
    for key in ("config", "dataset_stats"):
        if payload.get(key) is not None and not isinstance(payload[key], dict):
            raise GSASRecError(f"checkpoint {path}: {key!r} must be a mapping, got {type(payload[key]).__name__}")


def read_checkpoint(path: str | Path) -> dict:
    """{'state_dict', 'config' (or None), 'dataset_stats' (or None), ...} from either kind of file."""
    path = Path(path)
    payload = _load(path)
    upgraded = upgrade(payload, path)
    if upgraded is not None:
        check_payload(upgraded, path)
        return upgraded
    if isinstance(payload, dict) and "item_embedding.weight" in payload:
        return {"state_dict": payload, "config": None, "dataset_stats": None}
    raise GSASRecError(f"checkpoint {path} is neither a gsasrec checkpoint nor a GSASRec state_dict")


def load_model(path: str | Path, config: GSASRecExperimentConfig | None = None,
               num_items: int | None = None, device: torch.device | str = "cpu",
               ) -> tuple[GSASRec, GSASRecExperimentConfig, dict]:
    """(model in eval mode, config, checkpoint payload).

    config overrides the stored one (evaluation settings may differ; the architecture must not);
    a bare state_dict needs it. num_items defaults to the stored dataset stats, else the weights' rows.
    """
    payload = read_checkpoint(path)
    stored = make_config(**payload["config"]) if payload.get("config") else None
    if config is None and stored is None:
        raise GSASRecError(f"checkpoint {path} is a bare state_dict: pass --config to describe its model")
    if config is not None and stored is not None:
        for name in ARCHITECTURE_FIELDS:
            if getattr(config, name) != getattr(stored, name):
                raise GSASRecError(
                    f"checkpoint {path} was trained with {name}={getattr(stored, name)!r}, "
                    f"but the config says {name}={getattr(config, name)!r}"
                )
    config = config or stored
    state_dict = payload["state_dict"]
    if num_items is None:
        stats = payload.get("dataset_stats")
        num_items = stats["num_items"] if stats else state_dict["item_embedding.weight"].shape[0] - 2
    check_fits(state_dict, config, num_items, path)
    model = GSASRec.from_config(config, num_items)  # its shapes are checked before any weight is copied
    state_dict = with_zero_bias(state_dict, model)
    check_shapes(state_dict, model.state_dict(), path)
    for key, tensor in state_dict.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise GSASRecError(f"checkpoint {path}: {key} holds NaN or infinite values; these weights would "
                               f"score nothing meaningful (a diverged run?)")
    model.load_state_dict(state_dict)
    if payload.get("transition_term") is not None:
        term = TransitionTerm.from_payload(payload["transition_term"], num_items, path)
        model.transition_term = term if term.active else None  # weights of 0: the network's scores alone
    return model.to(device).eval(), config, payload


def dataset_location(payload: dict, dataset_name: str, datasets_dir: str | Path | None = None) -> Path:
    """A checkpoint's dataset folder: <datasets_dir>/<dataset_name> when datasets_dir is given, else the
    folder recorded at training time while it exists, else the default datasets folder's."""
    recorded = payload.get("dataset_path")
    if datasets_dir is None and recorded and Path(recorded).is_dir():
        return Path(recorded)
    return dataset_folder(dataset_name, datasets_dir)  # a stored '../x' or '/abs' is refused, not followed


def check_fits(state_dict: dict, config: GSASRecExperimentConfig, num_items: int, path: str | Path) -> None:
    """Raise a one-line error naming the config field that differs, instead of load_state_dict's shape
    traceback (check_shapes then compares every weight)."""
    def shape(key: str) -> tuple | None:
        return tuple(state_dict[key].shape) if key in state_dict else None

    items = shape("item_embedding.weight")
    if items is None or len(items) != 2:
        raise GSASRecError(f"checkpoint {path} has no item_embedding.weight matrix")
    if items[0] != embedding_rows(num_items):
        raise GSASRecError(f"checkpoint {path} has {items[0]} item-embedding rows (num_items={items[0] - 2}), "
                           f"but the dataset has num_items={num_items}")
    if items[1] != config.embedding_dim:
        raise GSASRecError(f"checkpoint {path} has embedding_dim={items[1]}, "
                           f"but the config says embedding_dim={config.embedding_dim}")
    positions = shape("position_embedding.weight")
    if positions is None or positions[0] != config.sequence_length:
        found = positions[0] if positions else "none"
        raise GSASRecError(f"checkpoint {path} has sequence_length={found}, "
                           f"but the config says sequence_length={config.sequence_length}")
    blocks = {int(m.group(1)) for k in state_dict if (m := re.match(r"transformer_blocks\.(\d+)\.", k))}
    if len(blocks) != config.num_blocks:
        raise GSASRecError(f"checkpoint {path} has num_blocks={len(blocks)}, "
                           f"but the config says num_blocks={config.num_blocks}")
    has_output = "output_embedding.weight" in state_dict
    if has_output == config.reuse_item_embeddings:
        kind = "a separate output_embedding" if has_output else "no output_embedding"
        raise GSASRecError(f"checkpoint {path} has {kind}, "
                           f"but the config says reuse_item_embeddings={config.reuse_item_embeddings}")


def check_shapes(state_dict: dict, expected: dict, path: str | Path) -> None:
    """Every weight the model expects is there with its shape, and nothing else. (The model is built for
    real, not on the meta device: initialising meta tensors imports torch._dynamo, 1.7 s of every
    evaluate.)"""
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise GSASRecError(f"checkpoint {path} does not fit the model: "
                           f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    for key, tensor in expected.items():
        if key in state_dict and tuple(state_dict[key].shape) != tuple(tensor.shape):
            raise GSASRecError(f"checkpoint {path}: {key} has shape {tuple(state_dict[key].shape)}, "
                               f"the config needs {tuple(tensor.shape)}")
