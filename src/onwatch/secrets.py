"""Secret references in the configuration, and their values, looked up when a run starts.

A reference says where a value lives, never the value: ``env:NAME`` (onwatch's own
environment), ``file:PATH`` (relative to the config file's folder; one final newline is
dropped) or ``cmd:COMMAND`` (its standard output; run without a shell, for a vault CLI).
Values reach the tests through their environment only, and ``onwatch.masking`` hides them in
everything a run leaves behind.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from onwatch.errors import SecretError
from onwatch.masking import MIN_LENGTH, Masker

KINDS = ("env", "file", "cmd")
# ``${NAME}`` in a channel URL or header, a watch's index or the database URL: the value of the
# [onwatch] secret NAME, filled in when it is used.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
COMMAND_TIMEOUT = 30.0


def placeholders(text: str) -> list[str]:
    """Return the secret names ``text`` refers to as ``${NAME}``, each once, in order."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def fill(text: str, values: Mapping[str, str]) -> str:
    """Return ``text`` with each ``${NAME}`` of ``values`` replaced by its value."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def reference_problem(reference: str) -> str | None:
    """Return why ``reference`` is not a usable reference, or None."""
    kind, _, target = reference.partition(":")
    if kind not in KINDS or not target.strip():
        # Not even a few characters of it: it may be the secret itself.
        return (
            "is not a secret reference: write env:VARIABLE, file:PATH or cmd:COMMAND, never "
            "the secret itself"
        )
    if kind == "cmd":
        try:
            shlex.split(target)
        except ValueError as exc:
            return f"cmd: cannot be split into arguments ({exc}); check its quotes"
    return None


def resolve(
    references: Mapping[str, str],
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return each secret's value; raise ``SecretError`` naming every one that fails."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    problems: list[str] = []
    for name, reference in references.items():
        try:
            value = _look_up(reference, base_dir, environ)
        except SecretError as exc:
            problems += [f"secret {name}: {problem}" for problem in exc.problems]
            continue
        if len(value) < MIN_LENGTH:
            problems.append(
                f"secret {name} has {len(value)} characters; onwatch only takes secrets of "
                f"{MIN_LENGTH} or more, since masking a shorter one would hide ordinary text"
            )
            continue
        values[name] = value
    if problems:
        raise SecretError(problems)
    return values


def _look_up(reference: str, base_dir: Path, environ: Mapping[str, str]) -> str:
    kind, _, target = reference.partition(":")
    if kind == "env":
        if target not in environ:
            raise SecretError([f"environment variable {target} is not set for onwatch"])
        return environ[target]
    if kind == "file":
        path = base_dir / target
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc.__class__.__name__
            raise SecretError([f"cannot read {path}: {reason}"]) from None
        return text.removesuffix("\n").removesuffix("\r")
    if kind == "cmd":
        return _run(target, base_dir)
    raise SecretError([reference_problem(reference) or "unknown reference"])


def _run(command: str, base_dir: Path) -> str:
    argv = shlex.split(command)
    program = argv[0] if argv else command
    try:
        done = subprocess.run(
            argv,
            cwd=base_dir,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise SecretError([f"{program}: command not found"]) from None
    except subprocess.TimeoutExpired:
        raise SecretError([f"{program} gave no answer within {COMMAND_TIMEOUT:g} s"]) from None
    except OSError as exc:
        raise SecretError([f"{program}: {exc.strerror or exc}"]) from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = f": {said[-1][:200]}" if said else ""
        raise SecretError([f"{program} exited with status {done.returncode}{reason}"])
    try:
        return done.stdout.decode("utf-8").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError:
        raise SecretError([f"{program} printed something that is not UTF-8 text"]) from None


class Keeper:
    """The secrets this process has looked up, and one masker that hides every one of them.

    Each run looks its check's secrets up again (a rotated secret is picked up), and the keeper
    remembers every value it has seen, so that logs, alerts and late output of a run still
    mask a value that has just been rotated away.
    """

    def __init__(self, base_dir: Path, environ: Mapping[str, str] | None = None) -> None:
        import threading

        self.base_dir = base_dir
        self.environ = environ
        self._masker = Masker()
        self._lock = threading.Lock()

    @property
    def masker(self) -> Masker:
        """Return the masker of every secret value seen so far."""
        return self._masker

    def resolve(self, references: Mapping[str, str]) -> dict[str, str]:
        """Look ``references`` up (raising ``SecretError``) and remember their values."""
        values = resolve(references, self.base_dir, self.environ)
        self.learn(values)
        return values

    def resolver(self, references: Mapping[str, str]) -> Callable[[list[str]], dict[str, str]]:
        """Return a function that looks up the named secrets among ``references``."""

        def look_up(names: list[str]) -> dict[str, str]:
            return self.resolve({name: references[name] for name in names})

        return look_up

    def learn(self, values: Mapping[str, str]) -> Masker:
        """Remember ``values``; return the masker that now hides them all."""
        with self._lock:
            self._masker = self._masker.merged(values)
            return self._masker

    def preload(self, references: Iterable[tuple[str, str]]) -> list[str]:
        """Look up every reference it can, so logs mask them from the start; return problems."""
        problems: list[str] = []
        for name, reference in references:
            try:
                self.resolve({name: reference})
            except SecretError as exc:
                problems += exc.problems
        return problems

    def mask(self, text: str) -> str:
        """Return ``text`` with every known secret masked."""
        return self._masker.mask(text)

    def mask_value(self, value: object) -> object:
        """Return ``value`` with every string inside it masked."""
        return self._masker.mask_value(value)
