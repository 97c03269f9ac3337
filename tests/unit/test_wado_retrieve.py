"""Retrieve Study/Series/Instance against a fake core (no Orthanc)."""

from __future__ import annotations

import json
from io import BytesIO
from typing import Any

import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import UID

from orthanc_dicomweb.config import Configuration
from orthanc_dicomweb.dicom.transfer_syntax import EXPLICIT_LITTLE_ENDIAN
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.http.web import MultipartResponse, Request
from orthanc_dicomweb.orthanc.core import CoreError, ListedFile
from orthanc_dicomweb.orthanc.transcoding import transcode
from orthanc_dicomweb.services.retrieve import RetrieveInstances
from tests.harness import PYDICOM_FILES

CT = (PYDICOM_FILES / "CT_small.dcm").read_bytes()
JPEG_LS_FILE = (PYDICOM_FILES / "MR_small_jpeg_ls_lossless.dcm").read_bytes()
RLE_2_FRAMES = (PYDICOM_FILES / "SC_rgb_rle_2frame.dcm").read_bytes()
JPEG_2000 = "1.2.840.10008.1.2.4.90"


class FakeCore:
    """Instances by Orthanc id, with their files; records every call."""

    def __init__(self, files: dict[str, bytes], main_tags: dict[str, dict[str, str]]) -> None:
        self.files = files
        self.main_tags = main_tags
        self.calls: list[str] = []
        self.transcodable = True
        self.transcodings = 0

    def get(self, uri: str) -> bytes:
        self.calls.append(uri)
        level, instance_id = uri.split("/")[1:3]
        if level == "series" and uri.endswith("/instances"):
            return json.dumps(self._listing(instance_id)).encode()
        if level == "studies":  # Orthanc ids are the UIDs in this fake
            return json.dumps(self._children(level, instance_id)).encode()
        if uri.endswith("/file"):
            return self.files[instance_id]
        if uri.endswith("/metadata/TransferSyntax"):
            return str(_dataset(self.files[instance_id]).file_meta.TransferSyntaxUID).encode()
        raise AssertionError(uri)

    def post(self, uri: str, body: bytes, after_plugins: bool = False) -> bytes:
        self.calls.append(uri)
        if uri == "/tools/find":
            return json.dumps(self._find(json.loads(body))).encode()
        if uri.endswith("/modify"):
            return self._transcoded(self.files[uri.split("/")[2]], json.loads(body)["Transcode"])
        raise AssertionError(uri)

    def _transcoded(self, dicom: bytes, syntax: str) -> bytes:
        if not self.transcodable:
            raise CoreError(-1, "Internal error", syntax)
        self.transcodings += 1
        return _transcoded(dicom, syntax)

    def _find(self, request: dict[str, Any]) -> list[Any]:
        level, query = request["Level"], request["Query"]
        matching = [
            key
            for key, tags in self.main_tags.items()
            if all(tags.get(tag) == value for tag, value in query.items())
        ]
        if level == "Instance":
            assert request["Expand"] is True
            return [{"ID": key, "MainDicomTags": self.main_tags[key]} for key in matching]
        parent_tag = "SeriesInstanceUID" if level == "Series" else "StudyInstanceUID"
        return list(dict.fromkeys(self.main_tags[key][parent_tag] for key in matching))

    def _listing(self, uid: str) -> list[dict[str, Any]]:
        """`/series/{id}/instances`, without the file's place (as a core that lacks it)."""
        tags = self.main_tags.items()
        return [{"ID": k, "MainDicomTags": t} for k, t in tags if t["SeriesInstanceUID"] == uid]

    def _children(self, level: str, uid: str) -> dict[str, list[str]]:
        series = [t["SeriesInstanceUID"] for t in self.main_tags.values()]
        uids = [s for s in series if s.startswith(uid + ".")]
        return {"Series": list(dict.fromkeys(uids))}

    def put(self, uri: str, body: bytes) -> bytes:
        raise AssertionError(uri)

    def delete(self, uri: str) -> None:
        raise AssertionError(uri)

    def configuration(self) -> dict[str, Any]:
        return {}


class TranscodingCore(FakeCore):
    """A core that also transcodes in memory, like the SDK's TranscodeDicomInstance."""

    def transcode(self, dicom: bytes, syntax: str) -> bytes:
        self.calls.append(f"transcode {syntax}")
        return self._transcoded(dicom, syntax)


