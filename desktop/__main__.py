"""`python -m desktop [LIBRARY]` starts the desktop app."""

import sys
from pathlib import Path

from desktop.app import main

sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
