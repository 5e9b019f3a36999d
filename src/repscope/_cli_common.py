"""What every repscope command shares: one-line errors, JSON output, common options.

Bad input (a bad file, a bad option value, anything the library rejects with an
``InputError``) prints one line ``error: <problem and fix>`` on stderr and exits with status 2,
without a traceback.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

try:  # recent typer vendors click privately; its usage errors derive from these
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover - older typer runs on click itself
    from click.exceptions import ClickException, NoArgsIsHelpError

from repscope._validation import InputError

#: Exit status for bad input, as click uses for usage errors.
EXIT_BAD_INPUT = 2


class _OneLineErrorGroup(TyperGroup):
    """Reports click usage errors (bad option value, missing FILE) as one ``error:`` line."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:
            if exc.format_message():  # rich help has already been printed, plain help not
                typer.echo(exc.format_message(), err=True)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            message = exc.format_message().rstrip()
            if exc.ctx is not None:
                message += ("" if message.endswith(".") else ".") + (
                    f" Run '{exc.ctx.command_path} --help' for usage."
                )
            _error_line(message)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        # without standalone mode, click returns an explicit Exit's code instead of exiting
        sys.exit(rv if isinstance(rv, int) else 0)


def _error_line(message: str) -> None:
    typer.echo("error: " + " ".join(message.split()), err=True)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn bad input into one stderr line and exit 2; library warnings into one line each."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    except (ValueError, OSError) as exc:  # InputError is a ValueError
        _error_line(str(exc) or type(exc).__name__)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    for message in dict.fromkeys(" ".join(str(w.message).split()) for w in caught):
        typer.echo("warning: " + message, err=True)  # each distinct warning once


def _parse_choice(option: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        from repscope.io._model_spec import near_matches

        raise InputError(
            f"{option} {value!r} is not known{near_matches(value, list(choices))}; "
            f"pass one of {', '.join(choices)}."
        )
    return value


def _parse_k(text: str | None, option: str = "--k") -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise InputError(
            f"{option} {text!r} is not a comma-separated list of whole numbers; "
            f"pass e.g. {option} 5,10,20,50."
        )
    return tuple(int(p) for p in parts)


def _parse_pca(text: str) -> int | None:
    if text.strip().lower() == "none":
        return None
    if not (text.strip().isascii() and text.strip().isdigit()) or int(text) < 1:
        raise InputError(
            f"--pca {text!r} is not a positive integer or 'none'; pass e.g. --pca 300."
        )
    return int(text)


def _jsonable(value: Any) -> Any:
    """Plain Python values for json: NumPy scalars unwrapped, non-finite floats as null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(_jsonable(obj), allow_nan=False))


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table.")
]
DeviceOpt = Annotated[str, typer.Option(help="Where the kNN search runs: auto, cpu or cuda.")]
