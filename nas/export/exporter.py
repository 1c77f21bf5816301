"""Export a trained candidate of a run, ready to serve. Imports TensorFlow.

The export folder holds::

    model.keras            Keras 3 model (keras.models.load_model)
    <name>/1/              SavedModel in TF Serving's <model>/<version>/ layout
    genome.json            the architecture and training recipe, re-buildable
    MODEL_CARD.md          metrics, budget, parameters, FLOPs, input and output
    model.onnx             with --onnx
    model.tflite           with --litert: LiteRT float32 (nas.export.litert)
    model_int8.tflite      with --int8: LiteRT full-integer int8, calibrated on training faces

It is written into a temporary folder beside the target and renamed into place at the
end, so a failed export leaves nothing behind. An export folder (of ``nas export`` or
``nas train``) can itself be exported again, e.g. flip-averaged or with ONNX added
(:func:`reexport`).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nas.core.tensorflow_logs import import_tensorflow_quietly

# ruff: noqa: E402 (TensorFlow is imported, its start-up noise dropped, before Keras)
import_tensorflow_quietly()

import keras

from nas.core.errors import ConfigError, GenomeError
from nas.core.files import replace_synced
from nas.core.space import load_space
from nas.export.files import (
    ONNX_FILE,
    ExportResult,
    genome_document,
    lineage_lines,
    metric_text,
    serving_lines,
    write_export_files,
)
from nas.export.flip_average import flip_averaged, is_flip_averaged
from nas.export.litert import DeploymentFaces
from nas.export.model_outputs import output_kind_and_names
from nas.storage.records import TrialRecord
from nas.storage.selection import select_trial
from nas.storage.store import RunStore

__all__ = [
    "check_target",
    "export_trial",
    "load_trained_model",
    "reexport",
    "select_trial",
]


def load_trained_model(store: RunStore, record: TrialRecord) -> keras.Model:
    """Rebuild ``record``'s model from its genome and load the weights trained in the run."""
    if not record.weights or not (store.run_dir / record.weights).exists():
        raise ConfigError(
            f"trial {record.number}: its trained weights are not in {store.run_dir / 'models'}; "
            f"export another trial (nas pareto {store.run_dir} lists them)"
        )
    space = load_space(store.info.space)
    try:
        genome = space.from_json(record.genome)
    except GenomeError as exc:
        raise ConfigError(
            f"trial {record.number} of {store.run_dir}: its stored genome is unusable ({exc}); "
            "export another trial"
        ) from None
    info = store.info
    if info.tasks:
        tasks, names = [t.task for t in info.tasks], [t.name for t in info.tasks]
        model = space.build_multitask(genome, tasks, names)
    else:
        model = space.build(genome, info.task)
    path = store.run_dir / record.weights
    try:
        model.load_weights(path)
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise ConfigError(
            f"{path}: cannot load trial {record.number}'s trained weights ({reason}); the file "
            "is damaged: export another trial or run the search again"
        ) from None
    return model


def export_trial(
    store: RunStore,
    record: TrialRecord,
    to: Path,
    *,
    name: str | None = None,
    onnx: bool = False,
    flip_average: bool = False,
    litert: bool = False,
    int8: bool = False,
    faces: DeploymentFaces | None = None,
) -> ExportResult:
    """Write ``record``'s trained model to ``to`` (which must not exist or be empty);
    with ``onnx``, also ``model.onnx`` (:func:`nas.export.onnx.export_onnx`); with
    ``flip_average``, the model averages each face's answer with its mirror image's
    (:mod:`nas.export.flip_average`); with ``litert`` and ``int8``, the LiteRT files
    (:mod:`nas.export.litert`; ``int8`` calibrates on ``faces``, and ``faces`` score every
    format in the card)."""
    name = _checked_name(name or store.info.name)
    check_target(to)
    for flag, used in (("--flip-average", flip_average), ("--litert", litert), ("--int8", int8)):
        if store.info.tasks and used:
            raise ConfigError(
                f"{flag}: not for a multi-task export; export the trial, then export its "
                f"tasks/<task>/ folder again with {flag}"
            )
    deployed = _Deployment(litert or int8, int8, faces)
    model = load_trained_model(store, record)
    if store.info.tasks:
        from nas.export.multitask import write_multitask_export

        _write_atomically(
            to,
            lambda staging: write_multitask_export(
                store, record, model, staging, name=name, onnx=onnx
            ),
        )
        return ExportResult.of(to, name)
    genome_doc = genome_document(store.info, record)
    card = _model_card(store, record, name, model)
    if flip_average:
        model = flip_averaged(model, store.info.task.kind, store.info.output_names)
        card = card.rstrip("\n") + "\n\n" + FLIP_AVERAGE_NOTE
        genome_doc["flip_average"] = True
    _write_atomically(
        to, lambda staging: _write_all(model, staging, name, genome_doc, card, onnx, deployed)
    )
    return ExportResult.of(to, name)


