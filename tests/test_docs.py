"""The README's command list and `glimpse --help` agree: every command is listed, with the options it has."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from engine.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
#: Options every command takes, documented once in the prose under the list.
EVERYWHERE = {"--help", "--library"}


def readme_forms() -> dict[str, set[str]]:
    """Each command form of README's "The command line" block → the options written with it.

    A form is "glimpse NAME ..." (NAME may be "group sub1|sub2"); forms on one line are separated by three
    spaces or more before "glimpse", or by " / " for siblings ("add FOLDER... / remove FOLDER..."); an indented
    line that starts with an option goes on with the line above.
    """
    text = README.read_text(encoding="utf-8")
    block = re.search(r"## The command line\n+```\n(.*?)```", text, re.S)
    assert block, "README.md has no command block under '## The command line'"
    # An indented line goes on with the form above it.
    lines = re.sub(r"\n\s+(?=[\[-])", " ", block.group(1)).splitlines()
    forms: dict[str, set[str]] = {}
    for line in lines:
        for entry in re.split(r"\s{3,}(?=glimpse\b)", line.strip()):
            if not entry.startswith("glimpse"):
                continue
            entry = re.split(r"\s{2,}(?![-\[|])", entry)[0]  # drop a trailing description
            for form in entry.removeprefix("glimpse").split(" / "):
                words = form.split()
                if not words or words[0].startswith("["):
                    forms.setdefault("", set())
                    continue
                name = words[0]
                group = main.commands.get(name)
                if isinstance(group, click.Group) and len(words) > 1:
                    name = f"{name} {words[1]}"
                forms.setdefault(name, set()).update(re.findall(r"--[a-z][a-z-]*", form))
    return forms


def options_of(command: click.Command) -> set[str]:
    return {
        flag
        for param in command.params
        for flag in getattr(param, "opts", []) + getattr(param, "secondary_opts", [])
        if flag.startswith("--")
    }


def test_every_command_is_in_the_readme_and_nothing_else() -> None:
    forms = readme_forms()
    listed: set[str] = set()
    for name in forms:
        top, _, subs = name.partition(" ")
        listed.add(top)
        if subs:
            group = main.commands[top]
            assert isinstance(group, click.Group)
            assert set(subs.split("|")) == set(group.commands), (
                f"README's `glimpse {name}` vs `glimpse {top} --help`"
            )
    assert listed - {""} == set(main.commands), "README's command list vs `glimpse --help`"


@pytest.mark.parametrize("name", sorted(main.commands))
def test_the_readme_lists_each_commands_options_as_they_are(name: str) -> None:
    forms = readme_forms()
    [form] = [key for key in forms if key.partition(" ")[0] == name]
    written = forms[form]
    command = main.commands[name]
    if isinstance(command, click.Group):
        # A group's line shows its subcommands and their common options ("..." stands for the rest).
        subcommands = [command.commands[sub] for sub in form.partition(" ")[2].split("|")]
        known = set().union(*(options_of(sub) for sub in subcommands))
        assert written <= known, f"README's `glimpse {form}` names options it does not have"
        return
    assert written == options_of(command) - EVERYWHERE, f"README's `glimpse {name}` options vs its --help"
