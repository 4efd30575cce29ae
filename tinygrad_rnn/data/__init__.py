"""Data: tokenizers and batching, bundled datasets, and sampling text from a trained model.

``tinygrad_rnn.data`` re-exports the tokenizers and batch iterators of :mod:`.text`; the rest lives
in its submodules:

- :mod:`.text`: ``CharTokenizer``, ``WordTokenizer``, ``pad``, ``pad_batch``, ``lm_batches``,
  ``batches``
- :mod:`.datasets`: bundled corpora (``datasets_data/``) and synthetic tasks; nothing is
  downloaded
- :mod:`.generate`: sampling a sequence from a language model
"""
from .text import CharTokenizer, WordTokenizer, batches, lm_batches, num_lm_batches, pad, pad_batch

__all__ = [
    "CharTokenizer", "WordTokenizer", "pad", "pad_batch", "lm_batches", "num_lm_batches", "batches",
]
