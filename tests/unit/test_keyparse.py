"""Named fields from sequencer object keys (sensors/keyparse.py)."""

from __future__ import annotations

import pytest

from sensors.keyparse import PARSERS, UnknownParserError, get_parser, parse_object_key

RUN = "runs/250304_A01234_0042_BHXXYYDSXC"
RUN_FIELDS = {
    "run": "250304_A01234_0042_BHXXYYDSXC",
    "run_date": "250304",
    "instrument": "A01234",
    "run_number": "0042",
    "flowcell": "BHXXYYDSXC",
}


# --------------------------------------------------------------------------- Illumina


def test_illumina_fastq_in_a_run_folder() -> None:
    key = f"{RUN}/Analysis/1/Data/fastq/NA12878_S1_L001_R1_001.fastq.gz"
    assert parse_object_key("illumina", key) == {
        "filename": "NA12878_S1_L001_R1_001.fastq.gz",
        "directory": f"{RUN}/Analysis/1/Data/fastq",
        **RUN_FIELDS,
        "kind": "fastq",
        "sample": "NA12878",
        "sample_number": "1",
        "lane": "1",
        "read": "R1",
        "chunk": "001",
    }


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        # sample names hold underscores: the pattern is anchored on the right
        (
            "Tumor_01_S12_L004_R2_001.fastq.gz",
            {"sample": "Tumor_01", "sample_number": "12", "lane": "4", "read": "R2"},
        ),
        ("A_S2_B_S3_L001_R1_001.fastq.gz", {"sample": "A_S2_B", "sample_number": "3"}),
        # --no-lane-splitting: no lane field at all
        ("NA12878_S1_R1_001.fastq.gz", {"sample": "NA12878", "read": "R1"}),
        # index reads, Undetermined, merged lanes written as L000, .fq.gz
        (
            "Undetermined_S0_L002_I1_001.fastq.gz",
            {"sample": "Undetermined", "sample_number": "0", "read": "I1"},
        ),
        ("NA12878_S1_L000_I2_001.fq.gz", {"lane": "0", "read": "I2"}),
        ("x_S1_L001_R1_002.fastq.gz", {"chunk": "002"}),
    ],
)
def test_illumina_fastq_names(filename: str, expected: dict[str, str]) -> None:
    fields = parse_object_key("illumina", f"fastq/{filename}")
    assert fields is not None and fields["kind"] == "fastq" and fields["directory"] == "fastq"
    assert {k: fields.get(k) for k in expected} == expected
    if "lane" not in expected and "_L" not in filename:
        assert "lane" not in fields
    assert "run" not in fields  # no run folder in the path


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("CopyComplete.txt", "marker"),
        ("RTAComplete.txt", "marker"),
        ("RTAComplete.xml", "marker"),
        ("RunCompletionStatus.xml", "marker"),
        ("SequencingComplete.txt", "marker"),
        ("SampleSheet.csv", "samplesheet"),
        ("SampleSheet_v2.csv", "samplesheet"),
        ("Reports/fastq_list.csv", "manifest"),
        ("RunInfo.xml", "file"),
    ],
)
def test_illumina_files_in_a_run_folder(name: str, kind: str) -> None:
    fields = parse_object_key("illumina", f"{RUN}/{name}")
    assert fields is not None
    assert fields["kind"] == kind and fields["filename"] == name.rsplit("/", 1)[-1]
    assert {k: fields[k] for k in RUN_FIELDS} == RUN_FIELDS


def test_illumina_run_folder_variants() -> None:
    nextseq = parse_object_key("illumina", "20231010_VH00123_12_AAAWXYZM5/CopyComplete.txt")
    assert nextseq is not None and (nextseq["run_date"], nextseq["flowcell"]) == ("20231010", "AAAWXYZM5")
    miseq = parse_object_key("illumina", "/data/250101_M01234_0007_000000000-ABCDE/RTAComplete.txt")
    assert miseq is not None and miseq["flowcell"] == "000000000-ABCDE"
    assert miseq["directory"] == "/data/250101_M01234_0007_000000000-ABCDE"


