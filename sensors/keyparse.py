r"""Named fields from sequencer object keys: ``parse_object_key("illumina", key) -> {"sample": ...}``.

A parser takes an object key (a path such as
``runs/250304_A01234_0042_BHXXYYDSXC/Data/NA12878_S1_L001_R1_001.fastq.gz``, already URL-decoded
by the source) and returns its named fields as strings, or ``None`` when the key
is not a file that the platform writes. Fields that the key does not spell (the lane of a
``--no-lane-splitting`` FASTQ, the barcode of a non-barcoded ONT run) are left out, never empty.
Pure: no I/O, no clock; the patterns are compiled once, when this module is imported.

Every parser gives ``filename`` (the last path segment), ``directory`` (what comes before it, ``""``
at the top) and ``kind``. The patterns follow ``payloads-and-sequencers.md`` §2:

``illumina`` (bcl-convert / bcl2fastq / BaseSpace)
    FASTQ ``<sample>_S<n>_L<lane>_<read>_<chunk>.fastq.gz`` (also ``.fq.gz``), right-anchored
    because sample names hold underscores; without ``_L<lane>`` when lanes are merged; index reads
    ``I1``/``I2``: ``kind=fastq``, ``sample``, ``sample_number`` (``0`` is ``Undetermined``), ``lane``
    (``1`` for ``L001``: the number as the sample sheet and ``fastq_list.csv`` write it; ``0`` for
    ``L000``), ``read`` (``R1``, ``R2``, ``I1``, ``I2``...), ``chunk`` (``001``).
    A path segment that is a run folder ``YYMMDD_<instrument>_<run number>_<flowcell>`` (also
    ``YYYYMMDD_`` as NextSeq 1000/2000 write it) adds ``run`` (the folder name), ``run_date``,
    ``instrument``, ``run_number`` and ``flowcell`` (as written, with the A/B position letter of a
    NovaSeq). Inside a run folder, files other than FASTQ are recognised too: ``kind=marker`` for
    completion markers (``CopyComplete.txt``, ``RTAComplete.txt``/``.xml``, ``RunCompletionStatus.xml``,
    ``SequencingComplete.txt``, ``Secondary_Analysis_Complete.txt``), ``kind=samplesheet`` for
    ``SampleSheet*.csv``, ``kind=manifest`` for ``fastq_list.csv``, ``kind=file`` for anything else.

``ont`` (Oxford Nanopore, MinKNOW)
    FASTQ ``<flowcell>_<pass|fail>[_<alias>]_[<protocol run>_]<run>_<batch>.fastq.gz``:
    ``kind=fastq``, ``flowcell``, ``status`` (``pass``/``fail``), ``barcode`` (``barcode01``,
    ``unclassified``, or the alias; taken from the ``fastq_pass/<alias>/`` folder when the file sits in
    one), ``protocol_run_id`` and ``run_id`` (8 hex characters each; a name with one id gives ``run_id``),
    ``batch``. ``final_summary_<flowcell>_<protocol run>_<run>.txt`` is ``kind=marker`` (written
    once all files of the run are written), ``sequencing_summary_...txt`` ``kind=summary``,
    ``sample_sheet_...csv`` ``kind=samplesheet``. A run folder
    ``<experiment>/<sample>/<YYYYMMDD>_<HHMM>_<device>_<flowcell>_<protocol run>`` in the path adds
    ``experiment``, ``sample``, ``run``, ``run_start``, ``device``, ``flowcell``, ``protocol_run_id``.

``mgi`` (MGI / BGI DNBSEQ)
    ``<flowcell>_L0<lane>[_<barcode>]_<1|2>.fq.gz`` (also ``.fastq.gz``): ``kind=fastq``,
    ``flowcell``, ``lane`` (``1`` for ``L01``), ``barcode`` (``59``, ``undecoded``; absent when the
    lane is not demultiplexed), ``read`` normalised to ``R1``/``R2`` (from ``_1``/``_2``) so that keys
    and filters read the same for every platform.

:data:`PARSERS` lists the parsers with every field each may give (:attr:`KeyParser.fields`), which
lets a manifest be checked when it loads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["PARSERS", "KeyParser", "UnknownParserError", "get_parser", "parse_object_key"]


class UnknownParserError(ValueError):
    """A parser name that :data:`PARSERS` does not have; the message lists the known ones."""


@dataclass(frozen=True, slots=True)
class KeyParser:
    """A named parser: ``parse(key)`` gives the fields or ``None``; ``fields`` every field it may give."""

    name: str
    fields: frozenset[str]
    parse: Callable[[str], dict[str, str] | None]
    description: str


def _split(key: str) -> tuple[str, str, list[str]]:
    """``(directory, filename, directory segments)``; a leading ``/`` and empty segments are ignored."""
    directory, _, filename = key.rpartition("/")
    return directory, filename, [part for part in directory.split("/") if part]


def _number(text: str) -> str:
    """``"001"`` -> ``"1"``, ``"000"`` -> ``"0"``."""
    return str(int(text))


# --------------------------------------------------------------------------- Illumina

_ILLUMINA_FASTQ: Final = re.compile(
    r"(?P<sample>.+)_S(?P<sample_number>\d+)(?:_L(?P<lane>\d{3}))?_(?P<read>[RI][1-4])_(?P<chunk>\d{3})"
    r"\.f(?:ast)?q\.gz",
    re.ASCII,
)
_ILLUMINA_RUN: Final = re.compile(
    r"(?P<run_date>\d{6}|\d{8})_(?P<instrument>[A-Za-z0-9-]+)_(?P<run_number>\d+)_(?P<flowcell>[A-Za-z0-9-]+)",
    re.ASCII,
)
_ILLUMINA_MARKERS: Final = frozenset(
    {
        "CopyComplete.txt",
        "RTAComplete.txt",
        "RTAComplete.xml",
        "RunCompletionStatus.xml",
        "SequencingComplete.txt",
        "Secondary_Analysis_Complete.txt",
    }
)
_ILLUMINA_SAMPLESHEET: Final = re.compile(r"SampleSheet.*\.csv", re.ASCII)


def _illumina_run(segments: list[str]) -> dict[str, str]:
    for segment in reversed(segments):  # the innermost run folder (Analysis/<n>/... sits below it)
        match = _ILLUMINA_RUN.fullmatch(segment)
        if match is not None:
            return {"run": segment, **match.groupdict()}
    return {}


def parse_illumina(key: str) -> dict[str, str] | None:
    """Fields of an Illumina FASTQ key or of a file in an Illumina run folder; ``None`` otherwise."""
    directory, filename, segments = _split(key)
    fields: dict[str, str] = {"filename": filename, "directory": directory}
    fields.update(_illumina_run(segments))
    match = _ILLUMINA_FASTQ.fullmatch(filename)
    if match is not None:
        fields["kind"] = "fastq"
        fields["sample"] = match["sample"]
        fields["sample_number"] = _number(match["sample_number"])
        if match["lane"] is not None:
            fields["lane"] = _number(match["lane"])
        fields["read"] = match["read"]
        fields["chunk"] = match["chunk"]
        return fields
    if "run" not in fields or not filename:
        return None
    if filename in _ILLUMINA_MARKERS:
        fields["kind"] = "marker"
    elif _ILLUMINA_SAMPLESHEET.fullmatch(filename):
        fields["kind"] = "samplesheet"
    elif filename == "fastq_list.csv":
        fields["kind"] = "manifest"
    else:
        fields["kind"] = "file"
    return fields


# --------------------------------------------------------------------------- Oxford Nanopore

_HEX8: Final = re.compile(r"[0-9a-f]{8}", re.ASCII)
_ONT_FASTQ_SUFFIX: Final = re.compile(r"\.f(?:ast)?q(?:\.gz)?", re.ASCII)
_ONT_STATUS: Final = frozenset({"pass", "fail"})
_ONT_READ_FOLDER: Final = re.compile(r"fastq_(?P<status>pass|fail)", re.ASCII)
_ONT_REPORT: Final = re.compile(
    r"(?P<report>final_summary|sequencing_summary)_(?P<flowcell>[A-Za-z0-9-]+)_"
    r"(?P<protocol_run_id>[0-9a-f]{8})_(?P<run_id>[0-9a-f]{8})\.txt",
    re.ASCII,
)
_ONT_SAMPLE_SHEET: Final = re.compile(
    r"sample_sheet_(?P<flowcell>[A-Za-z0-9-]+)_\d{8}_\d{4}_(?P<protocol_run_id>[0-9a-f]{8})\.csv", re.ASCII
)
_ONT_RUN: Final = re.compile(
    r"(?P<date>\d{8})_(?P<time>\d{4})_(?P<device>[A-Za-z0-9_-]+)_(?P<flowcell>[A-Za-z0-9-]+)_"
    r"(?P<protocol_run_id>[0-9a-f]{8})",
    re.ASCII,
)
_ONT_REPORT_KINDS: Final = {"final_summary": "marker", "sequencing_summary": "summary"}


def _ont_run(segments: list[str]) -> dict[str, str]:
    for index in range(len(segments) - 1, -1, -1):
        match = _ONT_RUN.fullmatch(segments[index])
        if match is None:
            continue
        fields = {
            "run": segments[index],
            "run_start": f"{match['date']}_{match['time']}",
            "device": match["device"],
            "flowcell": match["flowcell"],
            "protocol_run_id": match["protocol_run_id"],
        }
        if index >= 1:
            fields["sample"] = segments[index - 1]
        if index >= 2:
            fields["experiment"] = segments[index - 2]
        return fields
    return {}


def _ont_fastq(filename: str) -> dict[str, str] | None:
    suffix = _ONT_FASTQ_SUFFIX.search(filename)
    if suffix is None or suffix.end() != len(filename):
        return None
    tokens = filename[: suffix.start()].split("_")
    # <flowcell>_<status>[_<alias>...]_[<protocol run>_]<run>_<batch>, read from both ends
    if len(tokens) < 4 or tokens[1] not in _ONT_STATUS or not tokens[-1].isdigit():
        return None
    if not tokens[0] or not _HEX8.fullmatch(tokens[-2]):
        return None
    fields = {"flowcell": tokens[0], "status": tokens[1], "batch": tokens[-1]}
    rest = tokens[2:-2]
    if len(rest) >= 1 and _HEX8.fullmatch(rest[-1]):
        fields["protocol_run_id"] = rest.pop()
    fields["run_id"] = tokens[-2]
    if rest:
        fields["barcode"] = "_".join(rest)
    return fields


def parse_ont(key: str) -> dict[str, str] | None:
    """Fields of an Oxford Nanopore FASTQ, summary or sample sheet key; ``None`` otherwise."""
    directory, filename, segments = _split(key)
    run = _ont_run(segments)
    fastq = _ont_fastq(filename)
    fields: dict[str, str] = {"filename": filename, "directory": directory}
    if fastq is not None:
        fields.update(run)
        fields.update(fastq)  # the file's own flowcell and ids win over the folder's
        fields["kind"] = "fastq"
        # fastq_pass/<alias>/<file>: the folder names the barcode (aliases may hold underscores)
        if len(segments) >= 2 and _ONT_READ_FOLDER.fullmatch(segments[-2]):
            fields["barcode"] = segments[-1]
        return fields
    report = _ONT_REPORT.fullmatch(filename)
    if report is not None:
        fields.update(run)
        fields.update(
            {
                "kind": _ONT_REPORT_KINDS[report["report"]],
                "flowcell": report["flowcell"],
                "protocol_run_id": report["protocol_run_id"],
                "run_id": report["run_id"],
            }
        )
        return fields
    sheet = _ONT_SAMPLE_SHEET.fullmatch(filename)
    if sheet is not None:
        fields.update(run)
        fields["kind"] = "samplesheet"
        fields["flowcell"] = sheet["flowcell"]
        fields["protocol_run_id"] = sheet["protocol_run_id"]
        return fields
    return None


# --------------------------------------------------------------------------- MGI / BGI

_MGI_FASTQ: Final = re.compile(
    r"(?P<flowcell>[A-Za-z0-9]+)_L0?(?P<lane>\d{1,2})(?:_(?P<barcode>[A-Za-z0-9-]+))?_(?P<read>[12])"
    r"\.f(?:ast)?q\.gz",
    re.ASCII,
)


def parse_mgi(key: str) -> dict[str, str] | None:
    """Fields of an MGI/BGI DNBSEQ FASTQ key; ``None`` otherwise."""
    directory, filename, _ = _split(key)
    match = _MGI_FASTQ.fullmatch(filename)
    if match is None:
        return None
    fields = {
        "filename": filename,
        "directory": directory,
        "kind": "fastq",
        "flowcell": match["flowcell"],
        "lane": _number(match["lane"]),
        "read": f"R{match['read']}",
    }
    if match["barcode"] is not None:
        fields["barcode"] = match["barcode"]
    return fields


# --------------------------------------------------------------------------- registry

_COMMON: Final = frozenset({"filename", "directory", "kind"})

PARSERS: Final[Mapping[str, KeyParser]] = {
    "illumina": KeyParser(
        "illumina",
        _COMMON
        | {"sample", "sample_number", "lane", "read", "chunk"}
        | {"run", "run_date", "instrument", "run_number", "flowcell"},
        parse_illumina,
        "Illumina <sample>_S<n>[_L<lane>]_<R1|R2|I1|I2>_001.fastq.gz and files in a run folder",
    ),
    "ont": KeyParser(
        "ont",
        _COMMON
        | {"flowcell", "status", "barcode", "protocol_run_id", "run_id", "batch"}
        | {"run", "run_start", "device", "sample", "experiment"},
        parse_ont,
        "Oxford Nanopore <flowcell>_pass_<barcode>_<ids>_<n>.fastq.gz, final_summary_*.txt",
    ),
    "mgi": KeyParser(
        "mgi",
        _COMMON | {"flowcell", "lane", "barcode", "read"},
        parse_mgi,
        "MGI/BGI <flowcell>_L0<lane>[_<barcode>]_<1|2>.fq.gz",
    ),
}


def get_parser(name: str) -> KeyParser:
    """The parser called ``name``; :class:`UnknownParserError` names the known ones."""
    parser = PARSERS.get(name)
    if parser is None:
        raise UnknownParserError(f"unknown key parser {name!r}; known parsers: {', '.join(sorted(PARSERS))}")
    return parser


def parse_object_key(parser: str, key: str) -> dict[str, str] | None:
    """The named fields of object ``key`` for ``parser`` (``illumina``, ``ont``, ``mgi``), or ``None``
    when the key is not a file that platform writes. Raises :class:`UnknownParserError`."""
    return get_parser(parser).parse(key)
