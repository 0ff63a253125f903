"""Python functions as Realtime function tools, for the assistant's ``--tools module.py``.

This module owns the mapping from a plain Python function to a function tool of ``session.tools``
(reference 9.1, 6.4): the JSON Schema of its parameters from the type hints, the descriptions from a
Google-style docstring, loading every public function of a module file, and running one call from the
arguments string of ``response.function_call_arguments.done`` to the ``output`` string of a
``function_call_output`` item. A tool that raises, or arguments that do not fit the signature, become
an ``{"error": ...}`` output for the model rather than an exception in the client.

Supported hints: ``str``, ``int``, ``float``, ``bool``, ``None``, ``list[T]`` / ``Sequence[T]``,
``tuple[T, ...]`` and fixed tuples, ``dict[str, T]``, ``Literal[...]``, ``Enum`` subclasses,
``T | None`` / ``Optional[T]``, other unions (``anyOf``), ``Annotated[T, "description"]``, ``Any``.
"""

from __future__ import annotations

import asyncio
import collections.abc
import enum
import importlib.util
import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Examples?|Notes?|Attributes)\s*:\s*$"
)
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_SCALARS: Mapping[Any, dict[str, Any]] = {
    str: {"type": "string"},
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    type(None): {"type": "null"},
    dict: {"type": "object"},
    list: {"type": "array"},
}
_SEQUENCES = (list, set, frozenset, collections.abc.Sequence, collections.abc.Set, collections.abc.Iterable)
_MAPPINGS = (dict, collections.abc.Mapping)


class ToolDefinitionError(TypeError):
    """A function cannot be described as a tool (e.g. a parameter hint with no JSON Schema)."""


@dataclass(frozen=True)
class Tool:
    """One function tool.

    Attributes:
        name: The function's name, as the model calls it.
        description: The docstring's summary (its text before the first section).
        parameters: JSON Schema of the arguments object.
        function: The Python callable (sync or ``async``).
    """

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]

    def definition(self) -> dict[str, Any]:
        """The entry of ``session.tools``."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """A Google-style docstring's description and its ``Args:`` entries.

    Args:
        doc: The raw docstring (``None`` gives an empty description).

    Returns:
        The text before the first section, and a description per argument name (continuation lines
        joined with spaces).
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    arg_indent: int | None = None
    for line in lines:
        header = _SECTION.match(line.strip()) if not line.startswith(" ") else None
        if header:
            section, current, arg_indent = header.group(1), None, None
            continue
        if section is None:
            summary.append(line)
            continue
        if section not in ("Args", "Arguments", "Parameters", "Params") or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        match = _ARG_LINE.match(line.strip())
        if match and (arg_indent is None or indent <= arg_indent):
            arg_indent = indent
            current = match.group(1).lstrip("*")
            args[current] = match.group(3).strip()
        elif current is not None:
            args[current] = f"{args[current]} {line.strip()}".strip()
    description = " ".join(" ".join(summary).split())
    return description, args


def _is_optional(hint: Any) -> tuple[bool, Any]:
    """Whether ``hint`` admits ``None``, and the hint without it."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(members) < len(typing.get_args(hint)):
            rest: Any = members[0] if len(members) == 1 else typing.Union[tuple(members)]  # noqa: UP007
            return True, rest
    return False, hint


def schema_for(hint: Any) -> dict[str, Any]:
    """The JSON Schema of values of the Python type ``hint``.

    Raises:
        ToolDefinitionError: For a hint with no JSON equivalent (e.g. a class that is not an enum).
    """
    if hint is Any or hint is inspect.Parameter.empty:
        return {}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        schema = schema_for(args[0])
        notes = [a for a in args[1:] if isinstance(a, str)]
        return {**schema, "description": " ".join(notes)} if notes else schema
    if origin is typing.Literal:
        values = list(args)
        kinds = {type(v) for v in values}
        schema = {"enum": values}
        if len(kinds) == 1 and (kind := kinds.pop()) in _SCALARS:
            return {**_SCALARS[kind], **schema}
        return schema
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [schema_for(a) for a in args]}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = [member.value for member in hint]
        kinds = {type(v) for v in values}
        schema = {"enum": values}
        if len(kinds) == 1 and (kind := kinds.pop()) in _SCALARS:
            return {**_SCALARS[kind], **schema}
        return schema
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": schema_for(args[0])}
        return {
            "type": "array",
            "prefixItems": [schema_for(a) for a in args],
            "minItems": len(args),
            "maxItems": len(args),
        }
    if origin in _SEQUENCES:
        return {"type": "array", **({"items": schema_for(args[0])} if args else {})}
    if origin in _MAPPINGS:
        return {"type": "object", **({"additionalProperties": schema_for(args[1])} if args else {})}
    if hint in _SCALARS:
        return dict(_SCALARS[hint])
    raise ToolDefinitionError(f"no JSON Schema for the type hint {hint!r}")


def function_tool(function: Callable[..., Any], *, name: str | None = None) -> Tool:
    """Describe ``function`` as a tool: parameters from its signature and hints, text from its docstring.

    Parameters without a default are required; ``*args`` and ``**kwargs`` are not offered to the model.

    Raises:
        ToolDefinitionError: If a parameter's hint has no JSON Schema.
    """
    description, arg_docs = parse_docstring(function.__doc__)
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except (NameError, TypeError) as exc:
        raise ToolDefinitionError(f"{function.__name__}: cannot resolve its type hints ({exc})") from exc
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(function).parameters.values():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        hint = hints.get(param.name, inspect.Parameter.empty)
        optional, inner = _is_optional(hint)
        has_default = param.default is not inspect.Parameter.empty
        # ``x: T | None = None`` is simply an optional T; without a default, null is a real value.
        schema = schema_for(inner if optional and has_default else hint)
        if param.name in arg_docs and "description" not in schema:
            schema["description"] = arg_docs[param.name]
        properties[param.name] = schema
        if not has_default:
            required.append(param.name)
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    return Tool(
        name=name or function.__name__,
        description=description,
        parameters=parameters,
        function=function,
    )


def _coerce(value: Any, hint: Any) -> Any:
    """Turn a JSON value into the parameter's enum member where the hint asks for one."""
    _, inner = _is_optional(hint)
    if isinstance(inner, type) and issubclass(inner, enum.Enum) and value is not None:
        return inner(value)
    return value