def reexport(
    source: Path,
    to: Path,
    *,
    name: str | None = None,
    onnx: bool = False,
    flip_average: bool = False,
    litert: bool = False,
    int8: bool = False,
    faces: DeploymentFaces | None = None,
) -> ExportResult:
    """Export again what an export folder ``source`` holds (``model.keras`` and
    ``genome.json``, as ``nas export`` and ``nas train`` write them) into ``to``: e.g.
    flip-averaged, or with ONNX or LiteRT files. The model card is the source's, with a
    note added; its "Formats" table is dropped (it describes the source's files) and written
    anew with LiteRT."""
    keras_file, genome_file = source / "model.keras", source / "genome.json"
    for needed in (keras_file, genome_file):
        if not needed.is_file():
            raise ConfigError(
                f"{source}: holds no {needed.name}; pass a run folder, or an export folder "
                "of nas export or nas train"
            )
    try:
        genome_doc = json.loads(genome_file.read_text())
    except ValueError as exc:
        raise ConfigError(
            f"{genome_file}: not JSON ({_short(exc)}); export from the run folder instead"
        ) from None
    if not isinstance(genome_doc, dict) or "genome" not in genome_doc:
        raise ConfigError(
            f"{genome_file}: not a genome document of nas export; export from the run folder"
        )
    served = sorted(p.parent.parent.name for p in source.glob("*/1/saved_model.pb"))
    name = _checked_name(name or (served[0] if served else source.name))
    check_target(to)
    try:
        model = keras.models.load_model(keras_file, compile=False)
    except Exception as exc:  # Keras raises many kinds for a damaged or foreign file
        raise ConfigError(f"{keras_file}: cannot load it ({_short(exc)}); export again") from None
    kind, labels = output_kind_and_names(model, genome_doc, keras_file)
    if "task" not in genome_doc:  # exports older than genome_document()'s task entry
        shape = [int(d) for d in model.inputs[0].shape[1:]]
        genome_doc["task"] = {"kind": kind, "input_shape": shape, "labels": list(labels)}
    card_file = source / "MODEL_CARD.md"
    card = card_file.read_text() if card_file.is_file() else f"# {name}\n"
    # the source's "Formats" table describes its own files, which are not copied
    card = card.split("\n## Formats\n")[0]
    if flip_average and not is_flip_averaged(model):
        model = flip_averaged(model, kind, labels)
        card = card.rstrip("\n") + "\n\n" + FLIP_AVERAGE_NOTE
    genome_doc["flip_average"] = is_flip_averaged(model)
    deployed = _Deployment(litert or int8, int8, faces)
    _write_atomically(
        to, lambda staging: _write_all(model, staging, name, genome_doc, card, onnx, deployed)
    )
    return ExportResult.of(to, name)


FLIP_AVERAGE_NOTE = """## Flip averaging

This export answers for each face and for its mirror image and averages the two (class
probabilities; keypoints after swapping the mirror's left and right points back), at
twice the FLOPs per image of the net. The figures above are the net's alone; run
`nas evaluate` on this folder for the averaged model's.
"""


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def _checked_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError(
            f"--name {name!r}: use letters, digits, '_', '.' or '-' (it names the served model)"
        )
    return name


