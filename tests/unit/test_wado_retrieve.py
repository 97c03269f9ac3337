"""Retrieve Study/Series/Instance against a fake core (no Orthanc)."""

from __future__ import annotations

from io import BytesIO

import pydicom
import pytest

from orthanc_dicomweb.config import Configuration
from orthanc_dicomweb.dicom.transfer_syntax import EXPLICIT_LITTLE_ENDIAN
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.http.web import MultipartResponse, Request
from orthanc_dicomweb.orthanc.core import ListedFile
from orthanc_dicomweb.orthanc.resources import ResourcePath
from orthanc_dicomweb.orthanc.transcoding import transcode
from orthanc_dicomweb.services.retrieve import RetrieveInstances, names_parents
from tests.fake_core import DirectAccessMixin, FakeCore, TranscodingMixin, relabelled
from tests.harness import PYDICOM_FILES
from tests.helpers import derived

JPEG_2000 = "1.2.840.10008.1.2.4.90"


def _file(name: str, study: str, series: str, sop: str, number: int) -> bytes:
    """A copy of a pydicom file, of one patient (the core makes a study of each patient's files,
    whatever their StudyInstanceUID)."""
    source = (PYDICOM_FILES / name).read_bytes()
    uids = {"SOPInstanceUID": sop, "PatientID": "P"}
    return derived(source, study, series, InstanceNumber=number, **uids)


# Two series of study 1.2 (a CT, a JPEG-LS MR; then another CT), and a 2-frame RLE in study 1.9.
A = _file("CT_small.dcm", "1.2", "1.2.3", "1.2.3.1", 2)
B = _file("MR_small_jpeg_ls_lossless.dcm", "1.2", "1.2.3", "1.2.3.2", 1)
C = _file("CT_small.dcm", "1.2", "1.2.4", "1.2.4.1", 1)
R = _file("SC_rgb_rle_2frame.dcm", "1.9", "1.9.3", "1.9.3.1", 1)


class TranscodingCore(TranscodingMixin, FakeCore):
    """A core that also transcodes in memory, like the SDK's TranscodeDicomInstance."""


@pytest.fixture(params=[FakeCore, TranscodingCore], ids=["modify", "in-memory"])
def core(request: pytest.FixtureRequest) -> FakeCore:
    """Every test runs against both ways a core transcodes."""
    return request.param(files=[A, B, C, R])


