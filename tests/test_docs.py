"""The docs follow the code: the command table of docs/usage.md is the one the argparse
definitions generate, and every option the docs name exists."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from heatmaploc.cli import build_parser
from heatmaploc.cli.reference import BEGIN, END, command_table, replace_table, usage

ROOT = Path(__file__).resolve().parents[1]
USAGE = ROOT / "docs" / "usage.md"


def test_the_command_table_of_the_docs_is_the_generated_one():
    text = USAGE.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert replace_table(text) == text, "docs/usage.md's command table drifted: run python tools/command_table.py"


def test_the_table_names_every_command_and_every_option():
    table = command_table()
    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    for name, sub in commands.items():
        row = next(line for line in table.splitlines() if line.startswith(f"| `heatmaploc {name} "))
        for action in sub._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in row, (name, flag)
    assert usage(commands["export"]) == "heatmaploc export [--opset OPSET] [--half] CHECKPOINT OUT.onnx"


def test_every_option_a_documented_command_uses_exists():
    """In README.md, docs/usage.md and docs/training.md, each ``heatmaploc COMMAND ...``
    (to the end of its code span or line) uses only options of that command."""
    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    common = {flag for a in parser._actions for flag in a.option_strings}
    checked = 0
    for doc in (USAGE, ROOT / "README.md", ROOT / "docs" / "training.md"):
        for match in re.finditer(r"heatmaploc ([a-z][a-z-]*)([^`\n]*)", doc.read_text()):
            name, rest = match.groups()
            if name not in commands:
                continue
            options = {flag for a in commands[name]._actions for flag in a.option_strings} | common
            used = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest.split(" heatmaploc ")[0]))
            assert used <= options, (doc.name, match.group(0), sorted(used - options))
            checked += 1
    assert checked > 30


def test_the_tool_checks_and_writes_the_table(tmp_path):
    check = subprocess.run([sys.executable, str(ROOT / "tools" / "command_table.py"), "--check"], capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0 and "is current" in check.stdout
