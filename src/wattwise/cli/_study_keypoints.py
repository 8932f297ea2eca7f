"""``wattwise study keypoints``: the sAIn pattern, a lean network on hand keypoints
against a CNN on the frames, trained to the same accuracy; registered on the ``study``
group."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from wattwise.cli._common import console
from wattwise.cli._render import format_energy
from wattwise.cli._study import study_app
from wattwise.cli._study_options import (
    BatchSize,
    Device,
    Lr,
    Repeats,
    StudyOptions,
    Threads,
    study_options,
)

if TYPE_CHECKING:
    from wattwise.studies import KeypointStudy, PipelineResult

__all__ = ["keypoints", "render_keypoints"]


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}x"


def _row(table: Table, p: PipelineResult) -> None:
    r = p.runs
    table.add_row(
        escape(p.label),
        escape(p.model),
        f"{p.params:,}",
        f"{p.reached_target}/{len(r.trials)}",
        f"{r.val_accuracy.median:.3f}",
        format_energy(r.energy_j.median),
        format_energy(p.energy_per_clip_j.median),
        f"{p.inference_accuracy:.3f}",
    )


def render_keypoints(study: KeypointStudy) -> None:
    """The two pipelines, the ratios and what the figures include, for people."""
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for i, col in enumerate(
        ("pipeline", "model", "params", "at target", "val acc", "training", "per clip", "acc")
    ):
        table.add_column(col, justify="left" if i < 2 else "right", no_wrap=i < 2)
    _row(table, study.keypoints)
    _row(table, study.frames)
    console.print(
        f"Keypoints vs frames on {escape(study.dataset)}, target {study.target_accuracy:g}",
        highlight=False,
    )
    console.print(table)
    ex = study.extraction
    if ex is not None:
        console.print(
            f"  extraction: {format_energy(ex.energy_per_frame_j.median)} per frame, "
            f"{format_energy(ex.energy_per_clip_j)} per clip, hand found in "
            f"{ex.detected_frac:.0%} of the frames",
            highlight=False,
        )
    console.print(
        f"  frames / keypoints energy: training {_ratio(study.training_ratio)}, inference "
        f"{_ratio(study.inference_ratio)} without extraction, "
        f"{_ratio(study.inference_ratio_with_extraction)} with it",
        highlight=False,
    )
    console.print(f"  {study.extraction_note}", highlight=False, markup=False)
    console.print(f"  energy: {study.keypoints.runs.energy_source}", highlight=False, markup=False)
    for note in study.notes:
        console.print(f"  note: {note}", highlight=False, style="dim", markup=False)
    where = "stored" if study.stored else "not stored"
    console.print(f"  study {study.study_id[:12]} ({where})", highlight=False)


@study_app.command("keypoints")
@study_options()
def keypoints(
    options: StudyOptions,
    clips: Annotated[int, typer.Option(help="Gesture clips (80 % train, 20 % validation).")] = 1200,
    frames: Annotated[int, typer.Option(help="Frames per clip.")] = 16,
    classes: Annotated[int, typer.Option(help="Gesture classes (2 to 10).")] = 8,
    size: Annotated[int, typer.Option(help="Side of a drawn frame, in pixels.")] = 32,
    data_seed: Annotated[int, typer.Option(help="Seed of the gesture clips.")] = 0,
    target: Annotated[
        float, typer.Option(help="Validation accuracy both pipelines train to (0..1].")
    ] = 0.9,
    max_epochs: Annotated[
        int, typer.Option(help="Epoch cap of a run that does not reach the target.")
    ] = 40,
    keypoint_model: Annotated[
        str, typer.Option(help="Pipeline A's model, on keypoint sequences (63 x T).")
    ] = "lstm:hidden=32",
    frame_model: Annotated[
        str, typer.Option(help="Pipeline B's model, on frames (T x 1 x size x size).")
    ] = "framecnn",
    landmarker: Annotated[
        Path | None,
        typer.Option(
            help="MediaPipe hand landmarker model file (hand_landmarker.task): measure the "
            "keypoint extraction per frame and add it to pipeline A's inference. Needs the "
            "keypoints extra; nothing is downloaded."
        ),
    ] = None,
    inference_batch: Annotated[
        int, typer.Option(help="Clips per measured inference call (1: one at a time).")
    ] = 1,
    repeats: Repeats = 3,
    batch_size: BatchSize = 32,
    lr: Lr = 3e-3,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Keypoints before a lean network (the sAIn pattern) against a CNN on the frames.

    The same synthetic hand gestures as keypoint sequences (an LSTM) and as drawn frames (a
    per-frame CNN), both trained to --target; training energy, inference energy per clip,
    and their ratio. Keypoint extraction is included only with --landmarker."""
    from wattwise.studies import study_keypoints

    method = options.method(repeats)
    context = options.context()
    with options.progress() as progress:
        study = study_keypoints(
            clips=clips,
            frames=frames,
            classes=classes,
            size=size,
            data_seed=data_seed,
            target_accuracy=target,
            max_epochs=max_epochs,
            keypoint_model=keypoint_model,
            frame_model=frame_model,
            batch_size=batch_size,
            lr=lr,
            inference_batch=inference_batch,
            device=device,
            threads=threads,
            landmarker=landmarker,
            method=method,
            name=options.name,
            context=context.with_(progress=progress),
        )
    options.show(study, render_keypoints)
