"""Inference: "what next for this history?" with external item ids, scores and probabilities.

`probability` is sigmoid(score). For a model trained with gbce_t=1 it is a calibrated estimate of the
probability that the item is the next interaction (the gSASRec paper's result); for t < 1 it is only a
monotone transform of the score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from gsasrec.batches import all_items
from gsasrec.checkpoint import dataset_location, load_model
from gsasrec.data.folder import ITEM_IDS, Sequences, Split, item_names, read_id_table
from gsasrec.errors import GSASRecError, shortened
from gsasrec.inference import top_items
from gsasrec.model import GSASRec
from gsasrec.runtime import resolve_device

ItemId = str | int


def probabilities(scores: np.ndarray) -> np.ndarray:
    """sigmoid(scores): each recommendation's `probability` (calibrated for a gbce_t=1 model)."""
    return 1 / (1 + np.exp(-scores.astype(np.float64)))


@dataclass
class Recommendations:
    """Top items for one history, best first: dicts with rank, item, score, probability, name."""

    items: list[dict]
    unknown_items: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON form that the CLI prints and the HTTP service returns."""
        return {"items": self.items, "unknown_items": self.unknown_items}


class ItemCatalog:
    """External item ids and names of a dataset folder (item_ids.tsv, item_names.tsv when present).

    Without item_ids.tsv the external ids are the internal ones, 1..num_items.
    """

    def __init__(self, num_items: int, folder: Path | None = None):
        self.num_items = num_items
        self.external: list[ItemId] = list(range(1, num_items + 1))
        self.names: list[str | None] = [None] * num_items
        if folder is not None and (folder / ITEM_IDS).exists():
            self.external = read_id_table(folder / ITEM_IDS)
            if len(self.external) != num_items:
                raise GSASRecError(f"{folder / ITEM_IDS}: {len(self.external)} ids, "
                                   f"but the model has num_items={num_items}")
        for internal, name in item_names(folder, num_items).items():
            self.names[internal - 1] = name
        self.internal = {str(item): index for index, item in enumerate(self.external, start=1)}

    def to_internal(self, history: Sequence[ItemId]) -> tuple[list[int], list]:
        """(known internal ids in order, unknown external ids)."""
        known, unknown = [], []
        for item in history:
            internal = self.internal.get(str(item))
            if internal is None:
                unknown.append(item)
            else:
                known.append(internal)
        return known, unknown

    def require_known(self, history: Sequence[ItemId], where: str = "") -> tuple[list[int], list]:
        """to_internal(history), or an error when none of its ids is known."""
        known, unknown = self.to_internal(history)
        if not known:
            shown = ", ".join(shortened(item) for item in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            ids = "the dataset's item ids (item_ids.tsv)" if isinstance(self.external[0], str) else \
                f"item ids 1..{self.num_items} as in the dataset's files"
            raise GSASRecError(f"history has no known items{where}: {shown or 'it is empty'}; expected {ids}"
                               f" (to give titles: recommend --history-names \"NAME; NAME\", or search GET "
                               f"/items?query=)")
        return known, unknown

    def describe(self, internal: int) -> dict:
        return {"item": self.external[internal - 1], "name": self.names[internal - 1]}

    def search(self, query: str, limit: int = 20, offset: int = 0) -> tuple[int, list[int]]:
        """(how many items match, internal ids of matches offset..offset+limit): an id equal to the query
        first, then ids that start with it, then names that contain it (case-insensitive), each in id order."""
        text = query.strip().lower()
        if not text:
            return 0, []
        exact, prefix, named = [], [], []
        for internal, (item, name) in enumerate(zip(self._external_text, self._lower_names), start=1):
            if item == text:
                exact.append(internal)
            elif item.startswith(text):
                prefix.append(internal)
            elif name is not None and text in name:
                named.append(internal)
        matches = exact + prefix + named
        return len(matches), matches[offset:offset + limit]

    def closest_names(self, text: str, count: int = 3) -> list[str]:
        """Names (or ids) that look most like `text`: the hint for an item that was not found."""
        import difflib

        names = [name for name in self.names if name is not None]
        pool = names if names else [str(item) for item in self.external]
        return difflib.get_close_matches(text, pool, n=count, cutoff=0.5)

    def by_name(self, name: str) -> int | None:
        """The internal id of the item called exactly `name` (case and surrounding spaces ignored)."""
        return self._name_index.get(name.strip().lower())

    @cached_property
    def _name_index(self) -> dict[str, int]:
        index = {}
        for internal, lower in enumerate(self._lower_names, start=1):
            if lower is not None:
                index.setdefault(lower.strip(), internal)  # the first of equal names
        return index

    @cached_property
    def _external_text(self) -> list[str]:
        return [str(item).lower() for item in self.external]

    @cached_property
    def _lower_names(self) -> list[str | None]:
        return [name.lower() if name is not None else None for name in self.names]


# What a checkpoint says of its training, shown on a model's card (the explorer page, GET /models): a
# shipped model's (pretrained/) holds all of these, a run's best.pt and last.pt some.
CARD_FIELDS = ("command", "seed", "steps", "minutes", "machine", "threads", "torch", "test_metrics", "calibration",
               "val_metrics", "dataset_stats")


def training_card(payload: dict) -> dict:
    """CARD_FIELDS of a checkpoint payload; `steps` also from a run checkpoint's `step`."""
    card = {key: payload[key] for key in CARD_FIELDS if payload.get(key) is not None}
    if "steps" not in card and isinstance(payload.get("step"), int):
        card["steps"] = payload["step"]
    return card


