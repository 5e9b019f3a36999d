"""The embedding cache: atomic writes, hash-verified entries, resumable partial batches."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from repscope.io import load_embedding
from repscope.io.atomic import atomic_write, atomic_write_npy, sha256_file
from repscope.io.store import BatchChunk, EmbeddingKey, EmbeddingStore, merge_chunks


def _key(**changes) -> EmbeddingKey:
    fields = dict(
        model="timm:convnext_atto",
        weights_hash="ab" * 32,
        preprocessing={"input_size": [3, 224, 224], "mean": [0.5, 0.5, 0.5]},
        layer="penultimate",
        pooling="mean",
        precision="float32",
        stimuli="cd" * 32,
    )
    fields.update(changes)
    return EmbeddingKey(**fields)


def test_atomic_write_leaves_old_file_when_the_block_fails(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_atomic_write_npy_returns_the_file_hash(tmp_path):
    sha = atomic_write_npy(tmp_path / "x.npy", np.arange(5.0))
    assert sha == sha256_file(tmp_path / "x.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), np.arange(5.0))


@pytest.mark.parametrize(
    "change",
    [
        {"model": "timm:convnext_femto"},
        {"weights_hash": "ef" * 32},
        {"preprocessing": {"input_size": [3, 256, 256], "mean": [0.5, 0.5, 0.5]}},
        {"layer": "stages.2"},
        {"pooling": "cls"},
        {"precision": "bfloat16-autocast"},
        {"stimuli": "00" * 32},
    ],
)
def test_every_key_field_changes_the_digest(change):
    assert _key(**change).digest() != _key().digest()


def test_digest_ignores_dict_order():
    a = _key(preprocessing={"a": 1, "b": 2})
    b = _key(preprocessing={"b": 2, "a": 1})
    assert a.digest() == b.digest()


def test_saved_entry_round_trips_and_is_readable_by_load_embedding(tmp_path):
    store = EmbeddingStore(tmp_path)
    X = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    ids = [f"img-{i}" for i in range(6)]
    saved = store.save(_key(), X, ids, {"device": "cpu"})
    loaded = store.load(_key())
    assert loaded is not None
    np.testing.assert_array_equal(loaded.X, X)
    assert loaded.ids.tolist() == ids
    assert loaded.meta["device"] == "cpu" and loaded.meta["shape"] == [6, 4]
    X2, ids2 = load_embedding(saved.path)
    np.testing.assert_array_equal(X2, X.astype(np.float64))
    assert ids2.tolist() == ids


def test_missing_entry_is_none(tmp_path):
    assert EmbeddingStore(tmp_path).load(_key()) is None


def test_data_without_meta_is_not_a_result(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.save(_key(), np.ones((2, 2)), ["a", "b"], {})
    (store.entry_dir(_key()) / "meta.json").unlink()
    assert store.load(_key()) is None


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_corrupted_entry_is_detected_and_removed(tmp_path, damage, caplog):
    store = EmbeddingStore(tmp_path)
    saved = store.save(_key(), np.ones((3, 2)), ["a", "b", "c"], {})
    data = bytearray(saved.path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        saved.path.write_bytes(bytes(data))
    elif damage == "truncate":
        saved.path.write_bytes(bytes(data[: len(data) // 2]))
    else:
        saved.path.unlink()
    assert store.load(_key()) is None
    assert "corrupted" in caplog.text
    assert not (store.entry_dir(_key()) / "meta.json").exists()


def test_meta_records_the_data_hash(tmp_path):
    store = EmbeddingStore(tmp_path)
    saved = store.save(_key(), np.ones((2, 2)), ["a", "b"], {})
    meta = json.loads((store.entry_dir(_key()) / "meta.json").read_text())
    assert meta["sha256"] == sha256_file(saved.path)
    assert meta["digest"] == _key().digest()


def _chunk(first: int, n: int, d: int = 3, skipped=()) -> BatchChunk:
    positions = np.array([p for p in range(first, first + n) if p not in skipped], np.int64)
    X = np.tile(positions[:, None].astype(np.float32), (1, d))
    return BatchChunk(
        positions=positions,
        X=X,
        skipped=np.array(skipped, np.int64),
        reasons=np.array([f"bad {p}" for p in skipped], str),
    )


def test_chunks_round_trip_and_merge_in_position_order(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.save_chunk(_key(), _chunk(4, 4, skipped=(5,)))
    store.save_chunk(_key(), _chunk(0, 4))
    chunks = store.load_chunks(_key())
    merged = merge_chunks(chunks, 8)
    assert merged.positions.tolist() == [0, 1, 2, 3, 4, 6, 7]
    np.testing.assert_array_equal(merged.X[:, 0], merged.positions.astype(np.float32))
    assert merged.skipped.tolist() == [5] and merged.reasons.tolist() == ["bad 5"]


def test_damaged_or_stray_chunks_are_discarded(tmp_path, caplog):
    store = EmbeddingStore(tmp_path)
    good = store.save_chunk(_key(), _chunk(0, 4))
    bad = store.save_chunk(_key(), _chunk(4, 4))
    bad.write_bytes(bad.read_bytes()[:-10])  # torn write
    stray = good.parent / ".tmp-abc.npz"
    stray.write_bytes(b"half")
    chunks = store.load_chunks(_key())
    assert len(chunks) == 1 and chunks[0].positions.tolist() == [0, 1, 2, 3]
    assert not bad.exists() and not stray.exists()
    assert "damaged" in caplog.text


def test_merge_refuses_gaps():
    with pytest.raises(ValueError, match="cover 4 of 8"):
        merge_chunks([_chunk(0, 4)], 8)


def test_save_removes_partial_batches(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.save_chunk(_key(), _chunk(0, 2))
    store.save(_key(), np.ones((2, 3)), ["a", "b"], {})
    assert not (store.entry_dir(_key()) / "partial").exists()
    assert store.load_chunks(_key()) == []


def test_default_root_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSCOPE_CACHE", os.fspath(tmp_path / "c"))
    assert EmbeddingStore().root == tmp_path / "c"
