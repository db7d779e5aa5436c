"""Reading the words written in photos and video frames (OCR), in crash- and hang-contained worker processes.

`ReadPool` is what indexing uses: it reads photo files (decoding them itself) or pixels, a few at a time, in
low-priority worker processes. `TextReader` is the reader those workers hold. `frames_to_read` picks the frames
of a video worth reading from their Fast vectors.

Never load onnxruntime (TextReader) in a process that has already imported usearch (the vector index, hence
`engine.library`): see engine/reading/pool.py. The pool's workers are started so that this cannot happen.
"""

from engine.reading.frames import frames_to_read
from engine.reading.ocr import ReadSettings, TextLine, TextReader
from engine.reading.pool import ReadPool, ReadResult

__all__ = ["ReadPool", "ReadResult", "ReadSettings", "TextLine", "TextReader", "frames_to_read"]