class Recommender:
    def __init__(self, model: GSASRec, catalog: ItemCatalog, config=None, dataset_folder: Path | None = None,
                 training: dict | None = None):
        self.model = model.eval()
        self.catalog = catalog
        self.config = config
        self.dataset_folder = dataset_folder  # where known users' histories come from (known_history)
        self.training = training or {}  # CARD_FIELDS the checkpoint holds
        self.looked_for = dataset_folder  # where the dataset folder was looked for
        self.checkpoint_path: Path | None = None  # the file it came from (from_checkpoint)
        self.device = model.output_table.device
        self.max_score_elements = config.score_chunk_elements if config is not None else None

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", datasets_dir: str | Path | None = None,
                        config=None) -> Recommender:
        """Load a checkpoint; id maps and names come from its dataset folder when it can be found
        (the path stored at training time, else <datasets_dir>/<dataset_name>)."""
        model, config, payload = load_model(path, config, device=resolve_device(device))
        looked_for = dataset_location(payload, config.dataset_name, datasets_dir)
        folder = looked_for if looked_for.is_dir() else None
        recommender = cls(model, ItemCatalog(model.num_items, folder), config, folder, training_card(payload))
        recommender.looked_for = looked_for
        recommender.checkpoint_path = Path(path)
        return recommender

    def missing_dataset_note(self) -> str | None:
        """What a user should know when the dataset folder was not found (None when it was)."""
        if self.dataset_folder is not None:
            return None
        return (f"note: dataset folder {self.looked_for} not found: item ids are the model's internal ids "
                f"(1..{self.model.num_items}), without names; pass --datasets-dir to use the dataset's own ids")

    @property
    def calibrated(self) -> bool:
        """Whether `probability` estimates the chance of the next item: gBCE with t=1 (the paper's result),
        and no transition term in the scores (it shifts them after training, by a weight chosen for ranking)."""
        return (self.config is not None and self.config.loss == "gbce" and self.config.gbce_t == 1.0
                and self.model.transition_term is None)

    def card(self) -> dict:
        """The model's config, what its checkpoint says of its training, and its catalogue's size."""
        from dataclasses import asdict

        term = self.model.transition_term
        return {"config": asdict(self.config) if self.config is not None else {}, **self.training,
                "num_items": self.model.num_items, "calibrated": self.calibrated,
                "transition_term": term.describe() if term is not None else None,
                "has_names": any(name is not None for name in self.catalog.names),
                "splits": {name: self.split_size(name) for name in ("test", "val")}}

    def user_history(self, split: Split, user: int) -> tuple[list[ItemId], ItemId]:
        """(history, held-out item) of the split's user number `user` (1-based: its line), as external ids."""
        if not 1 <= user <= len(split.inputs):
            raise GSASRecError(f"user must be a line number 1..{len(split.inputs)} of the split, got {user}")
        external = self.catalog.external
        return ([external[i - 1] for i in split.inputs[user - 1].tolist()],
                external[int(split.targets[user - 1]) - 1])

    def split_size(self, name: str) -> int:
        """How many users the dataset's split `name` holds (0 when the dataset folder is not here)."""
        return len(self.split(name).inputs) if self.dataset_folder is not None else 0

    def dataset_user(self, name: str, line: int) -> dict:
        """Line `line` (1-based) of split `name`: the user's own id (None without user_ids.tsv), history
        (oldest first) and held-out item, each as catalog.describe gives it (id and name)."""
        if self.dataset_folder is None:
            raise GSASRecError("the checkpoint's dataset folder is not here: its users cannot be shown")
        split = self.split(name)
        if not 1 <= line <= len(split.inputs):
            raise GSASRecError(f"user must be a line number 1..{len(split.inputs)} of the split, got {line}")
        user = None
        if self.user_ids is not None:
            users = self.split_users(name)
            user = self.user_ids[(int(users[line - 1]) if users is not None else line) - 1]
        describe = self.catalog.describe
        return {"user": user, "history": [describe(i) for i in split.inputs[line - 1].tolist()],
                "held_out": describe(int(split.targets[line - 1]))}

    def split_users(self, name: str) -> np.ndarray | None:
        """(lines,) the internal user of each line of split `name` (its users.txt), read once; None without
        the file (line u is user u: the leave-one-out test split, the training sequences)."""
        from gsasrec.data.folder import SPLIT_USERS

        if name not in self._users_of_lines:
            path = self.dataset_folder / name / SPLIT_USERS
            self._users_of_lines[name] = np.array(path.read_text().split(), dtype=np.int64) if path.is_file() \
                else None
        return self._users_of_lines[name]

    @cached_property
    def _users_of_lines(self) -> dict[str, np.ndarray | None]:
        return {}

    @cached_property
    def user_ids(self) -> list[str] | None:
        """The users' own ids by internal id - 1 (user_ids.tsv), read once; None without the table."""
        from gsasrec.data.folder import USER_IDS, read_id_table

        table = self.dataset_folder / USER_IDS if self.dataset_folder is not None else None
        return read_id_table(table) if table is not None and table.is_file() else None

    def known_history(self, user: str) -> list[ItemId]:
        """All the dataset holds of a user, by the user's own id (user_ids.tsv): their test input and its
        held-out item, as external ids (with a leave-one-out split, their whole log)."""
        from gsasrec.data.folder import split_line_of

        if self.dataset_folder is None:
            raise GSASRecError("the checkpoint's dataset folder is not here: send the history itself")
        line = split_line_of(self.dataset_folder, "test", user)
        if line is None:
            raise GSASRecError(f"{self.dataset_folder} has no user_ids.tsv: send the history itself")
        split = self.split("test")
        external = self.catalog.external
        return [external[i - 1] for i in split.inputs[line - 1].tolist() + [int(split.targets[line - 1])]]

    def split(self, name: str) -> Split:
        """The dataset's split `name` ("test" or "val"), read once: a server answers many users (from a
        folder that has not changed since training: check_dataset_unchanged)."""
        from gsasrec.data.folder import read_split

        if not self._splits:
            self.check_dataset_unchanged()
        if name not in self._splits:
            self._splits[name] = read_split(self.dataset_folder / name, self.model.num_items)
        return self._splits[name]

    def check_dataset_unchanged(self) -> None:
        """Refuse a dataset folder whose counts differ from those the checkpoint recorded: its users and
        held-out items would not be the ones the model was trained and measured on."""
        from gsasrec.data.folder import fingerprint_difference, read_stats

        trained_on = self.training.get("dataset_stats") or {}
        difference = fingerprint_difference(trained_on, read_stats(self.dataset_folder / "dataset_stats.json"))
        if difference:
            raise GSASRecError(f"{self.dataset_folder} changed since the model was trained ({difference}): "
                               f"its users cannot be shown; send histories instead")

    @cached_property
    def _splits(self) -> dict[str, Split]:
        return {}

    def rank_of(self, history: Sequence[ItemId], item: ItemId, exclude_seen: bool = True) -> int | None:
        """1-based rank of `item` among all recommendations for `history` (None: unknown or excluded)."""
        everything = self.recommend(history, self.model.num_items, exclude_seen).items
        return next((row["rank"] for row in everything if str(row["item"]) == str(item)), None)

    def recommend(self, history: Sequence[ItemId], k: int = 10, exclude_seen: bool = True) -> Recommendations:
        return self.recommend_batch([history], k, exclude_seen)[0]

    def recommend_batch(self, histories: Sequence[Sequence[ItemId]], k: int | Sequence[int] = 10,
                        exclude_seen: bool | Sequence[bool] = True) -> list[Recommendations]:
        """Top-k for each history (external ids, oldest first). Histories longer than sequence_length
        are cut to their most recent items; unknown ids are reported and ignored for scoring.
        k and exclude_seen may be given per history."""
        count = len(histories)
        ks = [k] * count if isinstance(k, int) else list(k)
        excludes = [exclude_seen] * count if isinstance(exclude_seen, bool) else list(exclude_seen)
        mapped = [self.catalog.require_known(history, "" if count == 1 else f" (history {index})")
                  for index, history in enumerate(histories)]
        for value in ks:
            if not 1 <= value <= self.model.num_items:
                raise GSASRecError(f"k must be between 1 and {self.model.num_items}, got {value}")
        best_ids, best_scores = self.top_internal([known for known, _ in mapped], max(ks), excludes)
        results = []
        for row, ((_, unknown), row_k) in enumerate(zip(mapped, ks)):
            items = []
            for rank in range(row_k):
                score = float(best_scores[row, rank])
                if score == float("-inf"):
                    break  # everything left was excluded
                items.append({"rank": rank + 1, **self.catalog.describe(int(best_ids[row, rank])),
                              "score": score, "probability": float(probabilities(np.float64(score)))})
            results.append(Recommendations(items=items, unknown_items=unknown))
        return results

    def top_internal(self, histories: list[list[int]], k: int, exclude_seen: list[bool]
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(histories, k) internal ids and scores, one forward pass for the whole batch."""
        sequences = Sequences.from_lists(histories)
        excluded = all_items(sequences, self.model.padding_id)
        excluded[~np.asarray(exclude_seen)] = self.model.padding_id  # these rows may get their history
        ids, scores = top_items(self.model, sequences, k, excluded, self.max_score_elements)
        return ids.cpu().numpy(), scores.cpu().numpy()
