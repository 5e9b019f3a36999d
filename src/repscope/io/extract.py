"""Embed a stimulus set with a model: batched, cached, resumable, at the speed of the forward.

:func:`extract_embeddings` is the whole pipeline: load the model through its own library
(:mod:`repscope.io.models`), decode and preprocess images in DataLoader worker processes while
the model runs, run batches under ``torch.inference_mode`` (``channels_last`` on the CPU,
bfloat16 autocast on a GPU), save each finished batch to the cache at once, and join them into
one hash-verified entry (:mod:`repscope.io.store`). A second call with the same model, layer,
pooling and stimuli reads the entry back; a killed run resumes from its last saved batch.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from repscope import _memory
from repscope._backend import resolve_device
from repscope._progress import progress_bar
from repscope._provenance import library_versions
from repscope._validation import InputError
from repscope.io._preprocessing import as_float32
from repscope.io.layers import check_pooling
from repscope.io.stimuli import Stimuli, StimulusReadError, open_stimuli
from repscope.io.store import BatchChunk, EmbeddingKey, EmbeddingStore, merge_chunks

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from repscope.io.models import LoadedModel

__all__ = ["Embedding", "extract_embeddings"]

logger = logging.getLogger(__name__)

#: Fastest CPU batch measured on 2 cores with channels_last (PERF.md: batch 8 is ~2x batch 32).
CPU_BATCH_SIZE = 8
_MAX_GPU_BATCH = 512
_VERSIONED = ("torch", "torchvision", "timm", "open_clip_torch", "transformers", "numpy", "pillow")


@dataclass(frozen=True)
class Embedding:
    """Features of one (model, layer, pooling, stimulus set).

    Attributes
    ----------
    X : ndarray of shape (n_stimuli, n_features)
        float32 features, one row per readable stimulus, in stimulus order.
    ids : ndarray of shape (n_stimuli,)
        Stimulus id of each row (str).
    skipped : tuple of str
        Ids of stimuli that could not be read (``on_error="skip"``), left out of ``X``.
    meta : dict
        Cache key and provenance (library versions, device, precision, timing).
    path : Path or None
        The cache file holding ``X`` and ``ids`` (an ``.npz`` that
        :func:`repscope.io.load_embedding` reads), None when caching is off.
    from_cache : bool
        True when nothing had to be computed.
    """

    X: np.ndarray
    ids: np.ndarray
    skipped: tuple[str, ...]
    meta: dict[str, Any]
    path: Path | None
    from_cache: bool


def extract_embeddings(
    model: str | LoadedModel,
    stimuli: Any,
    *,
    layer: str = "penultimate",
    pooling: Literal["mean", "cls"] = "mean",
    pretrained: bool = True,
    batch_size: int | Literal["auto"] = "auto",
    device: str = "auto",
    num_workers: int | Literal["auto"] = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
    cache: bool = True,
    on_error: Literal["skip", "raise"] = "skip",
    progress: bool = True,
) -> Embedding:
    """Embed every stimulus with one layer of one model.

    Parameters
    ----------
    model : str or LoadedModel
        A model spec such as ``"timm:convnext_tiny.fb_in22k_ft_in1k"`` (see
        :func:`repscope.io.models.load_model`), or a model loaded already.
    stimuli : str, path-like, sequence of paths, ndarray or Stimuli
        Anything :func:`repscope.io.stimuli.open_stimuli` accepts.
    layer : str
        ``"penultimate"`` (the pooled pre-logits features) or a module name from
        ``repscope layers SPEC``.
    pooling : {"mean", "cls"}
        How token outputs (batch, tokens, channels) become vectors; spatial maps are averaged.
    pretrained : bool
        Load the published weights (False: the architecture with seeded random weights).
    batch_size : int or "auto"
        "auto": 8 on the CPU (fastest measured with channels_last), on a GPU the largest
        power of two whose measured activation memory fits in half the free memory.
        Halved automatically, with a warning, when a batch runs out of memory.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    num_workers : int or "auto"
        DataLoader processes decoding images while the model runs. "auto": on a GPU
        ``min(8, cores - 1)``; on a CPU none up to 4 cores (the forward already uses every
        core), else ``min(4, cores // 4)``.
    cache_dir : str or path-like, optional
        Cache root (default ``$REPSCOPE_CACHE`` or ``~/.cache/repscope``).
    cache : bool
        False computes in memory only, reading and writing nothing.
    on_error : {"skip", "raise"}
        An unreadable image is left out and reported (``skip``) or stops the run.
    progress : bool
        Show a progress bar with the images-per-second rate.

    Returns
    -------
    Embedding
    """
    from repscope.io.models import LoadedModel, load_model

    _check_options(pooling, on_error, batch_size, num_workers)
    stim = open_stimuli(stimuli)
    if len(stim) == 0:
        raise InputError(
            "the stimulus set is empty; pass a folder, file list or array with images."
        )
    loaded = model if isinstance(model, LoadedModel) else load_model(model, pretrained=pretrained)
    dev = resolve_device(device)
    key = EmbeddingKey(
        model=loaded.spec.raw,
        weights_hash=loaded.weights_hash,
        preprocessing=loaded.preprocessing,
        layer=layer,
        pooling=pooling,
        precision="float32" if dev.type == "cpu" else "bfloat16-autocast",
        stimuli=stim.fingerprint(),
    )
    store = EmbeddingStore(cache_dir) if cache else None
    if store is not None and (hit := store.load(key)) is not None:
        return _from_stored(hit, stim)
    run = _Run(loaded, stim, key, store, dev, layer, pooling)
    return run.execute(batch_size, num_workers, on_error, progress)


def _check_options(pooling: str, on_error: str, batch_size: Any, num_workers: Any) -> None:
    check_pooling(pooling)
    if on_error not in ("skip", "raise"):
        raise InputError(f"on_error={on_error!r} is not known; pass 'skip' or 'raise'.")
    if batch_size != "auto" and not (isinstance(batch_size, int) and batch_size >= 1):
        raise InputError(f"batch_size={batch_size!r} must be a positive int or 'auto'.")
    if num_workers != "auto" and not (isinstance(num_workers, int) and num_workers >= 0):
        raise InputError(f"num_workers={num_workers!r} must be an int >= 0 or 'auto'.")


def _from_stored(hit: Any, stim: Stimuli) -> Embedding:
    skipped = tuple(item["id"] for item in hit.meta.get("skipped", []))
    return Embedding(hit.X, hit.ids, skipped, hit.meta, hit.path, from_cache=True)


class _Run:
    """One extraction: resume state, the batch loop and the final entry."""

    def __init__(
        self,
        loaded: LoadedModel,
        stim: Stimuli,
        key: EmbeddingKey,
        store: EmbeddingStore | None,
        dev: torch.device,
        layer: str,
        pooling: str,
    ) -> None:
        from repscope.io.models import feature_fn

        self.loaded, self.stim, self.key, self.store, self.dev = loaded, stim, key, store, dev
        self.features = feature_fn(loaded, layer=layer, pooling=pooling)
        self.chunks = store.load_chunks(key) if store is not None else []

    def execute(
        self, batch_size: int | str, num_workers: int | str, on_error: str, progress: bool
    ) -> Embedding:
        done = np.concatenate([c.covered for c in self.chunks] or [np.zeros(0, np.int64)])
        remaining = np.setdiff1d(np.arange(len(self.stim)), done)
        if len(done):
            logger.info(
                "resuming %s: %d of %d stimuli already embedded",
                self.key.model,
                len(self.stim) - len(remaining),
                len(self.stim),
            )
        forward = _Forward(self.loaded, self.features, self.dev, batch_size)
        workers = _auto_workers(self.dev) if num_workers == "auto" else int(num_workers)
        started, t0 = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.perf_counter()
        label = f"{self.key.model} [{self.key.layer}]"
        checked = False
        with progress_bar(len(remaining), label, unit="img", enabled=progress) as advance:
            for chunk in self._batches(remaining, forward, workers, on_error):
                if not checked and chunk.X.size:  # the width is known from the first batch
                    self._check_memory(chunk.X.shape[1])
                    checked = True
                if self.store is not None:
                    self.store.save_chunk(self.key, chunk)
                self.chunks.append(chunk)
                advance(len(chunk.covered))
        seconds = time.perf_counter() - t0
        merged = merge_chunks(self.chunks, len(self.stim))
        if len(merged.positions) == 0:
            raise InputError(
                f"none of the {len(self.stim)} stimuli could be read (first: "
                f"{merged.reasons[0]}); check the files."
            )
        provenance = self._provenance(forward, workers, started, seconds, len(remaining), merged)
        return self._finish(merged, provenance)

    def _check_memory(self, width: int) -> None:
        """Refuse a run whose features (kept per batch, joined, serialized) will not fit."""
        n = len(self.stim)
        held = sum(c.X.nbytes for c in self.chunks)  # batches of a resumed run, in memory
        features = _memory.extraction_bytes(
            n, width, batch_size=0, model_bytes=0.0, cached=self.store is not None
        )
        need = features - held
        _memory.check_memory(
            f"extract: {n} stimuli × {width} float32 features",
            need,
            "cpu",
            "extract a layer with fewer features, or embed the stimuli in parts (each is "
            "cached separately).",
        )

    def _batches(self, remaining: np.ndarray, forward: _Forward, workers: int, on_error: str):
        """Yield one BatchChunk per DataLoader batch of the remaining positions."""
        import torch

        dataset = _StimulusDataset(self.stim, forward.per_image)
        step = forward.batch_size  # the batch size before any out-of-memory halving
        sampler = [remaining[i : i + step].tolist() for i in range(0, len(remaining), step)]
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=workers,
            collate_fn=_collate,
            pin_memory=self.dev.type == "cuda",
            prefetch_factor=4 if workers else None,
        )
        for positions, batch, skipped, reasons in loader:
            if len(skipped) and on_error == "raise":
                raise StimulusReadError(reasons[0])
            for reason in reasons:
                logger.warning("skipped unreadable stimulus: %s", reason)
            X = forward(batch) if batch is not None else np.zeros((0, 0), np.float32)
            yield BatchChunk(positions=positions, X=X, skipped=skipped, reasons=reasons)

    def _provenance(
        self,
        forward: _Forward,
        workers: int,
        started: str,
        seconds: float,
        n_computed: int,
        merged: BatchChunk,
    ) -> dict[str, Any]:
        ids = np.asarray(self.stim.ids)
        return {
            "stimuli": self.stim.describe(),
            "n_stimuli": len(merged.positions),
            "n_computed": n_computed,
            "skipped": [
                {"id": str(ids[p]), "reason": str(r)}
                for p, r in zip(merged.skipped, merged.reasons, strict=True)
            ],
            "pretrained": self.loaded.pretrained,
            "device": _device_name(self.dev),
            "dtype": "float32",
            "batch_size": forward.batch_size,
            "num_workers": workers,
            "started": started,
            "seconds": round(seconds, 3),
            "images_per_second": round(n_computed / seconds, 2) if seconds > 0 else None,
            "versions": library_versions(*_VERSIONED),
        }

    def _finish(self, merged: BatchChunk, provenance: dict[str, Any]) -> Embedding:
        ids = np.asarray(self.stim.ids, dtype=str)[merged.positions]
        skipped = tuple(item["id"] for item in provenance["skipped"])
        if skipped:
            logger.warning("%d stimuli could not be read and were left out", len(skipped))
        if self.store is None:
            meta = {"key": self.key.__dict__, **provenance}
            return Embedding(merged.X, ids, skipped, meta, None, from_cache=False)
        stored = self.store.save(self.key, merged.X, ids, provenance)
        return Embedding(stored.X, stored.ids, skipped, stored.meta, stored.path, False)


class _StimulusDataset:
    """Map-style dataset: position -> (position, preprocessed tensor or None, reason)."""

    def __init__(self, stim: Stimuli, transform: Any) -> None:
        self.stim, self.transform = stim, transform

    def __len__(self) -> int:
        return len(self.stim)

    def __getitem__(self, position: int) -> tuple[int, Any, str | None]:
        try:
            image = self.stim.load(position)
        except StimulusReadError as exc:
            return position, None, str(exc)
        return position, self.transform(image), None


def _collate(items: Sequence[tuple[int, Any, str | None]]):
    import torch

    ok = [(p, t) for p, t, reason in items if reason is None]
    bad = [(p, reason) for p, _, reason in items if reason is not None]
    positions = np.array([p for p, _ in ok], dtype=np.int64)
    batch = torch.stack([t for _, t in ok]) if ok else None
    skipped = np.array([p for p, _ in bad], dtype=np.int64)
    reasons = np.array([r for _, r in bad], dtype=str)
    return positions, batch, skipped, reasons


class _Forward:
    """Runs the feature function on batches; halves the batch on out-of-memory."""

    def __init__(self, loaded: LoadedModel, features: Any, dev: torch.device, batch_size) -> None:
        import torch

        self.torch, self.features, self.dev = torch, features, dev
        transform = loaded.transform
        # decode and resize per image, then scale and normalise whole batches on the device
        self.per_image, self.per_batch = (
            transform.split() if hasattr(transform, "split") else (transform, as_float32)
        )
        loaded.module.to(dev)
        if dev.type == "cpu":
            # NHWC convolutions are ~2x faster on this CPU class (PERF.md)
            loaded.module.to(memory_format=torch.channels_last)
        self.batch_size = (
            batch_size if batch_size != "auto" else _auto_batch_size(loaded, features, dev)
        )

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        while True:
            try:
                parts = [self._run(part) for part in batch.split(self.batch_size)]
                return self.torch.cat(parts).numpy()
            except (RuntimeError, MemoryError) as exc:
                if not _is_out_of_memory(exc):
                    raise
                self._shrink(exc)

    def _run(self, part: torch.Tensor) -> torch.Tensor:
        torch = self.torch
        x = self.per_batch(part.to(self.dev, non_blocking=True))
        if x.ndim == 4 and self.dev.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        with (
            torch.inference_mode(),
            torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.dev.type == "cuda"),
        ):
            out = self.features(x)
        return out.float().cpu()

    def _shrink(self, exc: BaseException) -> None:
        if self.batch_size == 1:
            raise InputError(
                f"out of memory on {self.dev} even at batch size 1; use a smaller model, "
                "a smaller input, or another device."
            ) from exc
        if self.dev.type == "cuda":
            self.torch.cuda.empty_cache()
        new = max(1, self.batch_size // 2)
        logger.warning(
            "out of memory at batch size %d on %s; retrying with batch size %d",
            self.batch_size,
            self.dev,
            new,
        )
        self.batch_size = new


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return "out of memory" in str(exc) or "can't allocate memory" in str(exc)


def _auto_batch_size(loaded: LoadedModel, features: Any, dev: torch.device) -> int:
    """8 on the CPU; on a GPU, from the activation memory one probe batch actually used."""
    if dev.type == "cpu":
        return CPU_BATCH_SIZE
    import torch

    probe = 4
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    x = torch.zeros((probe, *loaded.input_size), device=dev)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        features(x)
    per_image = max(1, (torch.cuda.max_memory_allocated(dev) - base) // probe)
    free, _ = torch.cuda.mem_get_info(dev)
    fit = int(free // 2 // per_image)
    return int(min(_MAX_GPU_BATCH, max(1, 2 ** int(np.log2(max(fit, 1))))))


def _auto_workers(dev: torch.device) -> int:
    """Decoding processes: none on a CPU of up to 4 cores, where the forward already uses
    every core and a worker only competes with it (measured on 2 cores: serial decoding is
    ~10 % faster than one worker); on a GPU, enough to keep the device fed."""
    cores = os.cpu_count() or 1
    if dev.type == "cpu":
        return 0 if cores <= 4 else min(4, cores // 4)
    return max(1, min(8, cores - 1))


def _device_name(dev: torch.device) -> str:
    import torch

    if dev.type == "cuda":
        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
