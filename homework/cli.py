"""What every command shares, light enough to load without torch: one `error:` line for a user's mistake,
comma-separated options, and train commands whose options are a recipe's config dataclass.

    python -m homework.sft train --help     # every option, its type, default and help, read from SFTConfig

A recipe's config dataclass is the one place its defaults live: `config_command` turns its fields (names,
types, defaults) and the `Args:` lines of its docstring (and its bases') into a Fire command, so no command
re-lists a field by hand.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import typing


class ModelUnavailable(RuntimeError):
    """The requested model cannot be loaded; the message says how to fix it."""


def run_cli(component, on_interrupt: str = "interrupted") -> None:
    """Fire entry point shared by the package's commands: a user's mistake is one `error:` line, not a traceback.

    ValueError covers DataError and UnitError; OSError covers unreadable or unwritable paths.
    """
    import fire

    mistake = argv_mistake(component, sys.argv[1:])
    if mistake:
        sys.exit(f"error: {mistake} (see --help)")
    try:
        fire.Fire(component)
    except (ModelUnavailable, ValueError, OSError) as err:
        sys.exit(f"error: {err}")
    except KeyboardInterrupt:
        print(f"\n{on_interrupt}", file=sys.stderr)
        sys.exit(130)


def argv_mistake(component, argv: list[str]) -> str | None:
    """The user's mistake on a command line, checked before Fire reads it (Fire answers one with its whole
    usage page): an unknown command, an option the command does not take, a missing argument or one too many.
    None when none is found; Fire then reads the line as usual (a wrong value is the command's own one-line
    error)."""
    if isinstance(component, dict):
        if not argv or argv[0] in ("--help", "-h"):
            return None
        if argv[0] not in component:
            return f"unknown command {argv[0]!r}; the commands are {', '.join(component)}"
        command, rest = component[argv[0]], argv[1:]
    else:
        command, rest = component, argv
    try:
        params = inspect.signature(command).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    named, positional, i = set(), 0, 0
    while i < len(rest) and rest[i] != "--":  # "--": Fire's separator, its own flags follow
        token = rest[i]
        if token == "--help":
            return None
        if token.startswith("--"):
            name = token[2:].split("=", 1)[0].replace("-", "_")
            if name not in params and not (name.startswith("no") and name[2:] in params):
                return f"unknown option --{name}; the options are " + (", ".join(f"--{p}" for p in params) or "none")
            named.add(name)
            boolean = name in params and isinstance(params[name].default, bool)
            if "=" not in token and name in params and (not boolean or (i + 1 < len(rest) and rest[i + 1].lower()
                                                                         in ("true", "false"))):
                i += 1  # the option's value ("--flag False" gives a flag one too)
        else:
            positional += 1
        i += 1
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params.values()):
        return None
    required = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in named]
    if len(required) > positional:
        return f"missing {', '.join(required[positional:])}"
    room = [n for n, p in params.items() if n not in named and p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                                          inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if positional > len(room):
        return f"{positional} arguments, but the command takes at most {len(room)} besides its options"
    return None


def comma_list(value) -> tuple[str, ...]:
    """A comma-separated CLI option as names; Fire hands `--models cot,rft` over as the tuple ('cot', 'rft')."""
    parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return tuple(str(p).strip() for p in parts if str(p).strip())


def field_help(config_cls) -> dict[str, str]:
    """Each field's help: the `name: text` lines under `Args:` in the docstrings of the class and its bases."""
    helps: dict[str, str] = {}
    for cls in reversed(config_cls.__mro__):
        doc = inspect.getdoc(cls) if "__doc__" in vars(cls) else None
        if not doc or "Args:" not in doc:
            continue
        name = None
        for line in doc.split("Args:", 1)[1].splitlines():
            found = re.match(r"\s{4}(\w+): (.*)", line)
            if found:
                name = found.group(1)
                helps[name] = found.group(2).strip()
            elif name and line.startswith(" " * 8):
                helps[name] += " " + line.strip()
            elif line.strip():
                name = None
    return helps


def _coerce(value, kind, name: str):
    """A Fire-parsed value as the field's type: `--epochs 1` is 1.0, `--dimensions time,mass` a tuple."""
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ValueError(f"--{name} must be True or False, not {value!r}")
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
            raise ValueError(f"--{name} must be {'a whole number' if kind is int else 'a number'}, not {value!r}")
        return kind(value)
    if typing.get_origin(kind) is tuple:
        return comma_list(value) if value not in ("", None) else ()
    return "" if value is None else str(value)


def config_command(config_cls, run, summary: str, extra: tuple[tuple[str, object, str], ...] = ()):
    """A command whose options are `config_cls`'s fields, then `extra` ones (name, default, help) that say how
    to run rather than what to train; it calls `run(config, **extra_options)`.

    The command's signature and `--help` come from the dataclass: a new field is a new option, with its default.
    """
    hints = typing.get_type_hints(config_cls)
    helps = field_help(config_cls)
    fields = dataclasses.fields(config_cls)
    missing = [f.name for f in fields if f.name not in helps]
    if missing:
        raise TypeError(f"{config_cls.__name__}: no Args line for {', '.join(missing)}")
    params = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name])
              for f in fields]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=type(default))
               for name, default, _ in extra]

    def command(**options):
        unknown = set(options) - {p.name for p in params}
        if unknown:
            raise ValueError(f"unknown option --{sorted(unknown)[0]}")
        run_options = {name: _coerce(options.pop(name, default), type(default), name) for name, default, _ in extra}
        values = {f.name: _coerce(options[f.name], hints[f.name], f.name) for f in fields if f.name in options}
        return run(config_cls(**values), **run_options)

    lines = [f"    {f.name}: {helps[f.name]}" for f in fields] + [f"    {name}: {text}" for name, _, text in extra]
    command.__signature__ = inspect.Signature(params)
    command.__doc__ = f"{summary}\n\nArgs:\n" + "\n".join(lines)
    command.__name__ = command.__qualname__ = "train"
    return command
