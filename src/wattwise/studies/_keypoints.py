"""The keypoint study: the sAIn pattern made measurable.

sAIn turns camera frames into MediaPipe hand keypoints first, so that a lean network (an
LSTM on keypoint sequences) replaces a CNN on raw video. Here both pipelines learn the same
synthetic gestures (:mod:`wattwise.workloads._gestures`: the same clips as keypoint
sequences and as drawn frames), each trained to the same target accuracy (or the epoch
cap, which the record says), repeated round-robin under the study's protocol; then the
inference of each trained model is measured per clip, and, when a MediaPipe hand
landmarker model file is given, the extraction of keypoints from the frames per frame.
The result is the energy ratio of the pipelines at equal accuracy, for training and for
inference, with and without the extraction.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wattwise._errors import ConfigError
from wattwise._extras import require
from wattwise.protocol import LeverContext, StudySession, measure, schedule, study_session, tracking
from wattwise.protocol._measure import Repeated
from wattwise.studies._keypoint_records import (
    INCLUDED,
    NOT_INCLUDED,
    Extraction,
    KeypointStudy,
    PipelineResult,
)
from wattwise.studies._method import (
    StudyMethod,
    TrainConfig,
    _trial,
    build,
    method_notes,
    threads_set,
    warm_up,
)
from wattwise.studies._records import RepeatedRuns, Trial
from wattwise.train import TargetAccuracy, fit, resolve_device, seed_everything
from wattwise.workloads._datasets import DataSplit, load_dataset

__all__ = ["study_keypoints"]

#: The pipelines' default models: a lean LSTM on keypoints, a per-frame CNN on frames.
KEYPOINT_MODEL = "lstm:hidden=32"
FRAME_MODEL = "framecnn"


def _gesture_spec(clips: int, frames: int, classes: int, size: int, seed: int) -> str:
    return f"gestures:clips={clips},frames={frames},classes={classes},size={size},seed={seed}"


def _train(
    session: StudySession,
    method: StudyMethod,
    configs: dict[str, TrainConfig],
    data: dict[str, DataSplit],
    *,
    epochs: int,
    target: float,
    lr: float,
) -> tuple[dict[str, RepeatedRuns], dict[str, nn.Module]]:
    """Train each pipeline to the target, round-robin; the last model of each is kept."""
    trials: dict[str, list[Trial]] = {label: [] for label in configs}
    models: dict[str, nn.Module] = {}
    for r, label in schedule(list(configs), method.protocol):
        config, split = configs[label], data[label]
        seed = method.protocol.seed_of(r)
        with threads_set(config.threads):
            if not trials[label] and method.warmup_batches > 0:
                seed_everything(seed)
                warm_up(build(config, split), split, config, method.warmup_batches)
            seed_everything(seed)
            model = build(config, split)
            result = fit(
                model,
                split,
                epochs=epochs,
                batch_size=config.batch_size,
                lr=lr,
                stop=(TargetAccuracy(target),),
                device=config.device,
                seed=seed,
                tracker=session.tracker(f"keypoints: {label} #{r}"),
                hparams={"study": session.kind, "config": label},
            )
        trials[label].append(_trial(session, config, r, seed, result))
        models[label] = model
    return {label: RepeatedRuns(label, tuple(ts)) for label, ts in trials.items()}, models


def _accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(inputs).argmax(1) == labels).float().mean())


def _clip_calls(
    models: dict[str, nn.Module], data: dict[str, DataSplit], batch: int, device: torch.device
) -> tuple[dict[str, Callable[[], object]], dict[str, float]]:
    """One inference call per pipeline (``batch`` validation clips, cycling), and the
    validation accuracy of each model."""
    calls: dict[str, Callable[[], object]] = {}
    accuracy: dict[str, float] = {}
    for label, model in models.items():
        xs = torch.stack([x for x, _ in data[label].val]).to(device)  # type: ignore[attr-defined]
        ys = torch.tensor([int(y) for _, y in data[label].val], device=device)  # type: ignore[attr-defined]
        model.to(device).eval()
        accuracy[label] = _accuracy(model, xs, ys)
        batches = itertools.cycle(list(torch.split(xs, batch)[: max(1, len(xs) // batch)]))

        def call(m: nn.Module = model, it: Any = batches) -> object:
            with torch.no_grad():
                out = m(next(it))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return out

        calls[label] = call
    return calls, accuracy


def _landmarker_call(
    path: Path, frames: np.ndarray[Any, Any]
) -> tuple[Callable[[], object], list[bool]]:
    """MediaPipe's hand landmarker on the rendered frames, one frame per call; what it
    found per call is appended to the returned list."""
    require("wattwise study keypoints --landmarker", "keypoints", ["mediapipe"])
    import mediapipe as mp  # type: ignore[import-not-found,unused-ignore]
    from mediapipe.tasks import python as tasks  # type: ignore[import-not-found,unused-ignore]
    from mediapipe.tasks.python import vision  # type: ignore[import-not-found,unused-ignore]

    try:
        landmarker = vision.HandLandmarker.create_from_options(
            vision.HandLandmarkerOptions(
                base_options=tasks.BaseOptions(model_asset_path=str(path)), num_hands=1
            )
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise ConfigError(f"cannot load the hand landmarker {path}: {exc}") from None
    rgb = np.repeat((np.clip(frames, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=-1)
    images = itertools.cycle([mp.Image(image_format=mp.ImageFormat.SRGB, data=f) for f in rgb])
    found: list[bool] = []

    def call() -> object:
        result = landmarker.detect(next(images))
        found.append(bool(result.hand_landmarks))
        return result

    return call, found


def _check(
    clips: int, frames: int, target_accuracy: float, max_epochs: int, batch_size: int,
    inference_batch: int, landmarker: str | Path | None,
) -> Path | None:  # fmt: skip
    if not 0.0 < target_accuracy <= 1.0:
        raise ConfigError(f"the target accuracy must be in (0, 1], got {target_accuracy}")
    if max_epochs < 1 or batch_size < 1 or inference_batch < 1:
        raise ConfigError("epochs, batch size and inference batch must be >= 1")
    if clips < 10 or frames < 4:
        raise ConfigError(
            f"a keypoint study needs clips >= 10 and frames >= 4, got {clips}, {frames}"
        )
    if landmarker is None:
        return None
    path = Path(landmarker).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"no landmarker model file {path}: give MediaPipe's hand_landmarker.task "
            "(wattwise downloads nothing), or leave out --landmarker"
        )
    return path


def study_keypoints(
    *,
    clips: int = 1200,
    frames: int = 16,
    classes: int = 8,
    size: int = 32,
    data_seed: int = 0,
    target_accuracy: float = 0.9,
    max_epochs: int = 40,
    keypoint_model: str = KEYPOINT_MODEL,
    frame_model: str = FRAME_MODEL,
    batch_size: int = 32,
    lr: float = 3e-3,
    inference_batch: int = 1,
    device: str = "auto",
    threads: int | None = None,
    landmarker: str | Path | None = None,
    method: StudyMethod | None = None,
    name: str | None = None,
    context: LeverContext | None = None,
) -> KeypointStudy:
    """Train a keypoint pipeline and a frame pipeline to the same accuracy and compare
    their training and inference energy (the sAIn pattern).

    Args:
        clips: gesture clips (80 % train, 20 % validation, stratified).
        frames: frames per clip.
        classes: gesture classes (2..10).
        size: side of a drawn frame in pixels.
        data_seed: seed of the gesture clips.
        target_accuracy: validation accuracy each training run stops at (0..1].
        max_epochs: the cap of a run that does not reach it (the record says so).
        keypoint_model: pipeline A's model, on keypoint sequences ``63 x T``.
        frame_model: pipeline B's model, on frames ``T x 1 x size x size``.
        batch_size: training batch size of both.
        lr: learning rate (Adam) of both.
        inference_batch: clips per measured inference call (1: a clip at a time, as a
            camera delivers them).
        device: ``auto``, ``cpu``, ``cuda``...
        threads: PyTorch threads (None: as is).
        landmarker: MediaPipe hand landmarker model file (``hand_landmarker.task``): its
            extraction per frame is measured and added to pipeline A's inference. None:
            extraction is not included, and the record says so.
        method: the measurement protocol (repeats, warm-up, cool-down, order, seed).
        name: the study's name.
        context: meters, store, scope and progress.

    Raises:
        ConfigError: bad arguments, a missing landmarker file, MediaPipe missing (the
            ``keypoints`` extra) when a landmarker is given, a model that cannot take
            its input.
    """
    method = method or StudyMethod()
    context = context or LeverContext()
    path = _check(
        clips, frames, target_accuracy, max_epochs, batch_size, inference_batch, landmarker
    )
    if path is not None:
        require("wattwise study keypoints --landmarker", "keypoints", ["mediapipe"])
    dev = resolve_device(device)
    spec = _gesture_spec(clips, frames, classes, size, data_seed)
    data = {v: load_dataset(f"{spec},view={v}") for v in ("keypoints", "frames")}
    configs = {
        "keypoints": TrainConfig("keypoints", keypoint_model, batch_size, str(dev), threads),
        "frames": TrainConfig("frames", frame_model, batch_size, str(dev), threads),
    }
    params = {k: sum(p.numel() for p in build(c, data[k]).parameters()) for k, c in configs.items()}
    settings = {
        "max_epochs": max_epochs, "batch_size": batch_size, "lr": lr, "optimizer": "adam",
        "inference_batch": inference_batch, "device": str(dev), "threads": threads,
        "landmarker": None if path is None else str(path),
    }  # fmt: skip
    study_name = name or f"keypoints vs frames on {spec}"
    with study_session(
        context,
        kind="keypoints",
        name=study_name,
        params={
            "dataset": spec,
            "target_accuracy": target_accuracy,
            "models": {k: c.model for k, c in configs.items()},
            **settings,
            "method": method.to_dict(context.scope),
        },
    ) as session:
        session.begin(2 * method.repeats + 1)
        runs, models = _train(
            session, method, configs, data, epochs=max_epochs, target=target_accuracy, lr=lr
        )
        with threads_set(threads):
            inference, accuracy, extraction = _measure_inference(
                session, method, models, data, inference_batch, dev, path, frames
            )
        pipelines = _pipelines(configs, data, params, runs, inference, accuracy, target_accuracy)
        notes = method_notes(method, context.scope, session.sources)
        study = KeypointStudy(
            study_id=session.study_id,
            name=study_name,
            dataset=spec,
            target_accuracy=target_accuracy,
            settings=settings,
            method=method.to_dict(context.scope),
            keypoints=pipelines["keypoints"],
            frames=pipelines["frames"],
            extraction=extraction,
            extraction_note=(NOT_INCLUDED if extraction is None else INCLUDED),
            notes=tuple(notes + _target_notes(pipelines.values(), target_accuracy, max_epochs)),
            stored=session.stored,
        )
        session.finish(study.to_dict())
    return study


def _pipelines(
    configs: dict[str, TrainConfig],
    data: dict[str, DataSplit],
    params: dict[str, int],
    runs: dict[str, RepeatedRuns],
    inference: dict[str, Repeated],
    accuracy: dict[str, float],
    target: float,
) -> dict[str, PipelineResult]:
    """Each pipeline's result, by label."""
    return {
        label: PipelineResult(
            label=label,
            model=configs[label].model,
            dataset=data[label].name,
            params=params[label],
            runs=runs[label],
            reached_target=sum(t.val_accuracy >= target for t in runs[label].trials),
            inference=inference[label],
            inference_accuracy=accuracy[label],
        )
        for label in configs
    }


