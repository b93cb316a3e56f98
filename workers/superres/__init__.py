"""Super-resolution: the Sub-Pixel CNN (x3 on the Y channel), its engines and the tiling pipeline.

Nothing here knows about HTTP or Celery.  ``python -m workers.superres`` upscales one file.
"""
