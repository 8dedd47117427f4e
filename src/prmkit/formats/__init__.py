"""Importers and exporters for the field's PRM data formats, and ``prmkit convert``.

=============  ===================================================  ==========================
format         file                                                 module
=============  ===================================================  ==========================
processbench   JSON list; ``label`` = first wrong step (-1 = none)  :mod:`.processbench`
prmbench       JSONL (or a folder); 1-based ``error_steps``         :mod:`.prmbench`
prm800k        JSONL; ``label.steps[].completions[].rating``        :mod:`.prm800k`
math_shepherd  JSONL; ``input`` with ``ки`` tags, ``label`` +/-     :mod:`.math_shepherd`
trl            JSONL; ``prompt``, ``completions``, ``labels``       :mod:`.trl`
openrlhf       JSONL; placeholder after each step + label list      :mod:`.openrlhf`
prmkit         prmkit records, JSONL or Parquet                     :mod:`.native`
=============  ===================================================  ==========================

Each module has ``read(path, **options)`` (a stream of LabeledTrace records) and
``write(path, records, **options)``. See docs/formats.md for what maps to what and what is lost.

Example:
    >>> from prmkit.formats import convert
    >>> report = convert("processbench", "trl", "math.json", "out.jsonl")  # doctest: +SKIP
"""

from prmkit.formats.common import ConversionReport, LossyConversionWarning
from prmkit.formats.convert import FORMATS, ConvertOptions, convert, read, write

__all__ = [
    "FORMATS",
    "ConversionReport",
    "ConvertOptions",
    "LossyConversionWarning",
    "convert",
    "read",
    "write",
]
