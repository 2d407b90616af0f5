"""Figures from plain arrays: what is drawn, and that PNG and SVG files are written."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from eosfast import plot  # noqa: E402


def _lines(ax):
    return [(line.get_xdata(), line.get_ydata(), line.get_linestyle()) for line in ax.lines]


def test_loss_and_sharpness_draws_threshold_and_log_loss(tmp_path):
    steps = np.arange(100)
    loss = np.exp(-steps / 30.0)
    loss[5] = 0.0  # a zero loss is a gap on the log axis, not an error
    s_steps = steps[::10]
    eig = np.column_stack([np.linspace(1, 4, 10), np.linspace(0.5, 1, 10)])
    fig = plot.loss_and_sharpness(steps, loss, s_steps, eig, threshold=4.0, title="t")
    top, bottom = fig.axes
    assert top.get_yscale() == "log"
    assert np.isnan(top.lines[0].get_ydata()[5])
    lines = _lines(bottom)
    np.testing.assert_allclose(lines[0][1], eig[:, 0])
    np.testing.assert_allclose(lines[1][1], eig[:, 1])
    dashed = [y for _, y, style in lines if style == "--"]
    assert len(dashed) == 1 and np.allclose(dashed[0], 4.0)
    paths = plot.save_figure(fig, tmp_path / "figs" / "loss")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in paths[1].read_text()


def test_loss_only_and_varying_threshold():
    fig = plot.loss_and_sharpness(np.arange(5), np.ones(5))
    assert len(fig.axes) == 1
    thr = np.array([2.0, 3.0, 4.0])
    fig = plot.loss_and_sharpness(np.arange(5), np.ones(5), [0, 2, 4], [1.0, 2.0, 3.0], thr)
    dashed = [(x, y) for x, y, style in _lines(fig.axes[1]) if style == "--"]
    np.testing.assert_allclose(dashed[0][1], thr)


def test_multi_lr_panel_has_one_threshold_per_lr():
    runs = [
        {
            "lr": lr,
            "steps": np.arange(50),
            "loss": np.linspace(1, 0.1, 50),
            "sharpness_steps": np.arange(0, 50, 5),
            "sharpness": np.linspace(1, 2 / lr, 10),
        }
        for lr in (0.1, 0.2, 0.4)
    ]
    fig = plot.multi_lr(runs)
    top, bottom = fig.axes
    assert [t.get_text() for t in top.get_legend().get_texts()] == [
        "lr = 0.1",
        "lr = 0.2",
        "lr = 0.4",
    ]
    thresholds = sorted(y[0] for _, y, style in _lines(bottom) if style == "--")
    np.testing.assert_allclose(thresholds, [5.0, 10.0, 20.0])


def test_indicator_plots_show_their_targets():
    steps = np.arange(0, 100, 10)
    fig = plot.ngd_indicators(
        steps, np.full(10, 1.02), np.full(10, 0.3), np.full(10, 0.29), lr=0.01
    )
    first, second = fig.axes
    assert any(style == "--" and np.allclose(y, 1.0) for _, y, style in _lines(first))
    np.testing.assert_allclose(_lines(second)[1][1], 0.29)
    assert "lr = 0.01" in first.get_title()
    fig = plot.sqrt_indicators(steps, np.full(10, 0.3), np.full(10, 0.31), np.full(10, 50.0))
    assert len(fig.axes) == 2
    assert any(style == "--" and np.allclose(y, 2.0) for _, y, style in _lines(fig.axes[1]))
    assert [ax.get_xlabel() for ax in fig.axes] == ["", "step"]
    for fig in (plot.sqrt_indicators(steps, np.ones(10), np.ones(10)), first.figure):
        assert fig.axes[-1].get_xlabel() == "step"


def test_spectral_density_overlays_and_markers():
    grid = np.linspace(-1, 5, 200)
    dens = np.exp(-(grid**2))
    fig = plot.spectral_density(
        [grid, grid],
        [dens, 2 * dens],
        eigenvalues=[4.0, 4.5],
        threshold=4.2,
        label=["start", "end"],
    )
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    vertical = [x[0] for x, _, _ in _lines(ax)[2:]]
    np.testing.assert_allclose(vertical, [4.0, 4.5, 4.2])


def test_flow_tracking_draws_both_sharpnesses_and_the_distance(tmp_path):
    tau = np.linspace(0, 1, 6)
    projected, predicted = 3 - tau, 3 - 1.01 * tau
    distance = np.array([0.0, 1e-3, 2e-3, 3e-3, 4e-3, 5e-3])
    fig = plot.flow_tracking(tau, projected, predicted, distance, np.ones(6))
    top, middle, bottom = fig.axes
    np.testing.assert_allclose(top.lines[0].get_ydata(), predicted)
    np.testing.assert_allclose(top.lines[1].get_ydata(), projected)
    assert middle.get_yscale() == "log" and np.isnan(middle.lines[0].get_ydata()[0])
    np.testing.assert_allclose(bottom.lines[0].get_ydata(), 1.0)
    assert len(plot.flow_tracking(tau, projected, predicted, distance).axes) == 2
    paths = plot.save_figure(fig, tmp_path / "flow")
    assert paths[0].stat().st_size > 0
