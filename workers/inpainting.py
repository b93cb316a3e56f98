"""Inpainting's image side: the mask a job sends, blurred, and the result pasted over the init image.

White in the mask is repainted, black kept.  The pipeline repaints in latent space and decodes
the whole image, so even kept pixels come back through the VAE (a lossy round trip: on the tiny
random-weight test models it changes every pixel).  As A1111 does, the decoded image is
composited over the init image through the blurred mask: where the blurred mask is black the
init image's own pixels come back exactly, and ``mask_blur`` feathers the seam.
"""

from __future__ import annotations

from PIL import Image, ImageFilter


def prepare_mask(mask: Image.Image, size: tuple[int, int], blur: int) -> Image.Image:
    """The mask in grey levels at the job's ``size``, blurred by ``blur`` pixels (a Gaussian's radius)."""
    mask = mask.convert("L").resize(size, Image.Resampling.NEAREST)
    return mask.filter(ImageFilter.GaussianBlur(blur)) if blur else mask


def composite(generated: Image.Image, init: Image.Image, mask: Image.Image) -> Image.Image:
    """``generated`` where the mask is white, ``init`` where it is black, blended between."""
    return Image.composite(generated.convert("RGB"), init.convert("RGB"), mask)