@pytest.mark.parametrize(
    "key",
    [
        "notes/readme.txt",
        "CopyComplete.txt",  # a marker outside a run folder says nothing about a run
        "NA12878_R1_001.fastq.gz",  # no S<n>
        "NA12878_S1_L001_R1_001.fastq",  # not gzipped (bcl-convert always gzips)
        "NA12878_S1_L1_R1_001.fastq.gz",  # lane is three digits
        "NA12878_S1_L001_R5_001.fastq.gz",
        "NA12878_S1_L001_R1_001.fastq.gz.md5",
        f"{RUN}/",  # the folder itself
    ],
)
def test_illumina_refuses_other_keys(key: str) -> None:
    assert parse_object_key("illumina", key) is None


# --------------------------------------------------------------------------- Oxford Nanopore

ONT_RUN = "data/Sample_Group/NA12878/20250603_1201_3E_PAA12345_e05460c6"
ONT_RUN_FIELDS = {
    "experiment": "Sample_Group",
    "sample": "NA12878",
    "run": "20250603_1201_3E_PAA12345_e05460c6",
    "run_start": "20250603_1201",
    "device": "3E",
    "flowcell": "PAA12345",
    "protocol_run_id": "e05460c6",
}


def test_ont_fastq_in_the_folder_layout() -> None:
    key = f"{ONT_RUN}/fastq_pass/barcode01/PAA12345_pass_barcode01_e05460c6_646d7417_12.fastq.gz"
    assert parse_object_key("ont", key) == {
        "filename": "PAA12345_pass_barcode01_e05460c6_646d7417_12.fastq.gz",
        "directory": f"{ONT_RUN}/fastq_pass/barcode01",
        **ONT_RUN_FIELDS,
        "kind": "fastq",
        "status": "pass",
        "barcode": "barcode01",
        "run_id": "646d7417",
        "batch": "12",
    }


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            "PBC012345_fail_2abce119_646d7417_0.fastq.gz",
            {"flowcell": "PBC012345", "status": "fail", "protocol_run_id": "2abce119", "run_id": "646d7417"},
        ),
        (
            "PBC012345_pass_unclassified_2abce119_646d7417_3.fastq.gz",
            {"barcode": "unclassified", "batch": "3"},
        ),
        # an older MinKNOW name with one id
        (
            "FAO43207_fail_e9e6d183_20.fastq.gz",
            {"run_id": "e9e6d183", "protocol_run_id": None, "barcode": None},
        ),
        ("FAL12345_pass_barcode07_abcdef12_1.fastq.gz", {"barcode": "barcode07", "run_id": "abcdef12"}),
        # an alias with underscores: the fastq_pass/<alias>/ folder names it
        ("fastq_pass/patient_7/PAA1_pass_patient_7_e05460c6_646d7417_0.fastq.gz", {"barcode": "patient_7"}),
        ("fastq_fail/barcode02/PAA1_fail_barcode02_e05460c6_646d7417_0.fq.gz", {"barcode": "barcode02"}),
        ("PAA1_pass_e05460c6_646d7417_0.fastq", {"run_id": "646d7417"}),
    ],
)
def test_ont_fastq_names(key: str, expected: dict[str, str | None]) -> None:
    fields = parse_object_key("ont", key)
    assert fields is not None and fields["kind"] == "fastq"
    assert {k: fields.get(k) for k in expected} == expected


def test_ont_reports() -> None:
    final = parse_object_key("ont", f"{ONT_RUN}/final_summary_PAA12345_e05460c6_646d7417.txt")
    assert final == {
        "filename": "final_summary_PAA12345_e05460c6_646d7417.txt",
        "directory": ONT_RUN,
        **ONT_RUN_FIELDS,
        "kind": "marker",
        "run_id": "646d7417",
    }
    top = parse_object_key(
        "ont", "20250603_1201_3E_PAA12345_e05460c6/final_summary_PAA12345_e05460c6_646d7417.txt"
    )
    assert top is not None and top["run"] == "20250603_1201_3E_PAA12345_e05460c6"
    assert "sample" not in top and "experiment" not in top  # no folders above the run folder
    summary = parse_object_key("ont", "sequencing_summary_PAA12345_e05460c6_646d7417.txt")
    assert summary is not None and summary["kind"] == "summary" and "run" not in summary
    sheet = parse_object_key("ont", f"{ONT_RUN}/sample_sheet_PAA12345_20250603_1201_e05460c6.csv")
    assert sheet is not None and sheet["kind"] == "samplesheet" and sheet["sample"] == "NA12878"