def _dataset(dicom: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(BytesIO(dicom), force=True)


def _uris(core: FakeCore) -> list[str]:
    """What the core was asked, REST calls and SDK calls alike."""
    return [uri for _, uri, _ in core.calls]


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
    assert parts == [A, B, C]
    listings = [f"/series/{core.id_of(uid)}/instances" for uid in ("1.2.3", "1.2.4")]
    assert _uris(core)[:4] == ["/tools/find", f"/studies/{core.id_of('1.2')}", *listings]
    assert not any(uri.endswith("/modify") for uri in _uris(core))


def test_only_the_first_instance_is_read_before_the_answer_starts(core: FakeCore) -> None:
    answer = RetrieveInstances(Configuration(), core).retrieve(_request(("1.2",), KEEP))
    assert [u for u in _uris(core) if u.endswith("/file")] == [
        f"/instances/{core.id_of('1.2.3.1')}/file"
    ]
    list(answer.parts)
    assert len([u for u in _uris(core) if u.endswith("/file")]) == 3


def test_series_level_matches_the_study_too(core: FakeCore) -> None:
    assert _retrieve(core, ("1.2", "1.2.4"), KEEP) == [C]
    with pytest.raises(HttpError) as error:
        _retrieve(core, ("1.9", "1.2.4"), KEEP)
    assert error.value.status == 404


def test_default_syntax_transcodes_only_what_differs(core: FakeCore) -> None:
    parts = _retrieve(core, ("1.2", "1.2.3"))
    assert core.transcodings == 1
    assert parts[0] == A
    assert _dataset(parts[1]).file_meta.TransferSyntaxUID == EXPLICIT_LITTLE_ENDIAN
    assert _dataset(parts[1]).SOPInstanceUID == _dataset(B).SOPInstanceUID


def test_a_core_transcoding_in_memory_is_given_the_file_already_read() -> None:
    core = TranscodingCore(files=[B])
    _retrieve(core, ("1.2", "1.2.3"))
    instance_calls = [u for u in _uris(core) if not u.startswith(("/tools", "/series"))]
    b = core.id_of("1.2.3.2")
    assert instance_calls == [f"/instances/{b}/file", f"transcode {EXPLICIT_LITTLE_ENDIAN}"]


def test_transcode_reads_the_file_itself_when_not_given() -> None:
    core = TranscodingCore(files=[B])
    b = core.id_of("1.2.3.2")
    dicom = transcode(core, b, EXPLICIT_LITTLE_ENDIAN)
    assert _uris(core) == [f"/instances/{b}/file", f"transcode {EXPLICIT_LITTLE_ENDIAN}"]
    assert _dataset(dicom).file_meta.TransferSyntaxUID == EXPLICIT_LITTLE_ENDIAN


def test_without_in_memory_transcoding_the_core_modifies_the_instance() -> None:
    core = FakeCore(files=[B])
    _retrieve(core, ("1.2", "1.2.3"))
    b = core.id_of("1.2.3.2")
    assert [u for u in _uris(core) if u.endswith("/modify")] == [f"/instances/{b}/modify"]


def test_syntax_the_core_cannot_write_is_406_unless_already_stored(core: FakeCore) -> None:
    accept = f"multipart/related; type=application/dicom; transfer-syntax={JPEG_2000}"
    with pytest.raises(HttpError) as error:
        _retrieve(core, ("1.2", "1.2.3"), accept)
    assert error.value.status == 406
    core.config["OverwriteInstances"] = True  # both stored in JPEG 2000 already
    core.store(relabelled(A, JPEG_2000))
    core.store(relabelled(B, JPEG_2000))
    assert len(_retrieve(core, ("1.2", "1.2.3"), accept)) == 2


def test_failed_transcoding_falls_back_to_the_next_accepted_syntax(core: FakeCore) -> None:
    core.transcodable = False
    accept = f"multipart/related; type=application/dicom, {KEEP}; q=0.5"
    assert _retrieve(core, ("1.2", "1.2.3", "1.2.3.2"), accept) == [B]
    with pytest.raises(HttpError) as error:
        _retrieve(core, ("1.2", "1.2.3", "1.2.3.2"), "multipart/related; type=application/dicom")
    assert error.value.status == 406


def test_a_failure_after_the_first_part_stops_the_stream(core: FakeCore) -> None:
    core.transcodable = False
    answer = RetrieveInstances(Configuration(), core).retrieve(_request(("1.2", "1.2.3")))
    parts = iter(answer.parts)
    assert next(parts) == A
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


class ListingCore(DirectAccessMixin, TranscodingMixin, FakeCore):
    """A core that reads files past the REST router, given their place from the listing."""

    def lookup_instance(self, sop_uid: str) -> str | None:
        raise AssertionError(sop_uid)


def test_each_file_is_read_with_its_place_from_the_series_listing() -> None:
    second = _file("CT_small.dcm", "1.2", "1.2.3", "1.2.3.2", 2)
    core = ListingCore(files=[A, second])
    assert _retrieve(core, ("1.2", "1.2.3"), KEEP) == [A, second]
    instances = [core.resources[core.id_of(sop)] for sop in ("1.2.3.1", "1.2.3.2")]
    assert core.listed == [ListedFile(i.id, i.file_uuid, len(i.file)) for i in instances]
    assert not any(uri.startswith("/instances/") for uri in _uris(core))


def test_an_instance_is_found_by_its_uid_and_its_parents_read_in_its_file(core: FakeCore) -> None:
    assert _retrieve(core, ("1.2", "1.2.3", "1.2.3.1"), KEEP) == [A]
    assert "/tools/find" not in _uris(core)  # the UID index, then the file's header


def test_an_instance_under_another_study_or_series_is_looked_up_by_its_path(
    core: FakeCore,
) -> None:
    for groups in (("1.9", "1.2.3", "1.2.3.1"), ("1.2", "1.2.4", "1.2.3.1")):
        with pytest.raises(HttpError) as error:
            _retrieve(core, groups, KEEP)
        assert error.value.status == 404
    assert "/tools/find" in _uris(core)


def test_names_parents_reads_the_study_and_series_of_a_file() -> None:
    assert names_parents(A, ResourcePath("1.2", "1.2.3", "1.2.3.1"))
    assert not names_parents(A, ResourcePath("1.2", "1.2.4", "1.2.3.1"))
    assert not names_parents(b"not a DICOM file", ResourcePath("1.2", "1.2.3", "1.2.3.1"))
