"""braindecode / skorch interop: CodeBrain trains inside ``braindecode.EEGClassifier``.

Dev-only (the ``dev`` extra pins braindecode); skipped when braindecode cannot be imported.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

braindecode = pytest.importorskip("braindecode")
mne = pytest.importorskip("mne")

from braindecode import EEGClassifier  # noqa: E402
from braindecode.datasets import BaseConcatDataset, RawDataset  # noqa: E402
from braindecode.preprocessing import create_windows_from_events  # noqa: E402

from _fixtures import make_tiny_classifier  # noqa: E402

SFREQ = 200.0
N_TIMES = 400  # 2 s windows = 2 patches of 200 samples


def _raws(n_raws: int = 2, seed: int = 0) -> list:
    """Recordings whose 2 s trials carry a 6 Hz (class a) or 20 Hz (class b) rhythm on C3."""
    rng = np.random.default_rng(seed)
    raws = []
    for _ in range(n_raws):
        n_trials = 8
        data = rng.normal(scale=5e-6, size=(3, int(SFREQ * 2 * n_trials)))
        t = np.arange(N_TIMES) / SFREQ
        labels = np.array(["a", "b"] * (n_trials // 2))
        for i, lab in enumerate(labels):
            freq = 6.0 if lab == "a" else 20.0
            data[0, i * N_TIMES : (i + 1) * N_TIMES] += 2e-5 * np.sin(2 * np.pi * freq * t)
        info = mne.create_info(["C3", "C4", "CZ"], SFREQ, "eeg")
        raw = mne.io.RawArray(data, info, verbose=False)
        raw.set_annotations(mne.Annotations(np.arange(n_trials) * 2.0, 2.0, labels))
        raws.append(raw)
    return raws


def test_eegclassifier_trains_codebrain_for_an_epoch():
    concat = BaseConcatDataset([RawDataset(raw) for raw in _raws()])
    windows = create_windows_from_events(
        concat,
        trial_start_offset_samples=0,
        trial_stop_offset_samples=0,
        window_size_samples=N_TIMES,
        window_stride_samples=N_TIMES,
        drop_last_window=False,
        mapping={"a": 0, "b": 1},
        preload=True,
    )
    assert len(windows) == 16
    module = make_tiny_classifier(seed=0, num_res_layers=1)
    assert (module.n_chans, module.n_times) == (3, N_TIMES)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    clf = EEGClassifier(
        module=module,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.AdamW,
        optimizer__lr=1e-3,
        train_split=None,
        batch_size=8,
        max_epochs=1,
        device="cpu",
        verbose=0,
    )
    clf.fit(windows, y=None)
    assert len(clf.history) == 1
    assert np.isfinite(clf.history[-1, "train_loss"])
    after = clf.module_.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    proba = clf.predict_proba(windows)
    assert proba.shape == (16, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
