"""Published parameter counts of well-known models, the yardstick of the model catalog.

Sources: the models' own cards and reports — Meta Llama 3.1 model card (8.03 B, 70.6 B,
405.9 B as listed on the Hugging Face model pages), Qwen3 model cards (32.8 B;
235 B total / 22 B activated), DeepSeek-V3 technical report (671 B total / 37 B activated,
main model without the MTP module), Mistral's Mixtral-8x7B announcement (46.7 B total /
12.9 B used per token), OpenAI gpt-oss model card (116.83 B total / 5.13 B active).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["PUBLISHED_PARAMETERS", "PublishedParameters"]


class PublishedParameters(NamedTuple):
    """A model id as users type it, its published total and (MoE only) active parameters."""

    model: str
    total: float
    active: float | None


PUBLISHED_PARAMETERS: tuple[PublishedParameters, ...] = (
    PublishedParameters("meta-llama/Llama-3.1-8B", 8.03e9, None),
    PublishedParameters("meta-llama/Llama-3.1-70B", 70.6e9, None),
    PublishedParameters("meta-llama/Llama-3.1-405B", 405.9e9, None),
    PublishedParameters("Qwen/Qwen3-32B", 32.8e9, None),
    PublishedParameters("Qwen/Qwen3-235B-A22B", 235e9, 22e9),
    PublishedParameters("deepseek-ai/DeepSeek-V3", 671e9, 37e9),
    PublishedParameters("mistralai/Mixtral-8x7B-v0.1", 46.7e9, 12.9e9),
    PublishedParameters("openai/gpt-oss-120b", 116.8e9, 5.1e9),
)
