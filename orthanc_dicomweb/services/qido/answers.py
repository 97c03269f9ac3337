"""QIDO-RS datasets kept between searches as their encoded JSON, not as Python objects.

A study's answer dataset held as dicts and lists costs ~7.4 kB of Python objects (its JSON:
~0.8 kB); its index attributes converted to DICOM JSON ~5 kB more. With the core's expanded
study and series, a cached study cost ~21 kB (measured at 8,000 studies), and every kept
object is one more for each full pass of the garbage collector. Kept encoded, a cached study
costs its expanded study and series (~5 kB) plus ~1 kB per kept dataset, and an answer made of
kept datasets is written by joining their bytes (orjson fragments) instead of encoding them
again. The XML model, and building a new dataset from a kept one, decode them (~2 us each).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ...dicom import json_model as dicom_json


class EncodedDataset:
    """One dataset as compact UTF-8 JSON (what `dicom_json.encode_json` writes)."""

    __slots__ = ("json",)

    def __init__(self, json: bytes) -> None:
        self.json = json

    @classmethod
    def of(cls, dataset: dicom_json.Dataset) -> EncodedDataset:
        # Copied to its own size: orjson's output keeps the 4 kB buffer it was written in
        # (measured: 4.0 kB of resident memory per small dataset, 0.15 kB copied).
        return cls(bytes(memoryview(dicom_json.encode_json(dataset))))

    def decoded(self) -> dicom_json.Dataset:
        return orjson.loads(self.json)


AnyDataset = dicom_json.Dataset | EncodedDataset


def as_dataset(dataset: AnyDataset) -> dicom_json.Dataset:
    """The dataset as dicts (decoded if kept encoded)."""
    return dataset.decoded() if isinstance(dataset, EncodedDataset) else dataset


def encode_answer(datasets: Iterable[AnyDataset]) -> bytes:
    """A JSON array of datasets, the encoded ones written as they are."""
    datasets = list(datasets)
    try:
        return orjson.dumps(datasets, default=_fragment)
    except orjson.JSONEncodeError:  # a value orjson refuses: the general encoder's way
        return dicom_json.encode_datasets(as_dataset(dataset) for dataset in datasets)


def _fragment(value: Any) -> orjson.Fragment:
    if isinstance(value, EncodedDataset):
        return orjson.Fragment(value.json)
    raise TypeError(f"{type(value).__name__} is not JSON")
