"""Building blocks shared by the network families (dcgan, resnet, stylegan2), by family.

Written from the papers' descriptions:

- `base`: what every layer shares (no autocasting, seeded initializers).
- `spectral`: `SpectralNorm` (Miyato et al. 2018).
- `resampling`: `UpsampleConv2D`, `ConvDownsample2D` (exact, fused, ~2x faster).
- `equalized`: `EqualizedDense`, `EqualizedConv2D` (Karras et al. 2018).
- `modulation`: StyleGAN2's `PixelNorm`, `ModulatedConv2D`, `BiasAct`, `ConstantInput`.
- `noise`: StyleGAN2's `NoiseKey`, `NoiseInjection`.
- `pooling`: `MinibatchStddev`, `GlobalSumPooling` (discriminators).
- `conditioning`: `LabelEmbedding`, `LabelProjection` (Miyato & Koyama 2018).
"""

from facegan.models.layers.base import SEED_STRIDE, Layer, seed_stream
from facegan.models.layers.conditioning import LabelEmbedding, LabelProjection
from facegan.models.layers.equalized import EqualizedConv2D, EqualizedDense
from facegan.models.layers.modulation import BiasAct, ConstantInput, ModulatedConv2D, PixelNorm
from facegan.models.layers.noise import NoiseInjection, NoiseKey, tensor_hash
from facegan.models.layers.pooling import GlobalSumPooling, MinibatchStddev
from facegan.models.layers.resampling import ConvDownsample2D, UpsampleConv2D
from facegan.models.layers.spectral import SpectralNorm, maybe_spectral_norm

__all__ = [
    "SEED_STRIDE",
    "BiasAct",
    "ConstantInput",
    "ConvDownsample2D",
    "EqualizedConv2D",
    "EqualizedDense",
    "GlobalSumPooling",
    "LabelEmbedding",
    "LabelProjection",
    "Layer",
    "MinibatchStddev",
    "ModulatedConv2D",
    "NoiseInjection",
    "NoiseKey",
    "PixelNorm",
    "SpectralNorm",
    "UpsampleConv2D",
    "maybe_spectral_norm",
    "seed_stream",
    "tensor_hash",
]