@pytest.mark.parametrize(
    "key",
    [
        "PAA12345_maybe_e05460c6_646d7417_0.fastq.gz",  # status is pass or fail
        "PAA12345_pass_e05460c6_646d7417_x.fastq.gz",  # batch is a number
        "PAA12345_pass_barcode01_646d74_0.fastq.gz",  # ids are 8 hex characters
        "PAA12345_pass_0.fastq.gz",
        "PAA12345_pass_barcode01_e05460c6_646d7417_0.pod5",
        f"{ONT_RUN}/report_PAA12345_20250603_1201_e05460c6.html",
        "final_summary_PAA12345.txt",
    ],
)
def test_ont_refuses_other_keys(key: str) -> None:
    assert parse_object_key("ont", key) is None


# --------------------------------------------------------------------------- MGI


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("V300046476_L01_1.fq.gz", {"flowcell": "V300046476", "lane": "1", "read": "R1", "barcode": None}),
        ("V300046476/L02/V300046476_L02_59_2.fq.gz", {"lane": "2", "barcode": "59", "read": "R2"}),
        ("V300000000_L04_undecoded_1.fq.gz", {"barcode": "undecoded", "lane": "4"}),
        ("E100012345_L1_7_2.fastq.gz", {"flowcell": "E100012345", "lane": "1", "barcode": "7"}),
    ],
)
def test_mgi_fastq_names(key: str, expected: dict[str, str | None]) -> None:
    fields = parse_object_key("mgi", key)
    assert fields is not None and fields["kind"] == "fastq"
    assert {k: fields.get(k) for k in expected} == expected


@pytest.mark.parametrize(
    "key",
    ["V300046476_L01_3.fq.gz", "V300046476_1.fq.gz", "V300046476_L01_59_1.fq.gz.md5", "BarcodeStat.txt"],
)
def test_mgi_refuses_other_keys(key: str) -> None:
    assert parse_object_key("mgi", key) is None


# --------------------------------------------------------------------------- registry

SAMPLES = [
    ("illumina", f"{RUN}/Data/NA12878_S1_L001_R1_001.fastq.gz"),
    ("illumina", f"{RUN}/CopyComplete.txt"),
    ("ont", f"{ONT_RUN}/fastq_pass/barcode01/PAA12345_pass_barcode01_e05460c6_646d7417_12.fastq.gz"),
    ("ont", f"{ONT_RUN}/final_summary_PAA12345_e05460c6_646d7417.txt"),
    ("ont", f"{ONT_RUN}/sample_sheet_PAA12345_20250603_1201_e05460c6.csv"),
    ("mgi", "V300046476/L02/V300046476_L02_59_2.fq.gz"),
]


@pytest.mark.parametrize(("parser", "key"), SAMPLES)
def test_parsers_give_only_the_fields_they_declare_and_no_empty_ones(parser: str, key: str) -> None:
    fields = parse_object_key(parser, key)
    assert fields is not None
    assert set(fields) <= PARSERS[parser].fields
    assert all(isinstance(value, str) for value in fields.values())
    assert all(value for name, value in fields.items() if name != "directory")


def test_unknown_parser_names_the_known_ones() -> None:
    with pytest.raises(
        UnknownParserError, match="unknown key parser 'pacbio'; known parsers: illumina, mgi, ont"
    ):
        parse_object_key("pacbio", "x")
    assert get_parser("ont").name == "ont"
    assert sorted(PARSERS) == ["illumina", "mgi", "ont"]
