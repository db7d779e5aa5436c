"""The frozen app's entry point: the `glimpse` command, and `-m MODULE` for the processes Glimpse starts itself.

A source install starts its index service as `python -m engine.jobs`; frozen, `sys.executable` is this program,
so the same command line arrives here and runs the same module.
"""

import multiprocessing
import runpy
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the decoding workers are spawned processes of this program
    if len(sys.argv) > 2 and sys.argv[1] == "-m":
        module, sys.argv = sys.argv[2], [sys.argv[0], *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        from engine.cli import main

        main()
