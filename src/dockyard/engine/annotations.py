"""Argument wrappers for ``submit``/``map`` (``dockyard.utilities.annotations``)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

T = TypeVar("T")


class BaseAnnotation(Generic[T]):
    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        return self.value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, BaseAnnotation)
            and type(other) is type(self)
            and other.value == self.value
        )

    def __hash__(self) -> int:
        return hash((type(self), id(self.value)))


class unmapped(BaseAnnotation[T]):
    """``task.map(xs, unmapped(config))``: the same value for every mapped run."""

    def __getitem__(self, _: Any) -> T:
        return self.value


class allow_failure(BaseAnnotation[T]):
    """Run even if this upstream future failed; the task gets the exception as the value."""


class quote(BaseAnnotation[T]):
    """Pass the value as is: futures inside it are not resolved."""
