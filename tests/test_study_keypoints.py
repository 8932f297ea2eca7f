"""The keypoint study (the sAIn pattern): the study on tiny gestures, its record stored and
read back with its charts, and ``wattwise study keypoints`` end to end.

Runs are measured with a replayed constant 20 W trace (``replay:PATH``), so the energies
are positive and the test does not depend on this machine's sensors.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests._cli import one_error_line, wattwise

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")
torch.set_num_threads(1)  # see tests/test_train.py

from wattwise._errors import ConfigError  # noqa: E402
from wattwise._records import BarData, load_record  # noqa: E402
from wattwise._records.base import RecordError  # noqa: E402
from wattwise.protocol import LeverContext, meters_from_spec  # noqa: E402
from wattwise.store import RunStore  # noqa: E402
from wattwise.studies import KeypointStudy, StudyMethod, study_keypoints  # noqa: E402

#: A constant 20 W CPU for ten hours, as ``wattwise runs export --format csv`` writes it.
TRACE = (
    "component,kind,method,sensor,counted,t_start_s,t_end_s,energy_j\n"
    "cpu,cpu,estimated,cpu-model,true,0,36000,720000\n"
)
#: The tiniest gestures that still train: 40 clips of 6 frames, 2 classes, 12 px frames.
TINY = {"clips": 40, "frames": 6, "classes": 2, "size": 12, "max_epochs": 2}
TINY_ARGS = ["--clips", "40", "--frames", "6", "--classes", "2", "--size", "12"]
TINY_ARGS += ["--max-epochs", "2", "--repeats", "1", "--warmup-batches", "2", "--threads", "1"]


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(TRACE)
    return path


def test_bad_input_is_refused_before_any_work() -> None:
    context = LeverContext(store=False)
    with pytest.raises(ConfigError, match="target accuracy must be in"):
        study_keypoints(target_accuracy=0.0, context=context)
    with pytest.raises(ConfigError, match="no landmarker model file"):
        study_keypoints(landmarker="/no/such/hand_landmarker.task", context=context)


@pytest.mark.slow
def test_a_tiny_study_trains_both_pipelines_and_is_stored_and_read_back(
    tmp_path: Path, trace: Path
) -> None:
    url = str(tmp_path / "runs.sqlite")
    context = LeverContext(meters=meters_from_spec(f"replay:{trace}"), store=url)
    study = study_keypoints(
        **TINY,  # type: ignore[arg-type]
        target_accuracy=0.99,
        keypoint_model="lstm:hidden=8",
        frame_model="framecnn:width=4,temporal=8",
        method=StudyMethod.of(repeats=2, warmup_batches=2),
        context=context,
    )
    for p, view in ((study.keypoints, "view=keypoints"), (study.frames, "view=frames")):
        assert len(p.runs.trials) == 2 and p.dataset.endswith(view)
        assert all(0 < t.epochs <= 2 and t.energy_j > 0 for t in p.runs.trials)
        assert 0 <= p.reached_target <= 2 and p.params > 0
        assert len(p.inference.measurements) == 2 and p.energy_per_clip_j.median > 0
        assert p.inference.measurements[0].items_per_call == 1  # one clip per call
        assert 0.0 <= p.inference_accuracy <= 1.0
    assert study.training_ratio == pytest.approx(
        study.frames.runs.energy_j.median / study.keypoints.runs.energy_j.median
    )
    assert study.inference_ratio is not None and study.inference_ratio > 0
    # Without a landmarker the record says so plainly, and has no ratio with extraction.
    assert study.extraction is None and study.inference_ratio_with_extraction is None
    assert study.extraction_note.startswith("keypoint extraction not included")
    if not study.equal_accuracy:
        assert any("not at equal accuracy" in n for n in study.notes)

    d = study.to_dict()
    assert d["kind"] == "keypoints" and d["training_ratio"] == study.training_ratio
    assert KeypointStudy.from_dict(json.loads(json.dumps(d))) == study
    train_chart, infer_chart = study.charts()
    assert isinstance(train_chart, BarData) and isinstance(infer_chart, BarData)
    assert train_chart.values == (
        study.keypoints.runs.energy_j.median,
        study.frames.runs.energy_j.median,
    )
    assert "not included" in infer_chart.caption

    with RunStore.open(url) as store:
        stored = store.get_study(study.study_id)
    assert stored.kind == "keypoints" and stored.results is not None
    assert load_record(stored.results) == study
    assert len(stored.runs) == 2 * 2 + 1  # the training runs and the inference run
    with pytest.raises(RecordError, match="expected a 'keypoints' record"):
        KeypointStudy.from_dict({**d, "kind": "layers"})


@pytest.mark.slow
def test_the_command_runs_end_to_end_and_its_report_draws_it(
    child_env: dict[str, str], tmp_path: Path, trace: Path
) -> None:
    store = str(tmp_path / "cli.sqlite")
    common = [*TINY_ARGS, "--meters", f"replay:{trace}", "--store", store]
    proc = wattwise(child_env, "study", "keypoints", *common, "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["kind"] == "keypoints" and d["stored"] is True
    assert d["extraction"] is None and d["inference_ratio_with_extraction"] is None
    assert d["extraction_note"].startswith("keypoint extraction not included")
    assert d["keypoints"]["model"] == "lstm:hidden=32" and d["frames"]["model"] == "framecnn"
    assert d["training_ratio"] > 0 and d["inference_ratio"] > 0

    text = wattwise(child_env, "study", "keypoints", *common, timeout=300)
    assert text.returncode == 0, text.stderr
    flat = " ".join(text.stdout.split())
    assert "keypoint extraction not included" in flat and "frames / keypoints energy" in flat

    out = tmp_path / "report.html"
    report = wattwise(
        child_env, "report", "--study", d["study_id"], "--store", store, "--out", str(out)
    )
    assert report.returncode == 0, report.stderr
    html = out.read_text()
    assert "Median training energy to the target accuracy" in html


def test_a_missing_landmarker_file_is_one_line_and_exit_2(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "hand_landmarker.task"
    proc = wattwise(
        child_env, "study", "keypoints", "--landmarker", str(missing), "--store", "none"
    )
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "no landmarker model file" in line and "hand_landmarker.task" in line


def test_a_landmarker_without_mediapipe_or_unreadable_is_one_line_and_exit_2(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    """MediaPipe is an optional extra that is not installed here: the command names the
    extra; where it is installed, the bogus model file is refused in one line."""
    bogus = tmp_path / "hand_landmarker.task"
    bogus.write_text("not a model")
    proc = wattwise(
        child_env, "study", "keypoints", "--landmarker", str(bogus), "--clips", "20",
        "--frames", "4", "--classes", "2", "--size", "8", "--store", "none",
    )  # fmt: skip
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "pip install 'wattwise[keypoints]'" in line or "cannot load the hand landmarker" in line
