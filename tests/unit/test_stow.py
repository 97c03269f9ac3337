"""Store Instances with a fake core: outcomes, the answer model, statuses and refusals."""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

import pydicom
import pytest

from orthanc_dicomweb.config import Configuration
from orthanc_dicomweb.dicom.assembly import read_identity
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.http.multipart import ReleasableBody, encode_multipart, parse_multipart
from orthanc_dicomweb.http.web import Request
from orthanc_dicomweb.orthanc.core import CoreError
from orthanc_dicomweb.services.stow import (
    FailureReason,
    Outcome,
    StoreInstances,
    answer_dataset,
    answer_status,
)
from tests.harness import PYDICOM_FILES
from tests.unit.fakes import FakeCore

BOUNDARY = "b0und"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
BASE = "http://pacs/dicom-web/"


def instance(study: str = "1.2.3", sop: str = "1.2.3.4", source: str = "CT_small.dcm") -> bytes:
    dataset = pydicom.dcmread(PYDICOM_FILES / source)
    dataset.StudyInstanceUID = study
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = sop
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def request(
    *instances: bytes,
    study: str | None = None,
    content_type: str = CONTENT_TYPE,
    accept: str | None = None,
) -> Request:
    body = encode_multipart([(data, "application/dicom", None) for data in instances], BOUNDARY)
    headers = {"content-type": content_type, "host": "pacs"}
    if accept:
        headers["accept"] = accept
    return Request("POST", "/dicom-web/studies", (study,) if study else (), {}, headers, body)


def storing_core(status: str = "Success", error: int | None = None) -> FakeCore:
    """A core that answers /instances like Orthanc does, from the instance's own UIDs."""

    def store(body: Any) -> Any:
        if error is not None:
            raise CoreError(error, "core failure", "/instances")
        identity = read_identity(memoryview(body))
        return {"ID": identity.orthanc_id(), "Status": status}

    return FakeCore({("POST", "/instances"): store})


def store(core: FakeCore, req: Request, **config: Any) -> tuple[int, dict[str, Any]]:
    response = StoreInstances(Configuration(**config), core).store(req)
    return response.status, json.loads(response.body)


def reasons(answer: dict[str, Any], tag: str = "00081197") -> list[int]:
    failed = answer.get("00081198", {}).get("Value", [])
    return [item[tag]["Value"][0] for item in failed]


def test_all_stored_answers_200_with_retrieve_urls() -> None:
    status, answer = store(
        storing_core(), request(instance(sop="1.2.3.4"), instance(sop="1.2.3.5"))
    )
    assert status == 200
    assert "00081198" not in answer
    assert answer["00080005"] == {"vr": "CS", "Value": ["ISO_IR 192"]}
    assert answer["00081190"]["Value"] == [f"{BASE}studies/1.2.3"]
    (first, second) = answer["00081199"]["Value"]
    assert first["00081155"]["Value"] == ["1.2.3.4"]
    assert first["00081150"]["Value"] == ["1.2.840.10008.5.1.4.1.1.2"]
    series = pydicom.dcmread(PYDICOM_FILES / "CT_small.dcm").SeriesInstanceUID
    assert second["00081190"]["Value"] == [f"{BASE}studies/1.2.3/series/{series}/instances/1.2.3.5"]


def test_instances_of_several_studies_have_no_study_retrieve_url() -> None:
    _, answer = store(storing_core(), request(instance("1.2.3"), instance("1.2.4", "1.2.4.1")))
    assert "00081190" not in answer


def test_study_mismatch_is_refused_before_the_core_sees_it() -> None:
    core = storing_core()
    status, answer = store(core, request(instance("1.2.9"), instance(), study="1.2.3"))
    assert status == 202
    assert reasons(answer) == [FailureReason.PROCESSING_FAILURE]
    assert len(core.calls) == 1


@pytest.mark.parametrize("study", ["1.2.9", "nope"])
def test_nothing_in_the_study_of_the_url_is_409_without_retrieve_url(study: str) -> None:
    status, answer = store(storing_core(), request(instance(), study=study))
    assert status == 409
    assert list(answer) == ["00080005", "00081198", "00081199"]
    assert reasons(answer) == [0x0110]
    assert "Value" not in answer["00081199"]


@pytest.mark.parametrize(
    ("code", "reason", "status"),
    [(19, 0xA700, 409), (15, 0xC000, 400), (22, 0x0110, 409)],
)
def test_core_failures_become_failure_reasons(code: int, reason: int, status: int) -> None:
    answered, answer = store(storing_core(error=code), request(instance()))
    assert answered == status
    assert reasons(answer) == [reason]
    assert "Value" not in answer["00081199"]


def test_filtered_out_by_another_plugin_is_not_authorized() -> None:
    _, answer = store(storing_core("FilteredOut"), request(instance()))
    assert reasons(answer) == [0x0124]


