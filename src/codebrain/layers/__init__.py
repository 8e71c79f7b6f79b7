"""Reusable layers: patch embedding, SGConv, sliding-window attention, residual blocks, codebooks."""

from codebrain.layers.patch_embedding import PatchEmbedding
from codebrain.layers.quantize import Codebook, QuantizerOutput, fraction_used, kmeans, perplexity
from codebrain.layers.residual import ResidualBlock, ResidualGroup, RMSNorm
from codebrain.layers.sgconv import SGConv, fast_fft_size, sgconv_reference
from codebrain.layers.window_attention import SlidingWindowAttention, window_attention_reference

__all__ = [
    "Codebook",
    "PatchEmbedding",
    "QuantizerOutput",
    "RMSNorm",
    "ResidualBlock",
    "ResidualGroup",
    "SGConv",
    "SlidingWindowAttention",
    "fast_fft_size",
    "fraction_used",
    "kmeans",
    "perplexity",
    "sgconv_reference",
    "window_attention_reference",
]
