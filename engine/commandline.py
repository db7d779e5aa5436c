"""What every `glimpse` subcommand shares: one-line errors with the contract's exit codes, JSON output.

Exit codes: 0 success, 1 runtime failure (one clear line on stderr), 2 usage error. `--json` prints one JSON
document on stdout; progress and notices go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from engine.errors import GlimpseError, UsageError, explain


def handles_errors(command: Callable) -> Callable:
    """Turn the engine's errors into one line on stderr and an exit code."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UsageError as error:
            click.echo(f"glimpse: {error}", err=True)
            sys.exit(2)
        except GlimpseError as error:
            click.echo(f"glimpse: {error}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("glimpse: interrupted; everything indexed so far is kept.", err=True)
            sys.exit(130)
        except click.ClickException:
            raise  # click reports its own usage errors (exit 2)
        except Exception as error:
            # The last line of defence: a sentence on the terminal (the library logged the trace on closing).
            click.echo(f"glimpse: {explain(error)}", err=True)
            sys.exit(1)

    return wrapper


def emit(data: Any) -> None:
    """Print one JSON document on stdout."""
    # ensure_ascii keeps non-UTF-8 file names (surrogate escapes) valid JSON that round-trips to the bytes.
    click.echo(json.dumps(data, indent=2, ensure_ascii=True))