def check_target(to: Path) -> None:
    """Refuse, in one line, an export target that is a non-empty folder or lies under a
    file; the command checks it before anything slow, so a mistyped ``--to`` costs
    nothing."""
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise ConfigError(f"--to {to}: already exists and is not an empty folder; choose another")
    blocker = next((p for p in to.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ConfigError(f"--to {to}: {blocker} is a file, not a folder; choose another --to")


@dataclass(frozen=True)
class _Deployment:
    """Which LiteRT files an export writes, and the faces for int8 and the scores."""

    wanted: bool
    int8: bool
    faces: DeploymentFaces | None


def _write_all(
    model: keras.Model,
    folder: Path,
    name: str,
    genome_doc: dict,
    card: str,
    onnx: bool,
    deployed: _Deployment | None = None,
) -> None:
    write_export_files(model, folder, name=name, genome_doc=genome_doc, card=card)
    if onnx:
        from nas.export.onnx import export_onnx

        export_onnx(model, folder / ONNX_FILE)
    if deployed is not None and deployed.wanted:
        from nas.export.litert import formats_section, write_litert_files
        from nas.training.litert import LiteRTError

        task = genome_doc["task"]
        try:
            rows, quantised = write_litert_files(
                model,
                folder,
                kind=task["kind"],
                labels=task["labels"],
                int8=deployed.int8,
                faces=deployed.faces,
            )
        except LiteRTError as exc:
            flag = "--int8" if deployed.int8 else "--litert"
            raise ConfigError(f"{flag}: {exc}; export without it") from None
        section = formats_section(rows, deployed.faces, quantised)
        (folder / "MODEL_CARD.md").write_text(card.rstrip("\n") + "\n\n" + section)


def _write_atomically(to: Path, write: Callable[[Path], None]) -> None:
    """Run ``write`` on a temporary folder beside ``to``, then rename it to ``to``; on any
    failure, nothing is left behind."""
    try:
        to.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{to.name}.", dir=to.parent))
    except OSError as exc:
        raise ConfigError(
            f"--to {to}: cannot create it ({exc.strerror or exc}); choose a writable folder"
        ) from None
    try:
        write(staging)
        if to.exists():
            to.rmdir()
        replace_synced(staging, to)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _model_card(store: RunStore, record: TrialRecord, name: str, model: keras.Model) -> str:
    info = store.info
    experiment = info.experiment
    metrics = record.metrics
    budget = experiment["budget"]
    lines = [
        f"# {name}",
        "",
        f"Evolved by facenas, run `{store.run_dir}`, trial {record.number} (generation "
        f"{record.generation}), genome `{record.genome_hash}`"
        + (f", baseline `{record.baseline}`" if record.baseline else "")
        + ".",
        "",
        f"Architecture ({info.space} space): `{record.description}`",
        "",
        *lineage_lines(store, record),
        "## Metrics (validation split of the run)",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {k} | {metric_text(v)} |" for k, v in metrics.items()),
        "",
        f"Parameters: {model.count_params():,}. FLOPs per image: {int(metrics.get('flops', 0)):,}.",
        "",
        "## Training budget",
        "",
        f"Each candidate of the search was trained on {_budget_text(budget)} (a guard stops "
        f"training at {budget['train_seconds']:g} s). "
        "Short budgets favour small nets that converge fast: retrain the winner longer before use.",
        (
            f"**This model was cut by the time guard** after {record.train_steps:,} steps "
            f"({record.images_seen:,} images): its figures depend on the machine's speed."
            if record.stopped_early
            else f"This model trained {record.train_steps:,} steps ({record.images_seen:,} images)."
        ),
        *_fidelity_note(record),
        f"Data: `{experiment['data']['path']}`, {info.task.num_classes} classes, seed {experiment['seed']}.",
        "",
        *serving_lines(info, name),
    ]
    return "\n".join(lines)


def _fidelity_note(record: TrialRecord) -> list[str]:
    """A line on the trial's multi-fidelity rung, when it has one."""
    fidelity = record.fidelity
    if fidelity is None:
        return []
    if fidelity.low:
        return [
            f"Multi-fidelity: a low-fidelity evaluation ({fidelity.images:,} images budgeted), "
            "not comparable with the front's full-budget ones."
        ]
    return [
        "Multi-fidelity: promoted; this training continued from its low-fidelity weights, "
        f"{fidelity.total_images_seen:,} images in all."
    ]


def _budget_text(budget: dict) -> str:
    subset = f"a subset of {budget['max_train_images']:,}" if budget["max_train_images"] else "all"
    if budget.get("train_images"):
        return f"{budget['train_images']:,} images ({subset} training images, reshuffled each pass)"
    return f"{budget['epochs']} epoch(s) of {subset} training images"
