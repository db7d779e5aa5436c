"""Settings that persist, the first run with no network, the folders dialog."""

from __future__ import annotations

import importlib
import socket

import huggingface_hub.constants
import pytest

from desktop.settings import AppSettings
from desktop.settings_dialog import SettingsDialog
from desktop.welcome import WelcomeDialog, offline_preset
from tests.desktop.conftest import FakePicker, search


def test_settings_persist_across_windows(make_window, tmp_path, qtbot) -> None:
    library = tmp_path / "library"
    window = make_window(library)
    dialog = SettingsDialog(window.settings, window, detected="CPU")
    qtbot.addWidget(dialog)
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.rerank.setChecked(False)
    dialog.rerank_k.setValue(35)
    dialog.interval.setValue(4.5)
    dialog.cache.setValue(256)
    dialog.accept()
    assert dialog.changed_indexing  # device and frame interval changed: indexing restarts with them

    again = AppSettings(library)  # what a later start of the app reads
    assert (again.model, again.device, again.rerank, again.rerank_k) == ("tiny-test", "cpu", False, 35)
    assert (again.frame_interval_s, again.thumbnail_cache_mb) == (4.5, 256)
    second = make_window(library, model=None)
    assert second._request("a dog").rerank == 0  # re-ranking off
    second.settings.rerank = True
    assert second._request("a dog").rerank == 35
    second.settings.rerank = False
    reopened = SettingsDialog(second.settings, second, detected="CPU")
    qtbot.addWidget(reopened)
    assert reopened.rerank_k.value() == 35 and not reopened.rerank.isChecked()
    assert reopened.interval.value() == 4.5


def test_rerank_setting_reaches_the_search(make_window, indexed, qtbot) -> None:
    window = make_window(indexed[0], rerank=False)
    response = search(qtbot, window, "a landscape")
    assert response.results.all and all(i.slow_score is None for i in response.results.all)
    window.settings.rerank, window.settings.rerank_k = True, 3
    response = search(qtbot, window, "a landscape")
    assert sum(i.slow_score is not None for i in response.results.all) == 3


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """The Hugging Face hub unreachable (a loopback port that refuses connections) and its cache empty."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        for name in ("HF_HUB_CACHE", "HF_HUB_OFFLINE"):
            monkeypatch.delenv(name, raising=False)
        importlib.reload(huggingface_hub.constants)
        yield
    monkeypatch.undo()
    importlib.reload(huggingface_hub.constants)


def test_first_run_with_no_network_picks_the_offline_model(make_window, tmp_path, qtbot, no_network) -> None:
    media = tmp_path / "media"
    media.mkdir()
    window = make_window(tmp_path / "library", model=None, picker=FakePicker(str(media)))
    dialog = window.first_run()
    qtbot.addWidget(dialog)
    dialog.add_folder()
    assert dialog.folders == [str(media)]
    assert dialog.model == "vit-b-32"  # the pretrained default is offered first, with its download size
    assert "605 MB" in dialog.download_button.text()
    assert not dialog.start_button.isEnabled()

    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog._thread is None, timeout=30_000)
    message = dialog.message.text()
    assert "cannot be reached" in message and "offline model" in message
    assert dialog.model == offline_preset()
    assert dialog.start_button.isEnabled()

    with qtbot.waitSignal(window.indexing.folders_changed, timeout=60_000) as added:
        dialog.start_button.click()
    assert window.settings.model == offline_preset() and window.settings.welcomed
    assert added.args[0] == [str(media)]
    assert AppSettings(tmp_path / "library").model == offline_preset()


def test_welcome_with_an_offline_model_starts_at_once(make_window, tmp_path, qtbot) -> None:
    window = make_window(tmp_path / "library", model=None)
    dialog = WelcomeDialog(window)
    qtbot.addWidget(dialog)
    dialog.buttons_by_preset[offline_preset()].setChecked(True)
    assert dialog.start_button.isEnabled() and dialog.download_button.isHidden()


def test_folders_dialog_adds_excludes_and_removes(make_window, tmp_path, qtbot) -> None:
    media = tmp_path / "media"
    (media / "private").mkdir(parents=True)
    picker = FakePicker(str(media), str(media / "private"))
    window = make_window(tmp_path / "library", picker=picker, start=True)
    qtbot.waitUntil(lambda: window.indexing.state == "idle", timeout=60_000)
    dialog = window.show_folders()
    dialog.add_button.click()
    qtbot.waitUntil(lambda: dialog.watched.count() == 1, timeout=30_000)
    dialog.watched.setCurrentRow(0)
    dialog.exclude_button.click()
    qtbot.waitUntil(lambda: dialog.excluded.count() == 1, timeout=30_000)
    assert dialog.excluded.item(0).text() == str(media / "private")
    assert window.folder_filter.findData(str(media)) > 0  # the folder filter offers it
    dialog.watched.setCurrentRow(0)
    dialog.remove_button.click()
    qtbot.waitUntil(lambda: dialog.watched.count() == 0, timeout=30_000)
    assert "No folders yet" in dialog.status.text()
