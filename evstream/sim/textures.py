"""Smooth random textures for the synthetic scenes (blurred noise, so motion gives events and aliasing does not)."""

from __future__ import annotations

import cv2
import numpy as np


def smooth_noise(shape: tuple[int, int], sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-blurred white noise of shape ``[H, W]``, rescaled to zero mean and unit peak.

    Args:
        shape: ``(H, W)``.
        sigma_px: blur in pixels: the texture's grain.
        rng: randomness.
    """
    noise = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma_px,
                             borderType=cv2.BORDER_REFLECT)
    noise -= noise.mean()
    peak = np.abs(noise).max()
    return noise / peak if peak > 0 else noise


def tileable_noise(size: int, sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """Like :func:`smooth_noise` but periodic (the blur wraps around), ``[size, size]`` float32."""
    freq = np.fft.fftfreq(size)
    gain = np.exp(-2 * (np.pi * sigma_px) ** 2 * (freq[:, None] ** 2 + freq[None, :] ** 2))
    noise = np.fft.ifft2(np.fft.fft2(rng.standard_normal((size, size))) * gain).real
    noise -= noise.mean()
    return (noise / np.abs(noise).max()).astype(np.float32)
