"""From EEG files to CodeBrain-ready windows, and from folders of files to a corpus.

Read (MNE, mne-bids) → map channels to the model's montage → filter, notch, resample to
200 Hz, scale to units of 100 µV → windows (:class:`WindowDataset`, in memory) or a sharded,
memory-mapped on-disk corpus (:func:`build_corpus`, :class:`CorpusDataset`). A seeded
synthetic motor-imagery data set written as EDF+ files is built in
(:func:`write_synthetic_dataset`).
"""

from __future__ import annotations

from codebrain.data.bipolar import (
    TCP_BIPOLAR_CHANNELS,
    TCP_BIPOLAR_CHANNELS_1010,
    TCP_BIPOLAR_PAIRS,
    bipolar_derivations,
    bipolar_raw,
    tcp_bipolar_names,
)
from codebrain.data.corpus_format import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    CorpusError,
    CorpusLockedError,
    file_sha256,
)
from codebrain.data.datasets import CorpusDataset, NpyWindows, WindowDataset
from codebrain.data.io import READERS, RecordingError, read_raw
from codebrain.data.labels import read_label_table
from codebrain.data.montage import (
    CHANNEL_ALIASES,
    DEFAULT_CHANNELS,
    normalize_channel_name,
    parse_channel_map,
    pick_target_channels,
    standard_montage,
)
from codebrain.data.pipeline import load_windows
from codebrain.data.preprocess import (
    NONFINITE_ANNOTATION,
    VOLTS_TO_MODEL_UNITS,
    PreprocessConfig,
    find_flat_channels,
    preprocess_raw,
)
from codebrain.data.recordings import (
    find_bids_recordings,
    list_recordings,
    recording_id,
    recording_ids,
)
from codebrain.data.store import CorpusSummary, build_corpus
from codebrain.data.subjects import SUBJECT_PATTERNS, subject_id
from codebrain.data.synthetic import (
    MI_CLASSES,
    SYNTHETIC_CHANNELS,
    make_synthetic_recording,
    write_synthetic_dataset,
)
from codebrain.data.tueg import TUEG_MONTAGES, build_tueg_corpus, tueg_config, tueg_recordings
from codebrain.data.window_files import load_windows_npz, save_windows_npz
from codebrain.data.windows import (
    Windows,
    event_windows,
    fixed_length_windows,
    make_event_id,
    no_window_reason,
    reject_by_amplitude,
    windows_from_raw,
)

__all__ = [
    "TCP_BIPOLAR_CHANNELS",
    "TCP_BIPOLAR_CHANNELS_1010",
    "TCP_BIPOLAR_PAIRS",
    "bipolar_derivations",
    "bipolar_raw",
    "tcp_bipolar_names",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "CorpusDataset",
    "CorpusError",
    "CorpusLockedError",
    "CorpusSummary",
    "build_corpus",
    "file_sha256",
    "CHANNEL_ALIASES",
    "DEFAULT_CHANNELS",
    "MI_CLASSES",
    "READERS",
    "SUBJECT_PATTERNS",
    "SYNTHETIC_CHANNELS",
    "VOLTS_TO_MODEL_UNITS",
    "NONFINITE_ANNOTATION",
    "PreprocessConfig",
    "RecordingError",
    "WindowDataset",
    "Windows",
    "event_windows",
    "find_bids_recordings",
    "find_flat_channels",
    "fixed_length_windows",
    "list_recordings",
    "load_windows",
    "load_windows_npz",
    "save_windows_npz",
    "NpyWindows",
    "make_event_id",
    "no_window_reason",
    "make_synthetic_recording",
    "normalize_channel_name",
    "pick_target_channels",
    "parse_channel_map",
    "preprocess_raw",
    "read_label_table",
    "read_raw",
    "recording_id",
    "recording_ids",
    "reject_by_amplitude",
    "standard_montage",
    "subject_id",
    "windows_from_raw",
    "write_synthetic_dataset",
    "TUEG_MONTAGES",
    "build_tueg_corpus",
    "tueg_config",
    "tueg_recordings",
]
