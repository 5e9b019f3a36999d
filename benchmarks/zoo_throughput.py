"""Per-model embedding throughput of ``extract_embeddings``, for the paper study's time estimates.

Models: timm ConvNeXt sizes with random weights (the architecture fixes the cost; no weights
download). Stimuli: N seeded 425×425 RGB uint8 images in memory (NSD's image size), so the
time is preprocessing + forward + pooling, as for NSD's ``nsd_stimuli.hdf5``. Each model is
warmed up on 64 images, then timed on N with the cache off.
Usage: ``python benchmarks/zoo_throughput.py [--device cuda] [--n 2048] [--models a,b]``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

DEFAULT_MODELS = (
    "timm:convnext_atto",
    "timm:convnext_tiny",
    "timm:convnext_base",
    "timm:convnext_large",
    "timm:convnext_xxlarge",
)


def throughput(spec: str, images: np.ndarray, device: str) -> dict:
    from repscope.io.extract import extract_embeddings
    from repscope.io.models import load_model
    from repscope.io.stimuli import open_stimuli

    model = load_model(spec, pretrained=False)
    kwargs = {"device": device, "cache": False, "progress": False}
    extract_embeddings(model, open_stimuli(images[:64]), **kwargs)
    start = time.perf_counter()
    emb = extract_embeddings(model, open_stimuli(images), **kwargs)
    seconds = time.perf_counter() - start
    return {"model": spec, "images_per_second": len(images) / seconds, "dim": emb.X.shape[1]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    args, _ = parser.parse_known_args(argv)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n, 425, 425, 3), dtype=np.uint8)
    for spec in args.models.split(","):
        row = throughput(spec, images, args.device)
        print(json.dumps({**row, "device": args.device, "n": args.n}), flush=True)


if __name__ == "__main__":
    main()
