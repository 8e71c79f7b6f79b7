"""Help text of generated flags, read from a config class's numpydoc ``Parameters`` section."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["field_docs"]


def field_docs(cls: type) -> dict[str, str]:
    """The first paragraph of each field's numpydoc ``Parameters`` entry.

    Read from ``cls`` and its base classes (the subclass's entry wins).

    Entries may name several fields (``lr, min_lr : float``). Fields without a description
    get ``""``.
    """
    out: dict[str, str] = {}
    for klass in reversed(getattr(cls, "__mro__", (cls,))):
        if klass is object:
            continue
        found = _parameter_docs(klass.__dict__.get("__doc__") or "")
        out.update({k: v for k, v in found.items() if v or k not in out})
    return out


def _parameter_docs(doc: str) -> dict[str, str]:
    lines = doc.expandtabs().splitlines()
    out: dict[str, str] = {}
    try:
        start = next(
            i
            for i, ln in enumerate(lines)
            if ln.strip() == "Parameters"
            and i + 1 < len(lines)
            and set(lines[i + 1].strip()) == {"-"}
        )
    except StopIteration:
        return out
    names: list[str] = []
    body: list[str] = []
    entry_indent = None

    def flush() -> None:
        text = " ".join(" ".join(body).split())
        for n in names:
            out[n] = text

    for ln in lines[start + 2 :]:
        if not ln.strip():
            if body:
                body.append("\n")
            continue
        indent = len(ln) - len(ln.lstrip())
        if entry_indent is None:
            entry_indent = indent
        if indent < entry_indent:
            break
        if indent == entry_indent:
            if set(ln.strip()) == {"-"}:  # the next section's underline
                names.pop() if names else None
                break
            flush()
            head = ln.strip().split(" : ", 1)[0]
            names = [n.strip().lstrip("*") for n in head.split(",") if n.strip()]
            body = []
        elif "\n" not in body:  # the first paragraph only
            body.append(ln.strip())
    flush()
    return out


def _plain(doc: str) -> str:
    """Docstring markup as plain text: ``x`` and :role:`x` become 'x'."""
    text = " ".join(doc.split())
    text = re.sub(r":[a-z]+:`~?([^`]*)`", r"'\1'", text)
    text = re.sub(r"``([^`]*)``", r"'\1'", text)
    return re.sub(r"'\"([^\"']*)\"'", r"'\1'", text)


def _show_default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple | list):
        return " ".join(str(v) for v in value)
    return str(value)


def _help(doc: str, default: Any, *, optional: bool, extra: str = "") -> str:
    text = _plain(doc)
    parts = [text] if text else []
    if extra:
        parts.append(extra)
    if "(default" in text:  # the text names its default itself
        return "; ".join(parts).replace("%", "%%")
    tail = f"default: {_show_default(default)}"
    if optional and default is not None:
        tail += "; 'none' for none"
    body = "; ".join(parts)
    return (f"{body} ({tail})" if body else tail).replace("%", "%%")
