"""Helpers shared by several CLI commands, gathered under one name.

They live in :mod:`~codebrain.cli._data_args` (the preprocessing flags, reading windows and
tokenizer corpora), :mod:`~codebrain.cli._model_args` (loading a model folder, device and
finiteness checks) and :mod:`~codebrain.cli._outputs` (checking outputs and run folders,
:func:`sigterm_as_exit`); this module re-exports them. Not a command: only ``cmd_*`` modules
are discovered.
"""

from __future__ import annotations

from codebrain.cli._data_args import (
    add_preprocess_args,
    labelled_subset,
    load_data_arg,
    load_windows,
    prepare_windows,
    preprocess_config_from_args,
    split_list,
)
from codebrain.cli._model_args import (
    add_common_args,
    check_device_arg,
    check_model_finite,
    check_outputs_finite,
    load_model_and_windows,
)
from codebrain.cli._outputs import check_output, check_run_folder, folder_kind, sigterm_as_exit

__all__ = [
    "add_preprocess_args",
    "preprocess_config_from_args",
    "split_list",
    "prepare_windows",
    "load_data_arg",
    "add_common_args",
    "load_model_and_windows",
    "labelled_subset",
    "sigterm_as_exit",
    "load_windows",
    "check_output",
    "folder_kind",
    "check_run_folder",
    "check_device_arg",
    "check_model_finite",
    "check_outputs_finite",
]