def test_already_stored_is_a_success_with_a_warning() -> None:
    status, answer = store(storing_core("AlreadyStored"), request(instance()))
    assert status == 200
    assert answer["00081199"]["Value"][0]["00081196"]["Value"] == [0xB006]


def test_uids_changed_by_the_core_are_answered_with_a_coercion_warning() -> None:
    core = FakeCore(
        {
            ("POST", "/instances"): {"ID": "other-id", "Status": "Success"},
            ("GET", "/instances/other-id/tags?short"): {
                "0008,0016": "1.2.840.10008.5.1.4.1.1.2",
                "0008,0018": "9.9.9",
                "0020,000d": "9.9",
                "0020,000e": "9.9.1",
            },
        }
    )
    _, answer = store(core, request(instance()))
    item = answer["00081199"]["Value"][0]
    assert item["00081196"]["Value"] == [0xB000]
    assert item["00081190"]["Value"] == [f"{BASE}studies/9.9/series/9.9.1/instances/9.9.9"]


def test_xml_answer_on_request() -> None:
    response = StoreInstances(Configuration(), storing_core()).store(
        request(instance(), accept="application/dicom+xml")
    )
    assert response.content_type == "application/dicom+xml"
    assert b"NativeDicomModel" in response.body


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("", 415),
        ("application/dicom", 415),
        ("multipart/related; type=image/png; boundary=x", 415),
        ("multipart/mixed; boundary=x", 415),
        ('multipart/related; type="application/dicom"', 400),
    ],
)
def test_unusable_content_types(content_type: str, status: int) -> None:
    with pytest.raises(HttpError) as caught:
        store(storing_core(), request(instance(), content_type=content_type))
    assert caught.value.status == status


def test_unacceptable_answer_type_is_406_before_storing() -> None:
    core = storing_core()
    with pytest.raises(HttpError) as caught:
        store(core, request(instance(), accept="image/png"))
    assert caught.value.status == 406
    assert core.calls == []


def test_read_only_mode_is_403() -> None:
    with pytest.raises(HttpError) as caught:
        store(storing_core(), request(instance()), read_only=True)
    assert caught.value.status == 403


def test_statuses_sum_up_the_outcomes() -> None:
    stored = Outcome("1.2", "1.2.3")
    failed = Outcome("1.2", "1.2.4", failure=FailureReason.CANNOT_UNDERSTAND)
    assert answer_status([stored, stored]) == 200
    assert answer_status([stored, failed]) == 202
    assert answer_status([failed]) == 400  # nothing stored, bad syntax
    conflict = Outcome("1.2", "1.2.5", failure=FailureReason.PROCESSING_FAILURE)
    assert answer_status([conflict]) == 409
    assert answer_status([conflict, failed]) == 400


def test_answer_model_items_in_tag_order() -> None:
    failed = Outcome("1.2", "1.2.4", failure=FailureReason.CANNOT_UNDERSTAND)
    dataset = answer_dataset([failed], None)
    assert list(dataset) == ["00080005", "00081198", "00081199"]
    assert dataset["00081198"]["Value"][0]["00081197"] == {"vr": "US", "Value": [0xC000]}


def test_failures_without_both_sop_uids_are_not_listed() -> None:
    unreadable = Outcome(None, None, failure=FailureReason.CANNOT_UNDERSTAND)
    no_class = Outcome(None, "1.2.4", failure=FailureReason.CANNOT_UNDERSTAND)
    dataset = answer_dataset([unreadable, no_class], None)
    assert list(dataset) == ["00080005", "00081199"]
    assert answer_status([unreadable, no_class]) == 400


# --- Memory: the parts of a big request are released once stored --------------------------

BIG_PIXELS = 2048 * 2048 * 2  # 8 MiB: bodies of a few such instances are released page by page


