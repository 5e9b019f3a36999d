"""Running the CLI in tests and checking its contract for bad input (one line, exit 2)."""

from __future__ import annotations

import re

from typer.testing import CliRunner, Result

from repscope.cli import app

runner = CliRunner()


def invoke(*args: object) -> Result:
    """Run ``repscope ARGS...`` in-process; every argument is passed as its ``str``."""
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result: Result, match: str) -> None:
    """Exit 2, nothing on stdout, one ``error:`` line on stderr matching ``match``."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    assert re.search(match, lines[0]), lines[0]
