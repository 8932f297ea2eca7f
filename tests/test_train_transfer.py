"""Transfer learning that saves: new head rows start neutral, the fine-tuning rates.

Real models and real training on the bundled digits (a few epochs, replayed meters); the
saving itself is measured by ``benchmarks/bench_train_transfer.py``, not asserted here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from wattwise._errors import ConfigError  # noqa: E402
from wattwise.meters._base import Component, ComponentKind, Method, Source  # noqa: E402
from wattwise.meters._replay import ReplayMeter, TraceInterval  # noqa: E402
from wattwise.protocol import LeverContext  # noqa: E402
from wattwise.train import (  # noqa: E402
    HEAD_LR_FACTOR,
    extend_head,
    fine_tune_lr_groups,
    fit,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from wattwise.workloads import build_model, load_dataset  # noqa: E402

CPU = Component("cpu", ComponentKind.CPU, Source(Method.ESTIMATED, "test"), 0.1)


def _context() -> LeverContext:
    def meters() -> list[ReplayMeter]:
        return [ReplayMeter([CPU], [TraceInterval("cpu", 0.0, 36000.0, 10.0 * 36000.0)])]

    return LeverContext.of(meters=meters, store=False)  # type: ignore[arg-type]


@pytest.mark.slow
def test_new_rows_start_neutral_and_leave_every_learned_prediction_as_it_was() -> None:
    """A trained 0-7 model extended to 0-9 predicts what it predicted before on every
    validation image: the new rows score the mean learned bias, whatever the input, so a
    new class takes no prediction from a learned one until it is trained."""
    first8 = load_dataset("digits", classes=tuple(range(8)))
    full = load_dataset("digits")
    torch.manual_seed(0)
    model = build_model("cnn", input_shape=first8.input_shape, num_classes=8)
    fit(model, first8, epochs=2, device="cpu", context=_context())
    x = full.val.tensors[0]  # type: ignore[attr-defined]
    model.eval()
    with torch.no_grad():
        before = model(x)
    bias = model.head.bias.detach().clone()  # type: ignore[union-attr]
    added = extend_head(model, first8.class_names, full.class_names)
    assert added == ["8", "9"]
    with torch.no_grad():
        after = model(x)
    assert torch.equal(after[:, :8], before)
    assert torch.allclose(after[:, 8:], bias.mean().expand(len(x), 2))
    # Every image whose best learned score beats the mean bias keeps its prediction.
    clear = before.max(dim=1).values > bias.mean()
    assert clear.float().mean() > 0.9
    assert torch.equal(after.argmax(1)[clear], before.argmax(1)[clear])


def test_random_new_rows_are_still_available_and_an_unknown_init_is_refused() -> None:
    model = build_model("mlp:depth=1,width=8", input_shape=(1, 2, 2), num_classes=2)
    extend_head(model, ("a", "b"), ("a", "b", "c"), init="random")
    assert model.head.weight[2].abs().sum() > 0  # type: ignore[union-attr]
    neutral = build_model("mlp:depth=1,width=8", input_shape=(1, 2, 2), num_classes=2)
    extend_head(neutral, ("a", "b"), ("a", "b", "c"))
    assert neutral.head.weight[2].abs().sum() == 0  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"unknown init 'imprint'.*neutral or random"):
        extend_head(neutral, ("a", "b", "c"), ("a", "b", "c", "d"), init="imprint")


def test_fine_tune_rates_give_the_head_ten_times_the_backbone_rate() -> None:
    model = build_model("cnn", input_shape=(1, 8, 8), num_classes=10)
    assert HEAD_LR_FACTOR == 10.0
    assert fine_tune_lr_groups(model, 1e-3) == {"head.*": pytest.approx(1e-2)}
    assert fine_tune_lr_groups(model, 1e-3, head_factor=2.0) == {"head.*": pytest.approx(2e-3)}
    with pytest.raises(ConfigError, match="learning rates must be > 0"):
        fine_tune_lr_groups(model, 0.0)


def test_a_sequence_model_checkpoint_extends_to_new_classes(tmp_path: Path) -> None:
    """mnist1d's inputs are ``(C, L)``: its checkpoints load and extend like images'."""
    first8 = load_dataset("mnist1d:train=200,val=100", classes=tuple(range(8)))
    full = load_dataset("mnist1d:train=200,val=100")
    model = build_model("cnn1d", input_shape=first8.input_shape, num_classes=8)
    path = save_checkpoint(
        tmp_path / "m.pt",
        model,
        model_spec="cnn1d",
        class_names=first8.class_names,
        input_shape=first8.input_shape,
    )
    ckpt = load_checkpoint(path)
    assert ckpt.input_shape == (1, 40)
    wide = model_from_checkpoint(
        ckpt, class_names=full.class_names, input_shape=full.input_shape, extend=True
    )
    x = full.val.tensors[0][:4]  # type: ignore[attr-defined]
    model.eval()
    with torch.no_grad():
        assert torch.equal(wide.eval()(x)[:, :8], model(x))
