"""Settings → Tune to my library…: the button says why it cannot be used, the dialog says what it costs, and a
tuning started from the window shows its progress and one sentence with the result, then undoes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from desktop.settings import AppSettings
from desktop.settings_dialog import SettingsDialog
from desktop.tune_dialog import TuneDialog
from engine import Library
from engine.training.synth import write_synthetic_set
from engine.tuning import DEFAULT_MINUTES


def test_a_library_whose_model_cannot_be_tuned_says_why(qtbot, indexed) -> None:
    library, _ = indexed
    with Library.open(library) as opened:
        status = opened.status()
    dialog = SettingsDialog(AppSettings(library), status=status, detected="CPU")
    qtbot.addWidget(dialog)
    assert dialog.tune.isEnabled() and dialog.undo_tune.isHidden()  # tiny-test pairs with tiny-test-slow

    # A model with no Fast/Slow pair (every Fast preset has one now): the engine's sentence, as the tooltip.
    unpaired = dataclasses.replace(status, model="tiny-test-slow")
    dialog = SettingsDialog(AppSettings(library), status=unpaired, detected="CPU")
    qtbot.addWidget(dialog)
    assert not dialog.tune.isEnabled()
    assert (
        dialog.tune.toolTip() == "Model tiny-test-slow is a Slow scorer, not a Fast encoder: it has no pair."
    )


def test_a_library_not_indexed_yet_cannot_be_tuned(qtbot, tmp_path) -> None:
    dialog = SettingsDialog(AppSettings(tmp_path), status=None, detected="CPU")
    qtbot.addWidget(dialog)
    assert not dialog.tune.isEnabled() and "Index some photos first" in dialog.tune.toolTip()


@pytest.fixture
def shapes_library(tmp_path: Path) -> Path:
    """40 synthetic shape scenes indexed with the shipped `shapes` model: tunable offline."""
    write_synthetic_set(tmp_path / "synth", images=40, seed=11)
    with Library.open(tmp_path / "library", writable=True) as library:
        library.index([tmp_path / "synth" / "images"], model="shapes", read_text=False)
    return tmp_path / "library"


@pytest.mark.slow
def test_tuning_from_settings_shows_progress_and_the_result_then_undoes(
    qtbot, make_window, shapes_library
) -> None:
    window = make_window(shapes_library, model="shapes", start=True, read_text=False)
    qtbot.waitUntil(lambda: window.indexing.state == "watching", timeout=90_000)
    qtbot.waitUntil(
        lambda: window.status_info is not None and window.status_info.images == 40, timeout=60_000
    )
    settings = SettingsDialog(
        window.settings,
        window,
        status=window.status_info,
        on_tune=window.indexing.tune,
        on_undo_tune=window.indexing.undo_tune,
        detected="CPU",
    )
    assert settings.tune.isEnabled() and settings.undo_tune.isHidden()

    tune = settings.open_tune()
    assert isinstance(tune, TuneDialog)
    assert tune.minutes.value() == DEFAULT_MINUTES
    assert "40 photos and videos" in tune.cost.text() and "re-embeds" in tune.cost.text()
    tune.minutes.setValue(0.2)
    states: list[str] = []
    window.indexing.state_changed.connect(states.append)
    with qtbot.waitSignal(window.indexing.tuned, timeout=180_000) as finished:
        tune.start.click()
    event = finished.args[0]
    assert "tuning" in states
    assert not settings.tune.isEnabled()  # started: not twice
    message = window.statusBar().currentMessage()
    if event.tuned:
        assert message.startswith("Tuned to your library: finding the right picture first went from")
        assert event.model.startswith("shapes@") and window.settings.model == event.model
    else:
        assert "so the current model is kept" in message

    if not event.tuned:
        return
    qtbot.waitUntil(lambda: window.status_info is not None and window.status_info.tuned, timeout=30_000)
    again = SettingsDialog(
        window.settings,
        window,
        status=window.status_info,
        on_undo_tune=window.indexing.undo_tune,
        detected="CPU",
    )
    assert not again.undo_tune.isHidden()
    with qtbot.waitSignal(window.indexing.tuned, timeout=120_000) as undone:
        again.undo_tune.click()
    assert undone.args[0].undone and undone.args[0].model == "shapes"
    assert window.statusBar().currentMessage() == "Tuning undone: the library searches with shapes again."
    assert window.settings.model == "shapes"
