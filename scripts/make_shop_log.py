"""A synthetic shop's interaction log and product titles, for docs/walkthrough.md.

    python scripts/make_shop_log.py --customers 3000 --out shop.csv --titles titles.csv

Each product belongs to a category, and a category's products form a series (volume 1, 2, 3, ...).
Customers keep to one or two favourite categories and mostly buy a later volume of what they bought
last, each customer with a habit of their own: the next volume, every second one or every third one.
Sometimes they buy any volume of a favourite category, rarely anything. The habit shows only across
several purchases: a pattern a sequential model can learn and a popularity ranking cannot. The log has
the columns customer, sku, ts (ISO date and time), in no particular order, like an export from a shop
database.
"""

from __future__ import annotations

import argparse
import csv
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

CATEGORIES = ("Green tea", "Black tea", "Coffee beans", "Dark chocolate", "Fantasy novel", "Crime novel",
              "Board game", "Jigsaw puzzle", "Watercolour set", "Hiking map", "Vinyl record", "Houseplant")
VOLUMES = 20
NEXT_VOLUME, SAME_CATEGORY = 0.65, 0.25  # otherwise any product


def sku(category: int, volume: int) -> str:
    return f"SKU-{category:02d}{volume:03d}"


def title(category: int, volume: int) -> str:
    return f"{CATEGORIES[category]}, vol. {volume + 1}"


def customer_rows(customer: int, rng: np.random.Generator) -> list[tuple[str, str, str]]:
    favourites = rng.choice(len(CATEGORIES), size=rng.integers(1, 3), replace=False)
    stride = int(rng.integers(1, 4))  # this customer's habit: every volume, every second or every third
    category, volume = int(rng.choice(favourites)), int(rng.integers(VOLUMES))
    when = datetime(2025, 1, 1) + timedelta(minutes=int(rng.integers(0, 60 * 24 * 300)))
    rows = []
    for _ in range(int(rng.integers(4, 40))):
        rows.append((f"C{customer:05d}", sku(category, volume), when.isoformat(sep=" ")))
        roll = rng.random()
        if roll < NEXT_VOLUME:
            volume = (volume + stride) % VOLUMES
        elif roll < NEXT_VOLUME + SAME_CATEGORY:
            category, volume = int(rng.choice(favourites)), int(rng.integers(VOLUMES))
        else:
            category, volume = int(rng.integers(len(CATEGORIES))), int(rng.integers(VOLUMES))
        when += timedelta(minutes=int(rng.integers(1, 60 * 24 * 7)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("shop.csv"))
    parser.add_argument("--titles", type=Path, default=Path("titles.csv"))
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = [row for customer in range(args.customers) for row in customer_rows(customer, rng)]
    rows = [rows[i] for i in rng.permutation(len(rows))]  # a database export has no useful order
    with open(args.out, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["customer", "sku", "ts"])
        writer.writerows(rows)
    with open(args.titles, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["sku", "title"])
        writer.writerows((sku(c, v), title(c, v)) for c in range(len(CATEGORIES)) for v in range(VOLUMES))
    print(f"wrote {args.out} ({len(rows)} purchases by {args.customers} customers) and {args.titles} "
          f"({len(CATEGORIES) * VOLUMES} products)")


if __name__ == "__main__":
    main()
