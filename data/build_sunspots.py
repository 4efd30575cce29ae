"""Build ``tinygrad_rnn/data/datasets_data/sunspots.csv``: yearly mean sunspot numbers 1700-2008.

Source: the ``sunspots`` dataset bundled with ``statsmodels`` (yearly data from the US National
Geophysical Data Center / NOAA; statsmodels states "This data is public domain").

Run (build-time only; statsmodels is NOT a project dependency):
    /tmp/buildvenv/bin/pip install statsmodels
    /tmp/buildvenv/bin/python data/build_sunspots.py
"""
from pathlib import Path

import statsmodels.api as sm

OUT = Path(__file__).resolve().parent.parent / "tinygrad_rnn" / "data" / "datasets_data" / "sunspots.csv"


def main() -> None:
    frame = sm.datasets.sunspots.load_pandas().data
    lines = ["year,sunspots"]
    for year, value in zip(frame["YEAR"], frame["SUNACTIVITY"]):
        lines.append(f"{int(year)},{float(value):g}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n", encoding="ascii")
    print(f"wrote {len(lines) - 1} years to {OUT}")


if __name__ == "__main__":
    main()
