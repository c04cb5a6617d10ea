"""Whether a new function signature can replace an old one: calls that were valid for the
old must stay valid (used by :mod:`.codecheck`)."""

from __future__ import annotations

import ast

__all__ = ["signature_problems", "signature_text"]


def signature_text(args: ast.arguments) -> str:
    try:
        return ast.unparse(args)
    except Exception:  # noqa: BLE001 - only used in messages
        return "..."


def signature_problems(old: ast.arguments, new: ast.arguments) -> list[str]:
    """Ways in which a call valid for ``old`` would fail for ``new``."""
    problems: list[str] = []
    old_pos = [*old.posonlyargs, *old.args]
    new_pos = [*new.posonlyargs, *new.args]
    old_first_default = len(old_pos) - len(old.defaults)
    new_first_default = len(new_pos) - len(new.defaults)
    new_kwonly = {
        a.arg: d is not None for a, d in zip(new.kwonlyargs, new.kw_defaults, strict=True)
    }
    new_by_keyword = {a.arg for a in new.args} | set(new_kwonly)

    for i, param in enumerate(old_pos):
        by_keyword = i >= len(old.posonlyargs)  # callers may pass it by name
        has_default = i >= old_first_default
        if i < len(new_pos):
            now = new_pos[i]
            if by_keyword and now.arg != param.arg:
                problems.append(
                    f"parameter {i + 1} was '{param.arg}' but is now '{now.arg}' (keep the "
                    "names and order of the parameters)"
                )
                continue
            if by_keyword and i < len(new.posonlyargs) and new.kwarg is None:
                problems.append(f"'{param.arg}' became positional-only")
            if has_default and i < new_first_default:
                problems.append(f"'{param.arg}' lost its default value (callers may omit it)")
        elif new.vararg is None:
            if param.arg in new_kwonly:
                problems.append(f"'{param.arg}' can no longer be passed by position")
            else:
                problems.append(f"the parameter '{param.arg}' was removed")
        elif by_keyword and param.arg not in new_by_keyword and new.kwarg is None:
            problems.append(f"'{param.arg}' can no longer be passed by name")

    if old.vararg is not None and new.vararg is None:
        problems.append(f"*{old.vararg.arg} was removed")
    for param, default in zip(old.kwonlyargs, old.kw_defaults, strict=True):
        if param.arg in new_kwonly:
            if default is not None and not new_kwonly[param.arg]:
                problems.append(f"'{param.arg}' lost its default value (callers may omit it)")
        elif param.arg in new_by_keyword:
            index = [a.arg for a in new_pos].index(param.arg)
            if default is not None and index < new_first_default:
                problems.append(f"'{param.arg}' lost its default value (callers may omit it)")
        elif new.kwarg is None:
            problems.append(f"the keyword-only parameter '{param.arg}' was removed")
    if old.kwarg is not None and new.kwarg is None:
        problems.append(f"**{old.kwarg.arg} was removed")

    # Parameters old callers never pass must have defaults.
    old_names = {a.arg for a in (*old_pos, *old.kwonlyargs)}
    for j, param in enumerate(new_pos):
        if j >= len(old_pos) and j < new_first_default and param.arg not in old_names:
            problems.append(
                f"the new parameter '{param.arg}' needs a default value (callers do not pass it)"
            )
    for name, has_default in new_kwonly.items():
        if name not in old_names and not has_default:
            problems.append(
                f"the new parameter '{name}' needs a default value (callers do not pass it)"
            )
    return problems