def _output(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


class ToolRegistry:
    """The tools an assistant offers, by name, and the one place a call is run.

    Args:
        tools: The tools; names must be unique.
    """

    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ToolDefinitionError(f"two tools are named {tool.name!r}")
            self._tools[tool.name] = tool

    @classmethod
    def from_functions(cls, functions: Iterable[Callable[..., Any]]) -> ToolRegistry:
        """A registry of :func:`function_tool` of each function."""
        return cls(function_tool(f) for f in functions)

    @classmethod
    def from_module(cls, path: Path) -> ToolRegistry:
        """Import the Python file ``path`` and register its public functions.

        Public means: named in ``__all__`` if the module defines it, else every function defined in
        the module itself (not imported into it) whose name does not start with ``_``.

        Raises:
            ToolDefinitionError: If the file cannot be imported or a function cannot be described.
        """
        name = "openrealtime_tools_" + re.sub(r"\W", "_", path.stem)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ToolDefinitionError(f"{path}: not an importable Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and typing resolve names through sys.modules
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # the user's module failed to import: say which and why
            raise ToolDefinitionError(f"{path}: {type(exc).__name__}: {exc}") from exc
        exported = getattr(module, "__all__", None)
        if exported is not None:
            functions = [getattr(module, n) for n in exported if inspect.isfunction(getattr(module, n, None))]
        else:
            functions = [
                f
                for n, f in vars(module).items()
                if inspect.isfunction(f) and f.__module__ == name and not n.startswith("_")
            ]
        return cls.from_functions(functions)

    def __len__(self) -> int:
        return len(self._tools)

    @property
    def names(self) -> list[str]:
        """The tool names, in registration order."""
        return list(self._tools)

    def definitions(self) -> list[dict[str, Any]]:
        """The value of ``session.tools``."""
        return [tool.definition() for tool in self._tools.values()]

    async def call(self, name: str, arguments: str) -> str:
        """Run tool ``name`` with the JSON ``arguments``; returns the ``function_call_output`` text.

        A synchronous function runs in a worker thread, so a slow tool never stalls playback or
        barge-in. Unknown tools, bad arguments and exceptions raised by the tool become an
        ``{"error": ...}`` output.
        """
        tool = self._tools.get(name)
        if tool is None:
            return json.dumps({"error": f"unknown tool {name!r}"})
        try:
            values = json.loads(arguments or "{}")
            if not isinstance(values, dict):
                raise TypeError("the arguments must be a JSON object")
            hints = typing.get_type_hints(tool.function, include_extras=True)
            kwargs = {k: _coerce(v, hints.get(k, Any)) for k, v in values.items()}
            bound = inspect.signature(tool.function).bind(**kwargs)
        except (ValueError, TypeError) as exc:
            return json.dumps({"error": f"invalid arguments for {name}: {exc}"})
        try:
            if inspect.iscoroutinefunction(tool.function):
                result = await tool.function(*bound.args, **bound.kwargs)
            else:
                result = await asyncio.to_thread(tool.function, *bound.args, **bound.kwargs)
        except Exception as exc:  # the tool's own failure is the model's to hear about
            return json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        return _output(result)