def _target_notes(pipelines: Any, target: float, cap: int) -> list[str]:
    out = []
    for p in pipelines:
        missed = len(p.runs.trials) - p.reached_target
        if missed:
            out.append(
                f"{p.label}: {missed} of {len(p.runs.trials)} runs did not reach the target "
                f"{target:g} in {cap} epochs (median accuracy {p.runs.val_accuracy.median:.3f}): "
                "the ratios are not at equal accuracy"
            )
    return out


def _measure_inference(
    session: StudySession,
    method: StudyMethod,
    models: dict[str, nn.Module],
    data: dict[str, DataSplit],
    batch: int,
    device: torch.device,
    landmarker: Path | None,
    frames: int,
) -> tuple[dict[str, Repeated], dict[str, float], Extraction | None]:
    """Inference per clip of both trained models (and the extraction per frame), measured
    round-robin under the protocol in one tracked run linked to the study."""
    calls, accuracy = _clip_calls(models, data, batch, device)
    items: dict[str, int] = dict.fromkeys(calls, batch)
    found: list[bool] = []
    if landmarker is not None:
        drawn = torch.stack([x for x, _ in data["frames"].val])[:, :, 0].flatten(0, 1)  # type: ignore[attr-defined]
        calls["extraction"], found = _landmarker_call(landmarker, drawn.numpy())
        items["extraction"] = 1
    with tracking("keypoints: inference", session.context) as tracker:
        measured = measure(calls, method.protocol, tracker=tracker, items_per_call=items)
        run_id = tracker.run_id
    source = measured["keypoints"].total.source
    session.link(run_id, "inference", {"subjects": list(calls), "clips_per_call": batch})
    session.run_done("inference", source)
    extraction = None
    if landmarker is not None:
        extraction = Extraction(
            model_path=str(landmarker),
            measured=measured.pop("extraction"),
            frames_per_clip=frames,
            detected_frac=sum(found) / len(found) if found else 0.0,
        )
    return measured, accuracy, extraction
