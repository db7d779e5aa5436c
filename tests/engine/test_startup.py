"""Start-up: a command imports and builds only what it uses, and gets the same models and answers as before."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.models import openclip
from engine.models.openclip import OpenClipFastEncoder, defer_init
from engine.models.presets import parse_model_spec


def tiny_encoder() -> OpenClipFastEncoder:
    spec = parse_model_spec("tiny-test")
    built = openclip.build(spec, "cpu")
    return OpenClipFastEncoder(
        built.model, built.preprocess, built.tokenizer, key=spec.key, dim=32, device="cpu", precision="auto"
    )


def test_a_deferred_package_imports_its_submodules_alone_then_runs_its_init_when_a_name_is_wanted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "deferredpkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import deferredpkg.heavy\nfrom deferredpkg.light import LIGHT\nWHOLE = 1\n"
    )
    (package / "light.py").write_text("LIGHT = 'light'\n")
    (package / "heavy.py").write_text("HEAVY = 'heavy'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("deferredpkg", "deferredpkg.light", "deferredpkg.heavy"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    defer_init("deferredpkg")
    from deferredpkg.light import LIGHT

    assert LIGHT == "light" and "deferredpkg.heavy" not in sys.modules  # the __init__ has not run
    import deferredpkg

    assert deferredpkg.WHOLE == 1 and "deferredpkg.heavy" in sys.modules  # a name of its own: it ran, once
    assert deferredpkg.heavy.HEAVY == "heavy" and deferredpkg.LIGHT == "light"
    with pytest.raises(AttributeError):
        _ = deferredpkg.missing


@pytest.mark.slow
def test_the_models_import_open_clip_without_torchvisions_detection_models_or_timms_models() -> None:
    # A fresh interpreter: this test process may hold torchvision whole already.
    script = textwrap.dedent(
        """
        import sys
        import engine.models.openclip
        heavy = ["torch._dynamo", "torchvision.models.detection", "torchvision.ops.roi_align", "timm.models",
                 "torchvision.extension", "sympy"]
        print(*[name for name in heavy if name in sys.modules])
        # The deferred packages still work whole when a name of theirs is asked for.
        import timm
        import torchvision
        from torchvision.ops import nms
        whole = torchvision.get_image_backend() == "PIL" and callable(torchvision.models.resnet18)
        print(whole, callable(nms), callable(timm.create_model), "torchvision.models.detection" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    loaded, whole = done.stdout.splitlines()
    assert loaded == ""
    assert whole == "True True True True"


def test_an_encoder_that_embeds_only_texts_never_builds_its_int8_image_tower() -> None:
    fast = tiny_encoder()
    fast.embed_texts(["a dog on a beach"])
    assert fast._image_check is None and fast._image_int8 is None
    assert fast.key == "tiny-test+int8"  # the vector space's key asks for the decision
    assert fast._image_check is not None and fast._image_int8 is not None
