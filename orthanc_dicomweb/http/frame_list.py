"""The frame list of a request path (`.../frames/1,3,5`), shared by Retrieve Frames and
Retrieve Rendered."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import bad_request

_FRAME_NUMBER = re.compile(r"^\s*[0-9]{1,9}\s*$")


def parse_frame_list(text: str) -> list[int]:
    """`1,3,5` -> [1, 3, 5]; 400 for anything but distinct numbers >= 1."""
    items = text.split(",")
    if not all(_FRAME_NUMBER.match(item) for item in items):
        raise bad_request(f"Malformed frame list {text!r}: expected numbers such as 1,3,5")
    numbers = [int(item) for item in items]
    if 0 in numbers:
        raise bad_request("Frame numbers start at 1, frame 0 does not exist")
    if len(set(numbers)) != len(numbers):
        raise bad_request(f"Frame list {text!r} repeats a frame number")
    return numbers


def check_frame_range(numbers: Sequence[int], count: int) -> None:
    beyond = [n for n in numbers if n > count]
    if beyond:
        raise bad_request(
            f"Frame {beyond[0]} does not exist: the instance has {count} frame(s)",
            {"NumberOfFrames": count},
        )
