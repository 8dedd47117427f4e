"""Loading models: the packaged SmolLM2 or any local Hugging Face directory, and the policy.

* :func:`load_base`: a base model and its tokenizer (GGUF conversion of the packaged model).
* :func:`load_policy`: a base model with a LoRA adapter merged in (what generators run).
* :class:`PolicyConfig`: the ``policy`` group of every stage config that runs a policy.

Example:
    >>> from prmkit.models import PolicyConfig, load_policy
    >>> policy = load_policy("smollm2", adapter=None)  # doctest: +SKIP
    >>> PolicyConfig(model="/models/qwen").dtype
    'float32'
"""

from prmkit.models.loading import BaseModel, find_packaged_gguf, load_base, load_tokenizer
from prmkit.models.policy import load_policy
from prmkit.models.policy_config import PolicyConfig

__all__ = [
    "BaseModel",
    "PolicyConfig",
    "find_packaged_gguf",
    "load_base",
    "load_policy",
    "load_tokenizer",
]