def _dataset(dicom: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(BytesIO(dicom), force=True)


def _transcoded(dicom: bytes, syntax: str) -> bytes:
    """What the core would answer, good enough here: the same file labelled in `syntax`."""
    dataset = _dataset(dicom)
    if UID(syntax).is_encapsulated and not dataset.file_meta.TransferSyntaxUID.is_encapsulated:
        dataset.PixelData = encapsulate([dataset.PixelData])
        dataset["PixelData"].VR = "OB"
        dataset["PixelData"].is_undefined_length = True
    dataset.file_meta.TransferSyntaxUID = syntax
    out = BytesIO()
    dataset.save_as(out)
    return out.getvalue()


def _tags(study: str, series: str, sop: str, number: str, frames: str = "") -> dict[str, str]:
    tags = {"StudyInstanceUID": study, "SeriesInstanceUID": series, "SOPInstanceUID": sop}
    tags["InstanceNumber"] = number
    if frames:
        tags["NumberOfFrames"] = frames
    return tags


@pytest.fixture(params=[FakeCore, TranscodingCore], ids=["modify", "in-memory"])
def core(request: pytest.FixtureRequest) -> FakeCore:
    """Every test runs against both ways a core transcodes."""
    return request.param(
        {"a": CT, "b": JPEG_LS_FILE, "c": CT, "r": RLE_2_FRAMES},
        {
            "a": _tags("1.2", "1.2.3", "1.2.3.1", "2"),
            "b": _tags("1.2", "1.2.3", "1.2.3.2", "1"),
            "c": _tags("1.2", "1.2.4", "1.2.4.1", "1"),
            "r": _tags("1.9", "1.9.3", "1.9.3.1", "1", frames="2"),
        },
    )


def _request(groups: tuple[str, ...], accept: str | None = None) -> Request:
    headers = {"accept": accept} if accept else {}
    return Request("GET", "/dicom-web/...", groups, headers=headers)


def _retrieve(core: FakeCore, groups: tuple[str, ...], accept: str | None = None) -> list[bytes]:
    answer = RetrieveInstances(Configuration(), core).retrieve(_request(groups, accept))
    assert isinstance(answer, MultipartResponse)
    assert answer.part_content_type == "application/dicom"
    return list(answer.parts)


KEEP = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def test_study_streams_every_instance_series_by_series(core: FakeCore) -> None:
    parts = _retrieve(core, ("1.2",), KEEP)
    assert parts == [CT, JPEG_LS_FILE, CT]
    listings = ["/series/1.2.3/instances", "/series/1.2.4/instances"]
    assert core.calls[:4] == ["/tools/find", "/studies/1.2", *listings]
    assert not any(call.endswith("/modify") for call in core.calls)


def test_only_the_first_instance_is_read_before_the_answer_starts(core: FakeCore) -> None:
    answer = RetrieveInstances(Configuration(), core).retrieve(_request(("1.2",), KEEP))
    assert [c for c in core.calls if c.endswith("/file")] == ["/instances/a/file"]
    list(answer.parts)
    assert len([c for c in core.calls if c.endswith("/file")]) == 3


def test_series_level_matches_the_study_too(core: FakeCore) -> None:
    assert _retrieve(core, ("1.2", "1.2.4"), KEEP) == [CT]
    with pytest.raises(HttpError) as error:
        _retrieve(core, ("1.9", "1.2.4"), KEEP)
    assert error.value.status == 404


def test_default_syntax_transcodes_only_what_differs(core: FakeCore) -> None:
    parts = _retrieve(core, ("1.2", "1.2.3"))
    assert core.transcodings == 1
    assert parts[0] == CT
    assert _dataset(parts[1]).file_meta.TransferSyntaxUID == EXPLICIT_LITTLE_ENDIAN
    assert _dataset(parts[1]).SOPInstanceUID == _dataset(JPEG_LS_FILE).SOPInstanceUID


def test_a_core_transcoding_in_memory_is_given_the_file_already_read() -> None:
    core = TranscodingCore({"b": JPEG_LS_FILE}, {"b": _tags("1.2", "1.2.3", "1.2.3.2", "1")})
    _retrieve(core, ("1.2", "1.2.3"))
    instance_calls = [c for c in core.calls if not c.startswith(("/tools", "/series"))]
    assert instance_calls == ["/instances/b/file", f"transcode {EXPLICIT_LITTLE_ENDIAN}"]


def test_transcode_reads_the_file_itself_when_not_given() -> None:
    core = TranscodingCore({"b": JPEG_LS_FILE}, {})
    dicom = transcode(core, "b", EXPLICIT_LITTLE_ENDIAN)
    assert core.calls == ["/instances/b/file", f"transcode {EXPLICIT_LITTLE_ENDIAN}"]
    assert _dataset(dicom).file_meta.TransferSyntaxUID == EXPLICIT_LITTLE_ENDIAN


def test_without_in_memory_transcoding_the_core_modifies_the_instance() -> None:
    core = FakeCore({"b": JPEG_LS_FILE}, {"b": _tags("1.2", "1.2.3", "1.2.3.2", "1")})
    _retrieve(core, ("1.2", "1.2.3"))
    assert [c for c in core.calls if c.endswith("/modify")] == ["/instances/b/modify"]


def test_syntax_the_core_cannot_write_is_406_unless_already_stored(core: FakeCore) -> None:
    accept = f"multipart/related; type=application/dicom; transfer-syntax={JPEG_2000}"
    with pytest.raises(HttpError) as error:
        _retrieve(core, ("1.2", "1.2.3"), accept)
    assert error.value.status == 406
    core.files["a"] = core.files["b"] = _transcoded(CT, JPEG_2000)
    assert len(_retrieve(core, ("1.2", "1.2.3"), accept)) == 2


def test_failed_transcoding_falls_back_to_the_next_accepted_syntax(core: FakeCore) -> None:
    core.transcodable = False
    accept = f"multipart/related; type=application/dicom, {KEEP}; q=0.5"
    assert _retrieve(core, ("1.2", "1.2.3", "1.2.3.2"), accept) == [JPEG_LS_FILE]
    with pytest.raises(HttpError) as error:
        _retrieve(core, ("1.2", "1.2.3", "1.2.3.2"), "multipart/related; type=application/dicom")
    assert error.value.status == 406


def test_a_failure_after_the_first_part_stops_the_stream(core: FakeCore) -> None:
    core.transcodable = False
    answer = RetrieveInstances(Configuration(), core).retrieve(_request(("1.2", "1.2.3")))
    parts = iter(answer.parts)
    assert next(parts) == CT
    with pytest.raises(HttpError):
        next(parts)


@pytest.mark.parametrize(
    ("groups", "status"),
    [(("1.2.x",), 400), (("9.9",), 404), (("1.2", "1.2.3", "1.2.3.9"), 404), (("1.2", ""), 400)],
)
def test_bad_paths(core: FakeCore, groups: tuple[str, ...], status: int) -> None:
    with pytest.raises(HttpError) as error:
        _retrieve(core, groups, KEEP)
    assert error.value.status == status


class ListingCore(TranscodingCore):
    """A core that reads files past the REST router, given their place from the listing."""

    def __init__(self, files: dict[str, bytes], main_tags: dict[str, dict[str, str]]) -> None:
        super().__init__(files, main_tags)
        self.listed: list[ListedFile | None] = []

    def _listing(self, uid: str) -> list[dict[str, Any]]:
        listing = super()._listing(uid)
        return [i | {"FileUuid": f"uuid-{i['ID']}", "FileSize": 7} for i in listing]

    def lookup_instance(self, sop_uid: str) -> str | None:
        raise AssertionError(sop_uid)

    def instance_file(self, orthanc_id: str, listed: ListedFile | None = None) -> bytes:
        self.listed.append(listed)
        return self.files[orthanc_id]


def test_each_file_is_read_with_its_place_from_the_series_listing() -> None:
    core = ListingCore({"a": CT, "b": CT}, {"a": _tags("1.2", "1.2.3", "1.2.3.1", "1")})
    core.main_tags["b"] = _tags("1.2", "1.2.3", "1.2.3.2", "2")
    assert _retrieve(core, ("1.2", "1.2.3"), KEEP) == [CT, CT]
    assert core.listed == [ListedFile("a", "uuid-a", 7), ListedFile("b", "uuid-b", 7)]
    assert not any(call.startswith("/instances/") for call in core.calls)
