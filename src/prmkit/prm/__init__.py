"""Process reward models: the input spec, input formats, heads and checkpoints.

Only the torch-free parts are imported here; import :mod:`prmkit.prm.heads` and
:mod:`prmkit.prm.checkpoint` when a model is needed.
"""

from prmkit.prm.formats import Encoded, encode, render, resolve_label_token_ids
from prmkit.prm.spec import FORMATS, HEADS, PRMSpec, load_spec, save_spec

__all__ = [
    "FORMATS",
    "HEADS",
    "Encoded",
    "PRMSpec",
    "encode",
    "load_spec",
    "render",
    "resolve_label_token_ids",
    "save_spec",
]
