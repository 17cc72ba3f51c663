"""The frozen-feature cache after a write cut short: set aside (kept) and recomputed, never a bare EOFError
on every relaunch (issue 16, case 1)."""

import io

import pytest
import torch

from evaluation.features import cached

FEATURES, LABELS = torch.arange(12.0).reshape(4, 3), torch.tensor([0, 1, 0, 1])


def _saved_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({"key": "step6:4", "features": FEATURES, "labels": LABELS}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_a_damaged_feature_cache_is_set_aside_and_recomputed(tmp_path, damage):
    path = tmp_path / "features" / "train.pt"
    path.parent.mkdir()
    damaged = b"" if damage == "empty" else _saved_bytes()[:200]
    path.write_bytes(damaged)
    calls = []

    def compute():
        calls.append(1)
        return FEATURES, LABELS

    with pytest.warns(UserWarning, match=rf"feature cache {path} is unreadable .*kept as train.pt.corrupt, recomputing"):
        features, labels = cached(path, "step6:4", compute)
    assert calls == [1] and torch.equal(features, FEATURES) and torch.equal(labels, LABELS)
    assert (tmp_path / "features" / "train.pt.corrupt").read_bytes() == damaged
    # The recomputed cache is whole: the next call reads it without computing.
    features, _ = cached(path, "step6:4", compute)
    assert calls == [1] and torch.equal(features, FEATURES)
