"""Completion-marker fan-out, the pure part: run location, plans, manifests, keys, spec checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from sensors.engine import Fire
from sensors.event import Event
from sensors.fanout import (
    FANOUT_SOURCE,
    FanOutError,
    Plan,
    RunLocation,
    incomplete_fire,
    item_fire,
    item_key,
    locate_run,
    marker_dependency,
    marker_of,
    parse_fastq_list,
    parse_sample_sheet,
    plan_run,
    report_key,
)
from sensors.spec import FanOut, Sensor

RUN = "250304_A01234_0042_BHXXYYDSXC"
PREFIX = f"runs/{RUN}/"
T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


def fan_out(**fields: Any) -> FanOut:
    return FanOut.model_validate({"parser": "illumina", **fields})


def marker(key: str = f"{PREFIX}CopyComplete.txt", bucket: str = "seq", event_id: str = "m1") -> Event:
    data = {"bucket": bucket, "key": key, "eventName": "ObjectCreated:Put"}
    return Event(id=event_id, source="uploads", subject="run-files", type="s3", time=T0, data=data)


LOCATION = locate_run(marker())


def illumina(
    sample: str, number: int, lanes: tuple[int, ...] = (1, 2), reads: tuple[str, ...] = ("R1", "R2")
) -> list[str]:
    return [
        f"{PREFIX}Data/{sample}_S{number}_L{lane:03d}_{read}_001.fastq.gz" for lane in lanes for read in reads
    ]


def plan(
    keys: list[str], spec: FanOut | None = None, manifest: str | None = None, at: RunLocation = LOCATION
) -> Plan:
    return plan_run(spec or fan_out(), "seq", "align", at, [at.marker, *keys], manifest)


def url(key: str) -> str:
    return f"s3://seq/{key}"


# --------------------------------------------------------------------------- the run folder


@pytest.mark.parametrize(
    ("key", "prefix", "run"),
    [
        (f"{PREFIX}CopyComplete.txt", PREFIX, RUN),
        (f"{RUN}/CopyComplete.txt", f"{RUN}/", RUN),
        ("CopyComplete.txt", "", "seq"),  # a bucket per run: the bucket names it
        (
            "exp1/sampleA/20250304_1015_MN12345_FAV12345_a1b2c3d4/final_summary_FAV12345_a1b2c3d4_e5f6a7b8.txt",
            "exp1/sampleA/20250304_1015_MN12345_FAV12345_a1b2c3d4/",
            "20250304_1015_MN12345_FAV12345_a1b2c3d4",
        ),
    ],
)
def test_the_run_folder_is_the_markers_directory(key: str, prefix: str, run: str) -> None:
    location = locate_run(marker(key))
    assert (location.bucket, location.prefix, location.run, location.marker, location.time) == (
        "seq",
        prefix,
        run,
        key,
        T0,
    )


@pytest.mark.parametrize(
    "data", [None, "text", {"key": "a/CopyComplete.txt"}, {"bucket": "b"}, {"bucket": "b", "key": ""}]
)
def test_a_marker_without_bucket_and_key_names_no_run(data: Any) -> None:
    event = Event(id="x", source="hook", subject="e", type="webhook", time=T0, data=data)
    with pytest.raises(FanOutError, match="has no string 'bucket' and 'key'"):
        locate_run(event)


def test_the_marker_is_the_named_dependency_or_the_only_event() -> None:
    event = marker()
    assert marker_of(fan_out(), {"marker": event}) == ("marker", event)
    assert marker_of(fan_out(dependency="m"), {"m": event, "sheet": marker(event_id="s")}) == ("m", event)
    with pytest.raises(FanOutError, match="no event of the marker dependency 'm'"):
        marker_of(fan_out(dependency="m"), {"sheet": event})
    with pytest.raises(FanOutError, match=r"set fanOut\.dependency"):
        marker_of(fan_out(), {"a": event, "b": event})


# --------------------------------------------------------------------------- listing plans


def test_24_samples_by_2_lanes_with_undetermined() -> None:
    keys = [k for n in range(1, 25) for k in illumina(f"NA{12877 + n}", n)] + illumina("Undetermined", 0)
    result = plan(list(reversed(keys)))
    assert [item.group for item in result.items] == [f"NA{12877 + n}" for n in range(1, 25)]
    assert result.incomplete == () and result.skipped == ("Undetermined",)
    first = result.items[0].data
    lane1, lane2 = illumina("NA12878", 1, lanes=(1,)), illumina("NA12878", 1, lanes=(2,))
    assert first == {
        "sample": "NA12878",
        "sample_number": "1",
        "run": RUN,
        "bucket": "seq",
        "prefix": PREFIX,
        "marker": f"{PREFIX}CopyComplete.txt",
        "lanes": [
            {"lane": "1", "R1": lane1[0], "R2": lane1[1]},
            {"lane": "2", "R1": lane2[0], "R2": lane2[1]},
        ],
        "fastq1": f"{url(lane1[0])} {url(lane2[0])}",
        "fastq2": f"{url(lane1[1])} {url(lane2[1])}",
        "files": [*lane1, *lane2],
        "item_key": item_key("seq", "align", "seq", PREFIX, "NA12878"),
    }
    assert result.items[0].key == first["item_key"] and result.items[0].complete
    assert len({item.key for item in result.items}) == 24


LISTING_CASES: list[tuple[str, list[str], dict[str, Any], list[tuple[str, str]], list[tuple[str, str]]]] = [
    # (case, keys, spec, [(complete group, fastq1)], [(incomplete group, reason)])
    (
        "a lane with R1 but no R2",
        illumina("NA12878", 1)
        + [k for k in illumina("NA12880", 3) if not k.endswith("L002_R2_001.fastq.gz")],
        {},
        [("NA12878", "")],
        [("NA12880", f"sample NA12880 of run {RUN} is incomplete: lane 2 has R1 but no R2")],
    ),
    (
        "a lane with R2 only",
        illumina("A", 1, lanes=(1,)) + illumina("A", 1, lanes=(2,), reads=("R2",)),
        {},
        [],
        [("A", f"sample A of run {RUN} is incomplete: lane 2 has R2 but no R1")],
    ),
    (
        "sample names with underscores",
        illumina("Tumor_01_FFPE", 2) + illumina("Tumor_01", 1),
        {},
        [("Tumor_01", ""), ("Tumor_01_FFPE", "")],
        [],
    ),
    (
        "no lane splitting",
        [f"{PREFIX}Data/S_x_S1_R1_001.fastq.gz", f"{PREFIX}Data/S_x_S1_R2_001.fastq.gz"],
        {},
        [("S_x", url(f"{PREFIX}Data/S_x_S1_R1_001.fastq.gz"))],
        [],
    ),
    (
        "no lane splitting, R2 missing",
        [f"{PREFIX}Data/S_x_S1_R1_001.fastq.gz"],
        {},
        [],
        [("S_x", f"sample S_x of run {RUN} is incomplete: the lane-merged files have R1 but no R2")],
    ),
    (
        "index reads are not asked for",
        illumina("A", 1, reads=("R1", "I1", "R2", "I2")),
        {},
        [("A", f"{url(illumina('A', 1)[0])} {url(illumina('A', 1)[2])}")],
        [],
    ),
    (
        "a single-end run",
        illumina("A", 1, reads=("R1",)),
        {"reads": ["R1"]},
        [("A", f"{url(illumina('A', 1, reads=('R1',))[0])} {url(illumina('A', 1, reads=('R1',))[1])}")],
        [],
    ),
    (
        "the same file in two folders",
        [*illumina("A", 1, lanes=(1,)), f"{PREFIX}Analysis/1/Data/A_S1_L001_R1_001.fastq.gz"],
        {},
        [],
        [
            (
                "A",
                f"sample A of run {RUN} is incomplete: lane 1 R1 has 2 files: "
                f"{PREFIX}Analysis/1/Data/A_S1_L001_R1_001.fastq.gz, {PREFIX}Data/A_S1_L001_R1_001.fastq.gz",
            )
        ],
    ),
    (
        "a second chunk without R2",
        [*illumina("A", 1, lanes=(1,)), f"{PREFIX}Data/A_S1_L001_R1_002.fastq.gz"],
        {},
        [],
        [("A", f"sample A of run {RUN} is incomplete: lane 1 chunk 002 has R1 but no R2")],
    ),
    (
        "not FASTQ, other reads, fail reads are left alone",
        [f"{PREFIX}RunInfo.xml", f"{PREFIX}Data/notes.txt", f"{PREFIX}InterOp/x.bin"],
        {},
        [],
        [],
    ),
    (
        "MGI _1/_2 per barcode, undecoded skipped",
        [
            f"{PREFIX}L01/V300046476_L01_59_1.fq.gz",
            f"{PREFIX}L01/V300046476_L01_59_2.fq.gz",
            f"{PREFIX}L02/V300046476_L02_59_1.fq.gz",
            f"{PREFIX}L02/V300046476_L02_59_2.fq.gz",
            f"{PREFIX}L01/V300046476_L01_60_1.fq.gz",
            f"{PREFIX}L01/V300046476_L01_undecoded_1.fq.gz",
            f"{PREFIX}L01/V300046476_L01_undecoded_2.fq.gz",
        ],
        {"parser": "mgi"},
        [
            (
                "59",
                f"s3://seq/{PREFIX}L01/V300046476_L01_59_1.fq.gz s3://seq/{PREFIX}L02/V300046476_L02_59_1.fq.gz",
            )
        ],
        [("60", f"barcode 60 of run {RUN} is incomplete: lane 1 has R1 but no R2")],
    ),
]


@pytest.mark.parametrize(
    ("case", "keys", "spec", "complete", "incomplete"), LISTING_CASES, ids=[c[0] for c in LISTING_CASES]
)
def test_listing_plans(
    case: str,
    keys: list[str],
    spec: dict[str, Any],
    complete: list[tuple[str, str]],
    incomplete: list[tuple[str, str]],
) -> None:
    result = plan(keys, fan_out(**spec))
    assert len(result.items) == len(complete)
    got = [
        (i.group, i.data["fastq1"] if fastq1 else "")
        for i, (_, fastq1) in zip(result.items, complete, strict=True)
    ]
    assert got == complete  # an empty fastq1 in the table: not compared
    assert [(i.group, i.reason) for i in result.incomplete] == incomplete
    for item in result.incomplete:
        assert item.data["missing"] and item.missing == tuple(item.data["missing"])
        assert not item.complete


def test_skipped_groups_are_not_items() -> None:
    result = plan(
        illumina("Undetermined", 0) + illumina("PhiX", 9) + illumina("A", 1), fan_out(skip=["PhiX"])
    )
    assert [i.group for i in result.items] == ["Undetermined", "A"]  # skip replaces the default list
    assert result.skipped == ("PhiX",)


def test_incomplete_items_carry_what_they_have_and_what_is_missing() -> None:
    keys = [k for k in illumina("NA12880", 3) if not k.endswith("L002_R2_001.fastq.gz")]
    (item,) = plan(keys).incomplete
    assert item.missing == ("lane 2 R2",)
    assert item.data["lanes"][1] == {"lane": "2", "R1": keys[2]}
    assert item.data["fastq2"] == url(keys[1])
    assert item.data["files"] == keys


def test_ont_barcodes_are_single_files() -> None:
    run = "exp1/pool/20250304_1015_MN12345_FAV12345_a1b2c3d4"
    summary = f"{run}/final_summary_FAV12345_a1b2c3d4_e5f6a7b8.txt"
    at = locate_run(marker(summary))

    def fq(status: str, barcode: str, batch: int) -> str:
        return (
            f"{run}/fastq_{status}/{barcode}/FAV12345_{status}_{barcode}_a1b2c3d4_e5f6a7b8_{batch}.fastq.gz"
        )

    keys = [fq("pass", "barcode02", 0), fq("pass", "barcode01", 1), fq("pass", "barcode01", 0)]
    keys += [fq("fail", "barcode01", 0), fq("pass", "unclassified", 0), f"{run}/sequencing_summary_x.txt"]
    result = plan(keys, FanOut.model_validate({"parser": "ont"}), at=at)
    assert [i.group for i in result.items] == ["barcode01", "barcode02"]
    assert result.skipped == ("unclassified",) and result.incomplete == ()
    data = result.items[0].data
    assert data["barcode"] == "barcode01" and "lanes" not in data and "fastq1" not in data
    assert data["files"] == [fq("pass", "barcode01", 0), fq("pass", "barcode01", 1)]
    assert data["fastq"] == " ".join(url(k) for k in data["files"])
    assert data["run"] == "20250304_1015_MN12345_FAV12345_a1b2c3d4"


# --------------------------------------------------------------------------- manifests


FASTQ_LIST = """\
RGID,RGSM,RGLB,Lane,Read1File,Read2File
AAAA.CCCC.1,NA12878,UnknownLibrary,1,/mnt/out/NA12878_S1_L001_R1_001.fastq.gz,/mnt/out/NA12878_S1_L001_R2_001.fastq.gz
AAAA.CCCC.2,NA12878,UnknownLibrary,2,/mnt/out/NA12878_S1_L002_R1_001.fastq.gz,/mnt/out/NA12878_S1_L002_R2_001.fastq.gz
GGGG.TTTT.1,NA12880,UnknownLibrary,1,NA12880_S2_L001_R1_001.fastq.gz,NA12880_S2_L001_R2_001.fastq.gz
GGGG.TTTT.2,NA12880,UnknownLibrary,2,NA12880_S2_L002_R1_001.fastq.gz,NA12880_S2_L002_R2_001.fastq.gz
CCCC.GGGG.1,Half_R2,UnknownLibrary,1,Half_R2_S4_L001_R1_001.fastq.gz,Half_R2_S4_L001_R2_001.fastq.gz
NNNN.NNNN.1,Undetermined,UnknownLibrary,1,Undetermined_S0_L001_R1_001.fastq.gz,Undetermined_S0_L001_R2_001.fastq.gz
"""


def test_fastq_list_rows() -> None:
    rows = parse_fastq_list("\ufeff" + FASTQ_LIST)
    assert [(r.sample, r.lane, dict(r.files)) for r in rows[:1]] == [
        (
            "NA12878",
            "1",
            {
                "R1": "/mnt/out/NA12878_S1_L001_R1_001.fastq.gz",
                "R2": "/mnt/out/NA12878_S1_L001_R2_001.fastq.gz",
            },
        )
    ]
    assert [r.sample for r in rows] == ["NA12878", "NA12878", "NA12880", "NA12880", "Half_R2", "Undetermined"]
    single = parse_fastq_list("RGID,RGSM,RGLB,Lane,Read1File,Read2File\nx,S,L,001,S_R1.fq.gz,\n,,,,,\n")
    assert [(r.sample, r.lane, dict(r.files)) for r in single] == [("S", "1", {"R1": "S_R1.fq.gz"})]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("RGID,Lane,Read1File\nx,1,a.fq.gz\n", "has no RGSM column"),
        ("RGSM,Lane\nx,1\n", "has no Read1File column"),
    ],
)
def test_fastq_list_problems(text: str, message: str) -> None:
    with pytest.raises(FanOutError, match=message):
        parse_fastq_list(text, "Reports/fastq_list.csv")


def test_manifest_checks_every_listed_file() -> None:
    keys = (
        illumina("NA12878", 1) + illumina("NA12880", 2, lanes=(1,)) + illumina("Undetermined", 0, lanes=(1,))
    )
    keys += [f"{PREFIX}Data/Half_R2_S4_L001_R1_001.fastq.gz", *illumina("Extra", 5)]
    result = plan(keys, fan_out(source="manifest"), FASTQ_LIST)
    assert [i.group for i in result.items] == ["NA12878"]
    assert result.items[0].data["fastq2"] == " ".join(url(k) for k in illumina("NA12878", 1)[1::2])
    assert result.items[0].data["sample_number"] == "1"
    assert [(i.group, i.reason) for i in result.incomplete] == [
        (
            "NA12880",
            f"sample NA12880 of run {RUN} is incomplete: lane 2 is listed in Reports/fastq_list.csv "
            "but none of its files is in the bucket "
            "(NA12880_S2_L002_R1_001.fastq.gz, NA12880_S2_L002_R2_001.fastq.gz)",
        ),
        (
            "Half_R2",
            f"sample Half_R2 of run {RUN} is incomplete: lane 1 R2 Half_R2_S4_L001_R2_001.fastq.gz is listed "
            "in Reports/fastq_list.csv but not in the bucket",
        ),
    ]
    assert result.incomplete[0].missing == ("lane 2",)
    assert result.skipped == ("Undetermined",) and result.ignored == ("Extra",)


def test_manifest_paths_match_by_basename_and_relative_paths_break_ties() -> None:
    text = (
        "RGID,RGSM,RGLB,Lane,Read1File,Read2File\n"
        "x,A,L,1,./A_S1_L001_R1_001.fastq.gz,A_S1_L001_R2_001.fastq.gz\n"
    )
    doubled = [f"{PREFIX}Reports/A_S1_L001_R1_001.fastq.gz", f"{PREFIX}Other/A_S1_L001_R1_001.fastq.gz"]
    keys = [*doubled, f"{PREFIX}Other/A_S1_L001_R2_001.fastq.gz", f"{PREFIX}Again/A_S1_L001_R2_001.fastq.gz"]
    (item,) = plan(keys, fan_out(source="manifest"), text).incomplete
    assert item.data["lanes"] == [{"lane": "1", "R1": doubled[0]}]  # next to the manifest
    assert item.reason.endswith(
        f"lane 1 R2 A_S1_L001_R2_001.fastq.gz matches 2 objects: {PREFIX}Again/A_S1_L001_R2_001.fastq.gz, "
        f"{PREFIX}Other/A_S1_L001_R2_001.fastq.gz"
    )


def test_manifest_without_a_read_the_spec_needs() -> None:
    text = "RGID,RGSM,RGLB,Lane,Read1File,Read2File\nx,A,L,1,A_S1_L001_R1_001.fastq.gz,\n"
    (item,) = plan(illumina("A", 1, lanes=(1,)), fan_out(source="manifest"), text).incomplete
    assert item.reason.endswith("lane 1 has no R2 file in Reports/fastq_list.csv")
    (ok,) = plan(illumina("A", 1, lanes=(1,)), fan_out(source="manifest", reads=["R1"]), text).items
    assert ok.data["fastq1"] == url(illumina("A", 1, lanes=(1,))[0])


def test_a_manifest_source_needs_its_text() -> None:
    with pytest.raises(FanOutError, match=r"needs the text of Reports/fastq_list\.csv"):
        plan([], fan_out(source="manifest"))


SHEET_V1 = """\
[Header],,,
IEMFileVersion,5,,
[Reads],,,
151,,,
[Data],,,
Lane,Sample_ID,Sample_Name,index
1,NA12878,,ACGT
2,NA12878,,ACGT
1,NA12880,,TTTT
2,NA12880,,TTTT
1,Missing_One,,GGGG
"""

SHEET_V2 = """\
[Header]
FileFormatVersion,2
[BCLConvert_Settings]
SoftwareVersion,4.2.7
[BCLConvert_Data]
Sample_ID,Index,Index2
NA12878,ACGT,TTTT
NA12880,GGGG,CCCC
"""


def test_sample_sheets_v1_and_v2() -> None:
    v1 = parse_sample_sheet(SHEET_V1)
    assert [(r.sample, r.lane) for r in v1] == [
        ("NA12878", "1"),
        ("NA12878", "2"),
        ("NA12880", "1"),
        ("NA12880", "2"),
        ("Missing_One", "1"),
    ]
    assert [(r.sample, r.lane) for r in parse_sample_sheet(SHEET_V2)] == [
        ("NA12878", None),
        ("NA12880", None),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[Header]\nx,1\n",
            r"no \[BCLConvert_Data\] \(v2\) or \[Data\] \(v1\) section; its sections: Header",
        ),
        ("[Data]\nLane,Name\n1,x\n", r"section \[Data\] has no Sample_ID column"),
        ("", "its sections: none"),
    ],
)
def test_sample_sheet_problems(text: str, message: str) -> None:
    with pytest.raises(FanOutError, match=message):
        parse_sample_sheet(text)


def test_sample_sheet_lanes_and_samples_must_have_files() -> None:
    keys = illumina("NA12878", 1) + illumina("NA12880", 2, lanes=(1,)) + illumina("NotInSheet", 7)
    keys += illumina("Undetermined", 0)
    result = plan(keys, fan_out(source="sampleSheet"), SHEET_V1)
    assert [i.group for i in result.items] == ["NA12878"]
    assert [(i.group, i.reason) for i in result.incomplete] == [
        (
            "NA12880",
            f"sample NA12880 of run {RUN} is incomplete: lane 2 is in SampleSheet.csv but none of its files "
            "is in the bucket",
        ),
        (
            "Missing_One",
            f"sample Missing_One of run {RUN} is incomplete: it is in SampleSheet.csv "
            "but no FASTQ file of it is in the bucket",
        ),
    ]
    assert result.incomplete[1].data["files"] == [] and result.incomplete[1].data["fastq1"] == ""
    assert result.ignored == ("NotInSheet",)
    # no Lane column: any lanes, each complete; merged lanes satisfy a sheet with lanes
    v2 = plan(
        illumina("NA12878", 1, lanes=(3,)) + illumina("NA12880", 2), fan_out(source="sampleSheet"), SHEET_V2
    )
    assert [i.group for i in v2.items] == ["NA12878", "NA12880"]
    merged = [f"{PREFIX}Data/NA12878_S1_R1_001.fastq.gz", f"{PREFIX}Data/NA12878_S1_R2_001.fastq.gz"]
    sheet = "[Data]\nLane,Sample_ID\n1,NA12878\n2,NA12878\n"
    assert [i.group for i in plan(merged, fan_out(source="sampleSheet"), sheet).items] == ["NA12878"]
    partial = plan(illumina("NA12878", 1, reads=("R1",)), fan_out(source="sampleSheet"), sheet)
    assert partial.incomplete[0].reason.endswith("lane 1 has R1 but no R2; lane 2 has R1 but no R2")


# --------------------------------------------------------------------------- identity and firings


def test_item_keys_name_the_run_and_the_group_not_the_marker_event() -> None:
    first = plan(illumina("A", 1), at=locate_run(marker(event_id="m1")))
    again = plan(illumina("A", 1), at=locate_run(marker(event_id="m2")))
    assert first.items[0].key == again.items[0].key
    base = ("seq", "align", "seq", PREFIX, "A")
    keys = {
        item_key(*base),
        item_key("other", *base[1:]),
        item_key("seq", "other", *base[2:]),
        item_key("seq", "align", "other", PREFIX, "A"),
        item_key("seq", "align", "seq", "runs/other/", "A"),
        item_key("seq", "align", "seq", PREFIX, "B"),
    }
    assert len(keys) == 6 and all(len(k) == 32 for k in keys)
    assert report_key(item_key(*base)) not in keys


def test_item_fires_carry_the_marker_and_the_item() -> None:
    event = marker()
    parent = Fire("seq", "align", {"marker": event}, "parent-key")
    result = plan(illumina("A", 1) + illumina("B", 2, lanes=(1,), reads=("R1",)))
    fire = item_fire(parent, result.items[0], "sample", T0)
    assert (fire.sensor, fire.trigger, fire.key) == ("seq", "align", result.items[0].key)
    assert fire.events["marker"] is event
    item = fire.events["sample"]
    assert (item.id, item.source, item.subject, item.time, item.data) == (
        result.items[0].key,
        FANOUT_SOURCE,
        "sample",
        T0,
        dict(result.items[0].data),
    )
    assert fire.event_ids == ("m1", result.items[0].key)
    notify = incomplete_fire(parent, result.incomplete[0], "sample", T0, "notify-lab")
    assert notify.trigger == "notify-lab" and notify.events["sample"].data["reason"]
    assert notify.key == item_key("seq", "notify-lab", "seq", PREFIX, "B")
    # a replayed item's events already hold an item: it is replaced, not doubled
    assert list(item_fire(fire, result.items[0], "sample", T0).events) == ["marker", "sample"]


# --------------------------------------------------------------------------- the spec


def sensor(fan_out_spec: dict[str, Any], conditions: str = "marker", **template: Any) -> Sensor:
    trigger = {
        "template": {"name": "align", "conditions": conditions, "log": {}, "fanOut": fan_out_spec, **template}
    }
    return Sensor.model_validate(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Sensor",
            "metadata": {"name": "seq"},
            "spec": {
                "dependencies": [
                    {"name": "marker", "eventSourceName": "uploads", "eventName": "run-files"},
                    {"name": "sheet", "eventSourceName": "uploads", "eventName": "run-files"},
                ],
                "triggers": [trigger, {"template": {"name": "other", "conditions": "sheet", "log": {}}}],
            },
        }
    )


def test_defaults_per_parser() -> None:
    spec = sensor({"parser": "illumina"}).spec.triggers[0].template.fan_out
    assert spec is not None
    assert (spec.group_field, spec.read_names, spec.skipped, spec.as_, spec.source, spec.manifest) == (
        "sample",
        ("R1", "R2"),
        frozenset({"Undetermined"}),
        "sample",
        "listing",
        None,
    )
    ont = FanOut.model_validate({"parser": "ont"})
    assert (ont.group_field, ont.read_names, ont.skipped) == ("barcode", (), frozenset({"unclassified"}))
    mgi = FanOut.model_validate({"parser": "mgi", "as": "lib"})
    assert (mgi.group_field, mgi.read_names, mgi.skipped, mgi.as_) == (
        "barcode",
        ("R1", "R2"),
        frozenset({"undecoded"}),
        "lib",
    )
    assert fan_out(source="manifest").manifest == "Reports/fastq_list.csv"
    assert fan_out(source="sampleSheet").manifest == "SampleSheet.csv"
    assert (
        fan_out(source="manifest", manifestPath="Out/Reports/fastq_list.csv").manifest
        == "Out/Reports/fastq_list.csv"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"parser": "pacbio"}, "unknown key parser 'pacbio'; known parsers: illumina, mgi, ont"),
        (
            {"parser": "illumina", "groupBy": "barcode"},
            "groupBy 'barcode' is not a field of the illumina parser",
        ),
        (
            {"parser": "illumina", "reads": ["R1", "R9"]},
            "reads: 'R9' is not a read the illumina parser gives",
        ),
        ({"parser": "ont", "reads": ["R1"]}, "its files are single reads"),
        ({"parser": "illumina", "reads": ["R1", "R1"]}, "names a read twice"),
        ({"parser": "ont", "source": "manifest"}, "it needs parser: illumina and groupBy: sample"),
        (
            {"parser": "illumina", "groupBy": "lane", "source": "sampleSheet"},
            "needs parser: illumina and groupBy",
        ),
        ({"parser": "illumina", "source": "bcl"}, "'listing', 'manifest' or 'sampleSheet'"),
        ({"parser": "illumina", "manifestPath": "x.csv"}, "manifestPath is only used with source"),
        (
            {"parser": "illumina", "source": "manifest", "manifestPath": "/abs.csv"},
            "relative to the run folder",
        ),
        (
            {"parser": "illumina", "source": "manifest", "manifestPath": "a/../b.csv"},
            "relative to the run folder",
        ),
        ({"parser": "illumina", "as": "-x"}, "as '-x' must be a name as a dependency's"),
        ({"parser": "illumina", "as": "marker"}, "fanOut.as is 'marker', which is also a dependency's name"),
        (
            {"parser": "illumina", "dependency": "sheet"},
            "fanOut.dependency 'sheet' is not a dependency of the trigger's conditions",
        ),
        (
            {"parser": "illumina", "s3": {"accessKey": {"name": "a", "key": "b"}}},
            "accessKey and secretKey must be set together",
        ),
        (
            {"parser": "illumina", "onIncomplete": {"template": {"name": "other", "log": {}}}},
            "onIncomplete is named 'other'",
        ),
        (
            {"parser": "illumina", "onIncomplete": {"template": {"name": "align", "log": {}}}},
            "onIncomplete is named 'align'",
        ),
        (
            {
                "parser": "illumina",
                "onIncomplete": {"template": {"name": "n", "conditions": "marker", "log": {}}},
            },
            "it has no conditions or conditionsReset of its own",
        ),
        (
            {
                "parser": "illumina",
                "onIncomplete": {"template": {"name": "n", "log": {}, "fanOut": {"parser": "ont"}}},
            },
            "onIncomplete cannot have a correlation or fanOut of its own",
        ),
        ({"parser": "illumina", "color": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_fan_outs_are_refused_with_the_reason(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        sensor(spec)
    assert message in str(info.value)


def test_the_marker_dependency_must_be_said_when_the_conditions_name_several() -> None:
    with pytest.raises(ValidationError, match=r"fanOut\.dependency is not set and the conditions name 2"):
        sensor({"parser": "illumina"}, conditions="marker && sheet")
    spec = sensor({"parser": "illumina", "dependency": "marker"}, conditions="marker && sheet")
    fan = spec.spec.triggers[0].template.fan_out
    assert fan is not None and marker_dependency(fan, "marker && sheet", ["marker", "sheet"]) == "marker"
    plain = FanOut.model_validate({"parser": "illumina"})
    assert marker_dependency(plain, "marker", ["marker", "sheet"]) == "marker"
    assert marker_dependency(plain, "marker || sheet", ["marker", "sheet"]) is None
    assert marker_dependency(plain, "marker &&", ["marker"]) is None


def test_fan_out_does_not_combine_with_correlation_or_conditions_reset() -> None:
    correlation = {"window": "1h", "dependencies": {"marker": {"path": "key"}}}
    with pytest.raises(ValidationError, match="cannot have both 'fanOut' and 'correlation'"):
        sensor({"parser": "illumina"}, correlation=correlation)
    with pytest.raises(ValidationError, match="'fanOut' cannot have 'conditionsReset'"):
        sensor({"parser": "illumina"}, conditionsReset=[{"byTime": {"cron": "0 0 * * *"}}])


def test_unparsable_conditions_are_left_to_the_conditions_check() -> None:
    loaded = sensor({"parser": "illumina"}, conditions="marker &&")
    assert loaded.spec.triggers[0].template.fan_out is not None


def test_odd_rows_and_keys_are_passed_over() -> None:
    rows = parse_fastq_list("RGID,RGSM,Lane,Read1File\nx,,1,a.fq.gz\ny,S,,S_R1.fq.gz\n")
    assert [(r.sample, r.lane) for r in rows] == [("S", None)]
    sheet = parse_sample_sheet("loose,line\n[Data]\nSample_ID,Lane\n,1\nA\n")
    assert [(r.sample, r.lane) for r in sheet] == [("A", None)]
    # an MGI lane that is not demultiplexed has no barcode: nothing to group it by
    result = plan([f"{PREFIX}V300046476_L01_1.fq.gz"], fan_out(parser="mgi"))
    assert (result.items, result.incomplete, result.find("59")) == ((), (), None)
    listed = plan(illumina("A", 1))
    assert listed.find("A") is listed.items[0]


def test_on_incomplete_names_must_differ_from_on_expire_names() -> None:
    correlated = {
        "template": {
            "name": "pairs",
            "conditions": "sheet",
            "log": {},
            "correlation": {
                "window": "1h",
                "dependencies": {"sheet": {"path": "key"}},
                "onExpire": {"template": {"name": "notify", "log": {}}},
            },
        }
    }
    fan = {"parser": "illumina", "onIncomplete": {"template": {"name": "notify", "log": {}}}}
    doc = sensor(fan).model_dump(by_alias=True, exclude_none=True)
    doc["spec"]["triggers"][1] = correlated
    with pytest.raises(ValidationError, match="onIncomplete is named 'notify'"):
        Sensor.model_validate(doc)
