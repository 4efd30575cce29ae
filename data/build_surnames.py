"""Build ``tinygrad_rnn/data/datasets_data/surnames.csv``: (surname, language) pairs from Faker.

Source: the last-name lists of Faker's person providers (``faker`` on PyPI, MIT licence,
copyright joke2k and contributors). Only Latin-script locales are used so a character model
needs a small alphabet.

Rule per surname:
  1. gather every class-level tuple/list/dict of last names of the locale's person Provider
     (``last_names``, ``last_names_male``, ``last_names_female``, ``unisex_last_names``, ...),
     ignoring lists inherited unchanged from Faker's base Provider (``("Doe",)``);
  2. lowercase; fold diacritics to ASCII (Unicode NFKD, drop combining marks; a small table maps
     letters that do not decompose: l-stroke, o-slash, sharp s, ae, d-stroke, ...);
  3. keep it only if the result is ``[a-z]+`` (drops multi-word names, hyphens, apostrophes);
  4. dedupe within a language; drop surnames claimed by two or more languages (ambiguous labels);
  5. sort by (language, surname) and write CSV ``surname,language``.

Run (build-time only; faker is NOT a project dependency):
    /tmp/buildvenv/bin/pip install faker
    /tmp/buildvenv/bin/python data/build_surnames.py
"""
import importlib
import re
import unicodedata
from collections import defaultdict
from pathlib import Path

from faker.providers import person as base_person

OUT = Path(__file__).resolve().parent.parent / "tinygrad_rnn" / "data" / "datasets_data" / "surnames.csv"

# language label -> Faker locales pooled under it
LANGUAGES = {
    "Croatian": ["hr_HR"],
    "Czech": ["cs_CZ"],
    "Dutch": ["nl_NL"],
    "English": ["en_US", "en_GB"],
    "Finnish": ["fi_FI"],
    "French": ["fr_FR"],
    "German": ["de_DE", "de_AT"],
    "Italian": ["it_IT"],
    "Polish": ["pl_PL"],
    "Portuguese": ["pt_PT", "pt_BR"],
    "Spanish": ["es_ES"],
}

# letters that NFKD does not split into base letter + combining mark
NON_DECOMPOSING = {"ł": "l", "ø": "o", "ß": "ss", "æ": "ae", "œ": "oe", "đ": "d", "ı": "i", "þ": "th", "ð": "d"}


def to_ascii(name: str) -> str:
    name = "".join(NON_DECOMPOSING.get(ch, ch) for ch in name.lower())
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def locale_last_names(locale: str) -> list[str]:
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    base = base_person.Provider
    names: list[str] = []
    for attr in sorted(dir(provider)):
        if "last_names" not in attr:
            continue
        value = getattr(provider, attr)
        if not isinstance(value, (tuple, list, dict)) or value == getattr(base, attr, None):
            continue
        names.extend(str(v) for v in value)
    return names


def main() -> None:
    claims: dict[str, set[str]] = defaultdict(set)
    for language, locales in LANGUAGES.items():
        for locale in locales:
            for raw in locale_last_names(locale):
                surname = to_ascii(raw)
                if re.fullmatch(r"[a-z]+", surname):
                    claims[surname].add(language)
    rows = sorted((langs.pop(), s) for s, langs in claims.items() if len(langs) == 1)
    dropped = sum(len(langs) > 1 for langs in claims.values())
    lines = ["surname,language"] + [f"{s},{lang}" for lang, s in rows]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n", encoding="ascii")
    counts: dict[str, int] = defaultdict(int)
    for lang, _ in rows:
        counts[lang] += 1
    print(f"wrote {len(rows)} surnames to {OUT}; dropped {dropped} ambiguous; per language: {dict(counts)}")


if __name__ == "__main__":
    main()
