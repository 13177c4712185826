"""Item-id conventions shared by the data, the model and evaluation (docs/reference.md, "Data format").

Items are ids 1..num_items; id 0 is never an item; the padding id is num_items + 1, so embedding tables
have num_items + 2 rows.
"""


def padding_id(num_items: int) -> int:
    return num_items + 1


def embedding_rows(num_items: int) -> int:
    return num_items + 2
