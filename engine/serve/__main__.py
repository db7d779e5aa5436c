"""`python -m engine.serve LIBRARY`: the resident engine of the library in folder LIBRARY, as a client starts it
(detached, its stderr in its log); `glimpse serve` runs the same engine in the foreground."""

import sys

from engine.serve.server import main

sys.exit(main(sys.argv[1:]))