def big_instance(sop: str) -> bytes:
    dataset = pydicom.dcmread(PYDICOM_FILES / "CT_small.dcm")
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = sop
    dataset.Rows = dataset.Columns = 2048
    dataset.PixelData = bytes(range(256)) * (BIG_PIXELS // 256)
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def recording_core() -> tuple[FakeCore, list[bytes]]:
    """A storing core that keeps a copy of what it was given, as the real core does."""
    received: list[bytes] = []
    answer = storing_core()

    def store(body: Any) -> Any:
        received.append(bytes(body))
        return answer.answers[("POST", "/instances")](body)

    return FakeCore({("POST", "/instances"): store}), received


def test_stored_parts_of_a_big_request_are_released() -> None:
    instances = [big_instance(f"1.2.3.{index}") for index in range(5)]
    req = request(*instances)
    assert len(req.body) >= ReleasableBody.MINIMUM_SIZE
    middle = parse_multipart(req.body, BOUNDARY)[2].offset + BIG_PIXELS // 2
    core, received = recording_core()
    status, answer = store(core, req)
    assert status == 200
    assert received == instances  # each stored whole, before its memory was given back
    assert len(answer["00081199"]["Value"]) == 5
    assert req.body[middle : middle + 1000] == bytes(1000)  # its pages went back to the OS


def test_bulk_data_of_a_big_request_is_kept_until_its_metadata_is_stored() -> None:
    pixels = bytes(range(256)) * (ReleasableBody.MINIMUM_SIZE // 256 + 1)
    metadata = {
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
        "00080018": {"vr": "UI", "Value": ["1.2.3.4"]},
        "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        "0020000E": {"vr": "UI", "Value": ["1.2.3.1"]},
        "7FE00010": {"vr": "OB", "BulkDataURI": "http://client/pixels"},
    }
    body = encode_multipart(
        [  # the bulk data comes first: it is read after the part that follows it
            (pixels, "application/octet-stream", {"Content-Location": "http://client/pixels"}),
            (json.dumps([metadata]).encode(), "application/dicom+json", None),
        ],
        BOUNDARY,
    )
    content_type = f'multipart/related; type="application/dicom+json"; boundary={BOUNDARY}'
    req = Request("POST", "/dicom-web/studies", (), {}, {"content-type": content_type}, body)
    core, received = recording_core()
    status, _ = store(core, req)
    assert status == 200
    assert pydicom.dcmread(io.BytesIO(received[0])).PixelData == pixels


# --- Parallel stores: a core that lets several stores overlap ----------------------------


class ParallelCore(FakeCore):
    """A storing core allowing `width` overlapping stores; later parts finish first."""

    def __init__(self, width: int, store: Any) -> None:
        super().__init__({("POST", "/instances"): self._timed})
        self.width = width
        self.inner = store
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0

    def concurrent_stores(self) -> int:
        return self.width

    def _timed(self, body: Any) -> Any:
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            sop = read_identity(memoryview(body)).sop_instance
            time.sleep(0.02 / int(sop.rsplit(".", 1)[1]))  # the first part is the slowest
            return self.inner(body)
        finally:
            with self.lock:
                self.running -= 1


def test_parallel_stores_answer_in_the_order_of_the_parts() -> None:
    core = ParallelCore(3, storing_core().answers[("POST", "/instances")])
    sops = [f"1.2.3.{index}" for index in range(1, 9)]
    status, answer = store(core, request(*(instance(sop=sop) for sop in sops)))
    assert status == 200
    assert [item["00081155"]["Value"][0] for item in answer["00081199"]["Value"]] == sops
    assert core.most_running == 3


def test_parallel_stores_keep_refusals_and_core_failures_in_place() -> None:
    def store_or_fill_up(body: Any) -> Any:
        if read_identity(memoryview(body)).sop_instance == "1.2.3.3":
            raise CoreError(19, "The file storage is full", "/instances")
        return storing_core().answers[("POST", "/instances")](body)

    core = ParallelCore(2, store_or_fill_up)
    parts = [instance(sop="1.2.3.1"), instance("1.2.9", "1.2.3.2"), instance(sop="1.2.3.3")]
    parts += [b"not dicom", instance(sop="1.2.3.4")]
    status, answer = store(core, request(*parts, study="1.2.3"))
    assert status == 202
    assert reasons(answer) == [0x0110, 0xA700]  # the part that is not DICOM has no item
    failed_sops = [item["00081155"]["Value"][0] for item in answer["00081198"]["Value"]]
    assert failed_sops == ["1.2.3.2", "1.2.3.3"]
    stored = [item["00081155"]["Value"][0] for item in answer["00081199"]["Value"]]
    assert stored == ["1.2.3.1", "1.2.3.4"]
    assert len(core.calls) == 3  # the refused parts never reach the core


def test_parallel_stores_release_a_big_request_in_order() -> None:
    instances = [big_instance(f"1.2.3.{index}") for index in range(1, 6)]
    req = request(*instances)
    middle = parse_multipart(req.body, BOUNDARY)[2].offset + BIG_PIXELS // 2
    received: list[bytes] = []

    def keep_a_copy(body: Any) -> Any:
        received.append(bytes(body))
        return storing_core().answers[("POST", "/instances")](body)

    status, answer = store(ParallelCore(2, keep_a_copy), req)
    assert status == 200
    assert sorted(received) == sorted(instances)  # each stored whole, before its release
    assert len(answer["00081199"]["Value"]) == 5
    assert req.body[middle : middle + 1000] == bytes(1000)


def test_big_parts_are_stored_alone() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from orthanc_dicomweb.services.stow import ALONE_ABOVE, InOrder, Outcome

    running: list[int] = []
    overlaps: list[int] = []

    def store(number: int) -> Outcome:
        running.append(number)
        overlaps.append(len(running))
        time.sleep(0.02)
        running.remove(number)
        return Outcome(None, str(number))

    order = InOrder(ThreadPoolExecutor(2), 2)
    done = []
    for number in range(4):
        done += order.add(lambda n=number: store(n), number, ALONE_ABOVE + 1)
    done += order.rest()
    assert [end for _, end in done] == [0, 1, 2, 3]
    assert max(overlaps) == 1
