"""One writer at a time; the second gets one sentence naming the holder."""

import pytest

from engine.errors import LibraryLocked
from engine.lock import WriterLock


def test_second_writer_is_refused_with_the_holder_named(tmp_path):
    first = WriterLock(tmp_path)
    first.acquire()
    with pytest.raises(LibraryLocked) as refused:
        WriterLock(tmp_path).acquire()
    message = str(refused.value)
    assert "pid" in message and "\n" not in message
    first.release()
    with WriterLock(tmp_path):
        pass
