"""Config files: the seed's form loads unchanged; unknown fields and impossible values name the field."""

import pytest
from conftest import REPO
from synthetic import write_config

from gsasrec.config import GSASRecExperimentConfig, load_config, make_config
from gsasrec.errors import GSASRecError


def test_shipped_seed_configs_load_with_the_seed_hyperparameters():
    gsasrec = load_config(REPO / "configs" / "ml1m_gsasrec.py")
    assert (gsasrec.dataset_name, gsasrec.sequence_length, gsasrec.embedding_dim, gsasrec.num_heads,
            gsasrec.num_blocks, gsasrec.dropout_rate, gsasrec.negs_per_pos, gsasrec.gbce_t,
            gsasrec.max_batches_per_epoch) == ("ml1m", 200, 128, 1, 2, 0.5, 256, 0.75, 100)
    assert gsasrec.metrics == ["nDCG@10", "R@1", "R@10"] and gsasrec.val_metric == "nDCG@10"
    sasrec = load_config(REPO / "configs" / "ml1m_sasrec.py")
    assert (sasrec.negs_per_pos, sasrec.gbce_t, sasrec.reuse_item_embeddings) == (1, 0.0, False)


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.py")), ids=lambda path: path.name)
def test_every_shipped_config_loads(path):
    assert load_config(path).dataset_name


def test_the_shared_negatives_recipes_are_the_ten_minute_recipes_with_twice_the_steps():
    for per_position, shared in (("ml1m_gsasrec_10min.py", "ml1m_gsasrec_shared.py"),
                                 ("ml1m_gsasrec_t1_10min.py", "ml1m_gsasrec_t1_shared.py")):
        before, after = (load_config(REPO / "configs" / name).to_dict() for name in (per_position, shared))
        assert {k: v for k, v in after.items() if before[k] != v} == {"shared_negatives": True, "lr_decay_steps": 2800}
    assert not GSASRecExperimentConfig(dataset_name="x").shared_negatives  # the reference's draws by default


def test_defaults_are_the_reference_defaults():
    c = GSASRecExperimentConfig(dataset_name="x")
    assert (c.sequence_length, c.embedding_dim, c.train_batch_size, c.num_heads, c.num_blocks,
            c.dropout_rate, c.negs_per_pos, c.max_epochs, c.max_batches_per_epoch,
            c.early_stopping_patience, c.gbce_t, c.filter_rated, c.eval_batch_size,
            c.recommendation_limit, c.reuse_item_embeddings) == (
        200, 256, 128, 4, 3, 0.0, 256, 10000, 100, 200, 0.75, True, 512, 10, False)


def test_ir_measures_objects_are_accepted(tmp_path):
    path = tmp_path / "c.py"
    path.write_text("from config import GSASRecExperimentConfig\nfrom ir_measures import nDCG, R, MRR\n"
                    "config = GSASRecExperimentConfig(dataset_name='d', metrics=[nDCG@10, R@5, MRR@10],"
                    " val_metric=R@5)\n")
    config = load_config(path)
    assert config.metrics == ["nDCG@10", "R@5", "RR@10"] and config.val_metric == "R@5"


@pytest.mark.parametrize("field, value, words", [
    ("negs_per_pos", 0, "'negs_per_pos' must be an integer >= 1"),
    ("gbce_t", 1.5, "'gbce_t' must be a number in [0, 1]"),
    ("num_heads", 3, "'num_heads' must be a divisor of embedding_dim=32"),
    ("dropout_rate", 1.0, "'dropout_rate' must be a number in [0, 1)"),
    ("sequence_length", "200", "'sequence_length' must be an integer >= 1"),
    ("filter_rated", "yes", "'filter_rated' must be True or False"),
    ("metrics", ["nDCG@10", "Bogus@3"], "'metrics': 'Bogus@3' is not an ir-measures measure"),
    ("metrics", ["nDCG@20"], "recommendation_limit' must be >= the cutoff of every measure: nDCG@20"),
    ("loss", "bpr", "'loss' must be one of 'gbce', 'ce', 'sampled_ce'"),
    ("learning_rate", 0, "'learning_rate' must be a number > 0"),
    ("init_std", -1.0, "'init_std' must be None or a number > 0"),
    ("random_windows", 1, "'random_windows' must be True or False"),
    ("logit_offset", "yes", "'logit_offset' must be True or False"),
])
def test_impossible_values_name_the_field(tmp_path, field, value, words):
    path = write_config(tmp_path / "c.py", **{field: value})
    with pytest.raises(GSASRecError) as error:
        load_config(path)
    message = str(error.value)
    assert words in message and "\n" not in message
    assert message.startswith(f"{path}:")


def test_unknown_field_is_named_with_its_line(tmp_path):
    path = tmp_path / "c.py"
    path.write_text("from config import GSASRecExperimentConfig\n\nconfig = GSASRecExperimentConfig(\n"
                    "    dataset_name='d', negs_per_pos=4, embeding_dim=3)\n")
    with pytest.raises(GSASRecError, match=r"c.py:3: unknown config field 'embeding_dim'"):
        load_config(path)


def test_config_without_config_object_or_with_syntax_error(tmp_path):
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(GSASRecError, match="must define `config = GSASRecExperimentConfig"):
        load_config(empty)
    broken = tmp_path / "broken.py"
    broken.write_text("config = (\n")
    with pytest.raises(GSASRecError, match="broken.py:1: invalid Python syntax"):
        load_config(broken)
    with pytest.raises(GSASRecError, match="cannot read config file"):
        load_config(tmp_path / "missing.py")


def test_loading_leaves_no_config_module_behind(tmp_path):
    import sys

    load_config(write_config(tmp_path / "c.py"))
    assert "config" not in sys.modules


def test_make_config_requires_dataset_name():
    with pytest.raises(GSASRecError, match="'dataset_name' is required"):
        make_config(embedding_dim=8)
