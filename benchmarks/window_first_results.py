"""The window, from launch to the first results of a typed query, with the library's resident engine already
running and with none running: issue 13's third figure.

.venv/bin/python benchmarks/window_first_results.py LIBRARY [--query TEXT] [--runs 3]

Each launch is a fresh process that starts the desktop app as `glimpse` does (desktop.app: QApplication,
`create_window`, which also starts the index service when the library has folders, then `show`), types the
query into the search field once the window is shown (QTest's key clicks, then Return: the window's own
`returnPressed` path) and quits when the window emits `searched` (the signal it sends after it has shown a
search's results). The time is from the parent's spawning the process to that signal, so it holds Python's
start, the imports, the window's construction and the search through the engine (started by the window if none
is running). `QT_QPA_PLATFORM=offscreen`. Nothing in desktop/ is changed for it.

"Engine running": one `glimpse search` first starts the library's engine and loads its models, then the window
is launched. "No engine": the engine is stopped first, so the window's search starts it. The two take turns.
The engine lives in a runtime folder of the benchmark's own (XDG_RUNTIME_DIR), as in `glimpse bench cli`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GLIMPSE = Path(sys.executable).with_name("glimpse")


def child(library: Path, query: str) -> int:
    t0 = float(os.environ["WINDOW_BENCH_T0"])
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from desktop import app as desktop_app

    qt = QApplication.instance() or QApplication(sys.argv[:1])
    window, _settings, _has_folders = desktop_app.create_window(library)
    window.show()
    shown = time.time() - t0

    def typed() -> None:
        QTest.keyClicks(window.search_field, query)
        QTest.keyClick(window.search_field, Qt.Key.Key_Return)

    def answered(response) -> None:
        results = 0 if response.error else len(response.results.all)
        print(
            json.dumps(
                {
                    "shown_s": round(shown, 3),
                    "results_s": round(time.time() - t0, 3),
                    "results": results,
                    "error": response.error or None,
                }
            ),
            flush=True,
        )
        window.close()
        QApplication.exit(0)

    window.searched.connect(answered)
    QTimer.singleShot(0, typed)
    return qt.exec()


def launch(library: Path, query: str, env: dict) -> dict:
    t0 = time.time()
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(library), "--query", query],
        env={**env, "WINDOW_BENCH_T0": repr(t0)},
        capture_output=True,
        timeout=600,
        check=False,
    )
    exited = time.time() - t0
    lines = [line for line in done.stdout.decode().splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"the window gave no results (rc {done.returncode}): {done.stderr.decode()[-2000:]}")
    figures = json.loads(lines[-1])
    figures["exited_s"] = round(exited, 3)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("library", type=Path)
    parser.add_argument("--query", default="a red square")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        return child(args.library, args.query)

    runtime = Path(tempfile.mkdtemp(prefix="glimpse-window-bench-"))
    os.chmod(runtime, 0o700)
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(runtime),
        "HF_HUB_OFFLINE": "1",
        "QT_QPA_PLATFORM": "offscreen",
    }
    env.pop("GLIMPSE_NO_DAEMON", None)
    os.environ.update(XDG_RUNTIME_DIR=str(runtime))
    from engine.serve.client import stop_engine

    runs: dict[str, list[dict]] = {"engine_running": [], "no_engine": []}
    try:
        for _ in range(args.runs):
            stop_engine(args.library)
            runs["no_engine"].append(launch(args.library, args.query, env))
            stop_engine(args.library)
            subprocess.run(
                [GLIMPSE, "search", "warm up", "--json", "--library", args.library],
                env=env,
                capture_output=True,
                check=True,
                timeout=600,
            )
            runs["engine_running"].append(launch(args.library, args.query, env))
    finally:
        stop_engine(args.library)
    out: dict = {"library": str(args.library), "query": args.query, "runs": args.runs}
    for name, figures in runs.items():
        results = [f["results_s"] for f in figures]
        out[f"{name}_results_s_median"] = round(statistics.median(results), 3)
        out[f"{name}_results_s_min_max"] = [min(results), max(results)]
        out[f"{name}_shown_s_median"] = round(statistics.median(f["shown_s"] for f in figures), 3)
    out["per_run"] = runs
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
