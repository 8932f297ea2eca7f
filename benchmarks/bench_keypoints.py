"""The sAIn pattern: a keypoint LSTM against a frame CNN at the same accuracy.

Both pipelines learn the same synthetic hand gestures (``gestures``: the same clips as
keypoint sequences 63 x T and drawn as T frames), each trained until its validation
accuracy reaches ``--target`` (or ``--max-epochs``, which it reports); then the inference
of each trained model is measured per clip (one clip a call, as a camera delivers them).
It reports the ratio of the frame pipeline's energy to the keypoint pipeline's, for
training and for inference, with medians and the worst case over the repeats. Keypoint
extraction is included only with ``--landmarker PATH`` (MediaPipe's hand landmarker; the
``keypoints`` extra); without it the ratio is the networks' alone, and it says so.

No goal is set for the ratios: what they are is the finding.

Measured in process scope with one PyTorch thread, so other processes' load on a shared
machine leaks as little as possible into the figures; the repeats run round-robin.

Run:  python benchmarks/bench_keypoints.py [--clips 1200] [--frames 16] [--target 0.9]
      [--repeats 3] [--landmarker PATH] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from wattwise.protocol import LeverContext
from wattwise.studies import KeypointStudy, StudyMethod, study_keypoints
from wattwise.tracking import Scope


def _worst_ratios(study: KeypointStudy) -> tuple[float, float]:
    """The smallest frames/keypoints ratios over the repeats (worst case for keypoints):
    the cheapest frame run against the dearest keypoint run."""
    kp, fr = study.keypoints, study.frames
    train = min(fr.runs.energy_j.values) / max(kp.runs.energy_j.values)
    infer = min(fr.energy_per_clip_j.values) / max(kp.energy_per_clip_j.values)
    return train, infer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1200)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--landmarker", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    torch.set_num_threads(1)
    study = study_keypoints(
        clips=args.clips,
        frames=args.frames,
        size=args.size,
        target_accuracy=args.target,
        max_epochs=args.max_epochs,
        landmarker=args.landmarker,
        device="cpu",
        method=StudyMethod.of(repeats=args.repeats),
        context=LeverContext(store=False, scope=Scope.PROCESS),
    )
    print(f"keypoint study on {study.dataset}: target {args.target:g}, {args.repeats} repeats")
    print(f"  machine: {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print("  one PyTorch thread, process scope, cpu, one clip per inference call")
    print(
        f"{'pipeline':<11}{'model':<16}{'params':>8}{'at tgt':>8}{'epochs':>8}{'val acc':>9}"
        f"{'train J':>10}{'IQR':>8}{'mJ/clip':>10}{'IQR':>8}{'inf acc':>9}"
    )
    for p in (study.keypoints, study.frames):
        e, c = p.runs.energy_j, p.energy_per_clip_j
        epochs = sorted(t.epochs for t in p.runs.trials)
        print(
            f"{p.label:<11}{p.model:<16}{p.params:>8}{p.reached_target:>5}/{len(p.runs.trials):<2}"
            f"{epochs[len(epochs) // 2]:>8}{p.runs.val_accuracy.median:>9.4f}"
            f"{e.median:>10.3f}{e.iqr:>8.3f}{c.median * 1e3:>10.4f}{c.iqr * 1e3:>8.4f}"
            f"{p.inference_accuracy:>9.4f}"
        )
    worst_train, worst_infer = _worst_ratios(study)
    print(f"  energy source: {study.keypoints.runs.energy_source}")
    print(
        f"  RATIO frames/keypoints, training: median {study.training_ratio:.3g}x, "
        f"worst {worst_train:.3g}x"
    )
    print(
        f"  RATIO frames/keypoints, inference per clip: median {study.inference_ratio:.3g}x, "
        f"worst {worst_infer:.3g}x (without extraction)"
    )
    if study.inference_ratio_with_extraction is not None:
        print(f"  with extraction: {study.inference_ratio_with_extraction:.3g}x")
    print(f"  equal accuracy (every run at the target): {study.equal_accuracy}")
    print(f"  {study.extraction_note}")
    for note in study.notes:
        print(f"  note: {note}")
    if args.json is not None:
        args.json.write_text(json.dumps(study.to_dict(), indent=2))


if __name__ == "__main__":
    main()
