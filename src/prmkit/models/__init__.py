"""Loading base models: the packaged SmolLM2 or any local Hugging Face directory."""

from prmkit.models.loading import BaseModel, find_packaged_gguf, load_base, load_tokenizer
from prmkit.models.policy_config import PolicyConfig

__all__ = ["BaseModel", "PolicyConfig", "find_packaged_gguf", "load_base", "load_tokenizer"]
