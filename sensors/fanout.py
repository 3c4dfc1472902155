r"""Completion markers and fan-out: a run's marker becomes one firing per sample (pure planning).

A trigger with ``fanOut`` (:class:`sensors.spec.FanOut`) fires on a run's completion marker
(Illumina ``CopyComplete.txt``, ONT ``final_summary_*.txt``). The gateway then lists the run folder
(and reads ``Reports/fastq_list.csv`` or ``SampleSheet.csv`` when the spec says so) and this module
turns what it found into a :class:`Plan`: the items to fire (one per sample, barcode...), the
incomplete ones to report, the groups skipped (``Undetermined``). No I/O, no clock: the gateway
passes the listed keys and the manifest text in.

* :func:`locate_run`: the run folder a marker event names (bucket from the event data's
  ``bucket``, folder = the directory of its ``key``).
* :func:`plan_run`: listed keys (+ manifest text) -> :class:`Plan`.
* :func:`parse_fastq_list`, :func:`parse_sample_sheet`: bcl-convert's ``fastq_list.csv`` and
  sample sheets v1 (``[Data]``) / v2 (``[BCLConvert_Data]``).
* :func:`item_key`, :func:`report_key`, :func:`item_fire`, :func:`incomplete_fire`: the idempotent
  identity of each item and the ``Fire`` that carries it. An item's key is derived from sensor,
  trigger, bucket, run folder and group value, *not* from the marker event, so a re-delivered or
  re-uploaded marker and every replay name the same items and launch nothing twice.
* :func:`sensor_fanout_problems`: the checks that need the whole sensor (run when it loads).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sensors.conditions import ConditionsError, parse_conditions
from sensors.engine import Fire
from sensors.event import Event
from sensors.keyparse import PARSERS
from sensors.spec import FanOut, SensorSpec

__all__ = [
    "FANOUT_EVENT_TYPE",
    "FANOUT_SOURCE",
    "FanOutError",
    "Item",
    "ManifestRow",
    "Plan",
    "RunLocation",
    "SampleSheetRow",
    "incomplete_fire",
    "item_event",
    "item_fire",
    "item_key",
    "locate_run",
    "marker_dependency",
    "marker_of",
    "parse_fastq_list",
    "parse_sample_sheet",
    "plan_run",
    "report_key",
    "sensor_fanout_problems",
]

FANOUT_SOURCE: Final = "triggergate.fanout"
"""The ``source`` of an item's synthetic event (how a replayed item firing is recognised)."""
FANOUT_EVENT_TYPE: Final = "triggergate.fanout.item"

# The parameter name of each read's space-separated URL list in an item's data.
_READ_PARAMS: Final = {
    "R1": "fastq1",
    "R2": "fastq2",
    "R3": "fastq3",
    "R4": "fastq4",
    "I1": "index1",
    "I2": "index2",
    "I3": "index3",
    "I4": "index4",
}
_FASTQ_LIST_READS: Final = (("Read1File", "R1"), ("Read2File", "R2"))


class FanOutError(ValueError):
    """A marker event that names no run, or a manifest that cannot be read; the message says why.
    Not retriable: the parent firing is dead-lettered with it."""


# --------------------------------------------------------------------------- identity


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def item_key(sensor: str, trigger: str, bucket: str, prefix: str, group: str) -> str:
    """The idempotency key of one item: the same for every marker event of the run folder."""
    return _digest(sensor, trigger, "#fanout", bucket, prefix, group)


def report_key(key: str) -> str:
    """The key of the dead letter that reports item ``key`` incomplete (differs from the item's own
    firing key, so a report never marks the item as done)."""
    return _digest(key, "#incomplete")


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True, slots=True)
class RunLocation:
    """The run folder a marker names: ``prefix`` ends in ``/`` (``""`` for a marker at the bucket
    root); ``run`` is the folder's name (the bucket's at the root); ``time`` the marker event's."""

    bucket: str
    prefix: str
    run: str
    marker: str
    time: datetime

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def marker_of(spec: FanOut, events: Mapping[str, Event]) -> tuple[str, Event]:
    """The dependency name and event of the marker in a firing's events (``spec.dependency``, or
    the firing's only event besides an item's)."""
    if spec.dependency is not None:
        event = events.get(spec.dependency)
        if event is None:
            raise FanOutError(
                f"the firing has no event of the marker dependency {spec.dependency!r} "
                f"(it has {', '.join(sorted(events)) or 'none'}); nothing names the run to fan out"
            )
        return spec.dependency, event
    names = [name for name in events if name != spec.as_]
    if len(names) != 1:
        raise FanOutError(
            f"the firing has {len(names)} events ({', '.join(sorted(names))}); set fanOut.dependency "
            "to the one that names the run"
        )
    return names[0], events[names[0]]


def locate_run(event: Event) -> RunLocation:
    """The run folder of a marker event: ``bucket`` and ``key`` of its data (as the ``s3`` source
    gives them), the folder being the key's directory."""
    data = event.data
    bucket = data.get("bucket") if isinstance(data, dict) else None
    key = data.get("key") if isinstance(data, dict) else None
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise FanOutError(
            f"marker event {event.id} has no string 'bucket' and 'key' in its data (an s3 source's "
            "event has both); a fan-out needs them to find the run folder"
        )
    directory = key.rpartition("/")[0]
    prefix = f"{directory}/" if directory else ""
    run = directory.rpartition("/")[2] if directory else bucket
    return RunLocation(bucket=bucket, prefix=prefix, run=run, marker=key, time=event.time)


# --------------------------------------------------------------------------- manifests


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One row of ``fastq_list.csv``: the sample (``RGSM``), its lane and the file of each read
    (as written: an absolute instrument path or a path relative to the manifest)."""

    sample: str
    lane: str | None
    files: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class SampleSheetRow:
    """One sample of a sample sheet's data section: ``Sample_ID`` and ``Lane`` when there is one."""

    sample: str
    lane: str | None


def _rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text.lstrip("\ufeff")))]


def _lane(text: str) -> str | None:
    """``"1"``, ``"001"`` -> ``"1"`` (as the key parsers write lanes); empty -> None."""
    text = text.strip()
    if not text:
        return None
    return str(int(text)) if text.isdigit() else text


def parse_fastq_list(text: str, where: str = "fastq_list.csv") -> list[ManifestRow]:
    """The rows of bcl-convert's ``fastq_list.csv`` (``RGID,RGSM,RGLB,Lane,Read1File,Read2File``;
    other columns are ignored). Raises :class:`FanOutError` without ``RGSM`` and ``Read1File``."""
    rows = [row for row in _rows(text) if any(row)]
    if not rows:
        raise FanOutError(f"{where} is empty; bcl-convert writes RGID,RGSM,RGLB,Lane,Read1File,Read2File")
    header = rows[0]
    missing = [name for name in ("RGSM", "Read1File") if name not in header]
    if missing:
        raise FanOutError(
            f"{where} has no {' or '.join(missing)} column (its header is {','.join(header)}); "
            "expected bcl-convert's RGID,RGSM,RGLB,Lane,Read1File,Read2File"
        )
    column = {name: header.index(name) for name in header}
    out: list[ManifestRow] = []
    for row in rows[1:]:

        def cell(name: str, row: list[str] = row) -> str:
            index = column.get(name)
            return row[index] if index is not None and index < len(row) else ""

        sample = cell("RGSM")
        if not sample:
            continue
        files = {read: cell(name) for name, read in _FASTQ_LIST_READS if cell(name)}
        out.append(ManifestRow(sample, _lane(cell("Lane")), files))
    return out


def parse_sample_sheet(text: str, where: str = "SampleSheet.csv") -> list[SampleSheetRow]:
    """The samples of a sample sheet: v2's ``[BCLConvert_Data]`` (or v1's ``[Data]``) section,
    ``Sample_ID`` and the optional ``Lane``. Raises :class:`FanOutError` when neither section or no
    ``Sample_ID`` column is there."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for row in _rows(text):
        first = row[0] if row else ""
        if first.startswith("[") and first.endswith("]"):
            current = sections.setdefault(first[1:-1].strip(), [])
            continue
        if current is not None and any(row):
            current.append(row)
    name = next((n for n in ("BCLConvert_Data", "Data") if n in sections), None)
    if name is None:
        raise FanOutError(
            f"{where} has no [BCLConvert_Data] (v2) or [Data] (v1) section; "
            f"its sections: {', '.join(sections) or 'none'}"
        )
    rows = sections[name]
    if not rows or "Sample_ID" not in rows[0]:
        raise FanOutError(f"{where} section [{name}] has no Sample_ID column")
    header = rows[0]
    sample_at = header.index("Sample_ID")
    lane_at = header.index("Lane") if "Lane" in header else None
    out: list[SampleSheetRow] = []
    for row in rows[1:]:
        sample = row[sample_at] if sample_at < len(row) else ""
        if not sample:
            continue
        lane = _lane(row[lane_at]) if lane_at is not None and lane_at < len(row) else None
        out.append(SampleSheetRow(sample, lane))
    return out


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class Item:
    """One group of the run (a sample, a barcode): ``data`` is what parameters see under the
    fan-out's ``as`` name. ``missing`` is empty for a complete item."""

    group: str
    key: str
    data: Mapping[str, Any]
    missing: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def reason(self) -> str:
        return str(self.data.get("reason", ""))


@dataclass(frozen=True, slots=True)
class Plan:
    """What a marker resolves to: ``items`` to fire, ``incomplete`` items to report, ``skipped``
    group values (``skip``) and ``ignored`` ones (found in the bucket, not in the manifest)."""

    location: RunLocation
    items: tuple[Item, ...]
    incomplete: tuple[Item, ...]
    skipped: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()

    def find(self, group: str) -> Item | None:
        return next((i for i in (*self.items, *self.incomplete) if i.group == group), None)


@dataclass(slots=True)
class _Unit:
    """The files of one lane (and chunk) of a group, per read."""

    lane: str | None
    order: str
    reads: dict[str, list[str]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.lane is None:
            return "the lane-merged files"
        return f"lane {self.lane}"

    def sort_key(self) -> tuple[bool, int, str, str]:
        lane = self.lane or ""
        return (self.lane is None, int(lane) if lane.isdigit() else 0, lane, self.order)


@dataclass(slots=True)
class _Group:
    value: str
    units: dict[tuple[str | None, str], _Unit] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # single-read platforms (ONT)
    sample_number: str | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)  # (missing, what is wrong)

    def unit(self, lane: str | None, order: str) -> _Unit:
        return self.units.setdefault((lane, order), _Unit(lane, order))

    def ordered(self) -> list[_Unit]:
        return sorted(self.units.values(), key=_Unit.sort_key)


def _collect(spec: FanOut, keys: Iterable[str]) -> tuple[dict[str, _Group], list[str]]:
    """The FASTQ keys grouped by ``groupBy`` (per lane and chunk and read when ``reads`` is set), and
    every listed key (for manifests, which name files by path)."""
    parse = PARSERS[spec.parser].parse
    reads = spec.read_names
    groups: dict[str, _Group] = {}
    listed: list[str] = []
    for key in keys:
        listed.append(key)
        fields = parse(key)
        if fields is None or fields.get("kind") != "fastq" or fields.get("status") == "fail":
            continue
        value = fields.get(spec.group_field)
        if not value:
            continue
        if reads:
            read = fields.get("read", "")
            if read not in reads:
                continue
            group = groups.setdefault(value, _Group(value))
            group.unit(fields.get("lane"), fields.get("chunk", "")).reads.setdefault(read, []).append(key)
        else:
            group = groups.setdefault(value, _Group(value))
            group.files.append(key)
        if group.sample_number is None and "sample_number" in fields:
            group.sample_number = fields["sample_number"]
    return groups, listed


def _check_units(group: _Group, reads: Sequence[str]) -> None:
    """Each lane (and chunk) needs one file of every read in ``reads``."""
    for unit in group.ordered():
        present = [read for read in reads if unit.reads.get(read)]
        absent = [read for read in reads if not unit.reads.get(read)]
        label = unit.label + (f" chunk {unit.order}" if unit.order not in ("", "001") else "")
        if absent and present:
            have = "have" if unit.lane is None else "has"
            group.problems.append(
                (
                    f"{label} {' '.join(absent)}",
                    f"{label} {have} {' and '.join(present)} but no {' and '.join(absent)}",
                )
            )
        for read in present:
            found = sorted(unit.reads[read])
            if len(found) > 1:
                group.problems.append(
                    (f"{label} {read}", f"{label} {read} has {len(found)} files: {', '.join(found)}")
                )


def _from_manifest(
    spec: FanOut, location: RunLocation, rows: list[ManifestRow], listed: list[str], where: str
) -> dict[str, _Group]:
    """Groups built from ``fastq_list.csv`` rows; each file matched by basename under the run folder
    (a relative path first by its full path from the manifest's folder)."""
    by_name: dict[str, list[str]] = {}
    for key in listed:
        by_name.setdefault(key.rpartition("/")[2], []).append(key)
    manifest_dir = (location.prefix + (spec.manifest or "")).rpartition("/")[0]
    parse = PARSERS[spec.parser].parse
    groups: dict[str, _Group] = {}
    for index, row in enumerate(rows):
        group = groups.setdefault(row.sample, _Group(row.sample))
        unit = group.unit(row.lane, f"{index:06d}")
        label = f"lane {row.lane}" if row.lane is not None else f"row {index + 2}"
        missing_files: list[tuple[str, str]] = []
        for read in spec.read_names:
            path = row.files.get(read)
            if path is None:
                group.problems.append((f"{label} {read}", f"{label} has no {read} file in {where}"))
                continue
            name = path.replace("\\", "/").rpartition("/")[2]
            candidates = by_name.get(name, [])
            if len(candidates) > 1 and not path.startswith("/"):
                relative = path.replace("\\", "/")
                while relative.startswith("./"):
                    relative = relative[2:]
                exact = [k for k in candidates if k == f"{manifest_dir}/{relative}".lstrip("/")]
                candidates = exact or candidates
            if not candidates:
                missing_files.append((read, name))
            elif len(candidates) > 1:
                matches = ", ".join(sorted(candidates))
                group.problems.append(
                    (f"{label} {read}", f"{label} {read} {name} matches {len(candidates)} objects: {matches}")
                )
            else:
                unit.reads.setdefault(read, []).append(candidates[0])
                fields = parse(candidates[0]) or {}
                if group.sample_number is None and "sample_number" in fields:
                    group.sample_number = fields["sample_number"]
        if missing_files and len(missing_files) == len(spec.read_names):
            group.problems.append(
                (
                    label,
                    f"{label} is listed in {where} but none of its files is in the bucket "
                    f"({', '.join(name for _, name in missing_files)})",
                )
            )
        else:
            for read, name in missing_files:
                group.problems.append(
                    (f"{label} {read}", f"{label} {read} {name} is listed in {where} but not in the bucket")
                )
    return groups


def _check_sheet(spec: FanOut, rows: list[SampleSheetRow], groups: dict[str, _Group], where: str) -> None:
    """Every sample of the sheet needs files, in every lane the sheet gives it."""
    lanes: dict[str, list[str]] = {}
    for row in rows:
        sample_lanes = lanes.setdefault(row.sample, [])
        if row.lane is not None and row.lane not in sample_lanes:
            sample_lanes.append(row.lane)
    for sample, expected in lanes.items():
        group = groups.get(sample)
        if group is None:
            group = groups[sample] = _Group(sample)
            group.problems.append(("all files", f"it is in {where} but no FASTQ file of it is in the bucket"))
            continue
        have = {unit.lane for unit in group.units.values()}
        if None in have:  # --no-lane-splitting: one file set covers every lane
            continue
        for lane in expected:
            if lane not in have:
                group.problems.append(
                    (f"lane {lane}", f"lane {lane} is in {where} but none of its files is in the bucket")
                )


def _item_data(spec: FanOut, location: RunLocation, group: _Group, key: str) -> dict[str, Any]:
    data: dict[str, Any] = {spec.group_field: group.value}
    if group.sample_number is not None:
        data["sample_number"] = group.sample_number
    data.update(run=location.run, bucket=location.bucket, prefix=location.prefix, marker=location.marker)
    files: list[str] = []
    if spec.read_names:
        lanes: list[dict[str, Any]] = []
        urls: dict[str, list[str]] = {read: [] for read in spec.read_names}
        for unit in group.ordered():
            entry: dict[str, Any] = {"lane": unit.lane}
            for read in spec.read_names:
                found = sorted(unit.reads.get(read, ()))
                if found:
                    entry[read] = found[0]
                    urls[read].append(location.url(found[0]))
                    files.extend(found)
            lanes.append(entry)
        data["lanes"] = lanes
        for read in spec.read_names:
            data[_READ_PARAMS[read]] = " ".join(urls[read])
    else:
        files = sorted(group.files)
        data["fastq"] = " ".join(location.url(k) for k in files)
    data["files"] = files
    data["item_key"] = key
    return data


def plan_run(
    spec: FanOut,
    sensor: str,
    trigger: str,
    location: RunLocation,
    keys: Iterable[str],
    manifest: str | None = None,
) -> Plan:
    """Resolve a run into items from the keys listed under ``location.prefix`` and, for ``source:
    manifest`` / ``sampleSheet``, the text of that file. Raises :class:`FanOutError` when the
    manifest is missing or unreadable."""
    groups, listed = _collect(spec, keys)
    where = spec.manifest or ""
    ignored: list[str] = []
    if spec.source != "listing":
        if manifest is None:
            raise FanOutError(f"source {spec.source} needs the text of {where}")
        if spec.source == "manifest":
            found = groups
            groups = _from_manifest(spec, location, parse_fastq_list(manifest, where), listed, where)
        else:
            rows = parse_sample_sheet(manifest, where)
            named = {row.sample for row in rows}
            found = groups
            groups = {value: group for value, group in groups.items() if value in named}
            _check_sheet(spec, rows, groups, where)
        ignored = sorted(v for v in found if v not in groups and v not in spec.skipped)
    if spec.read_names and spec.source != "manifest":  # a manifest's files were checked one by one
        for group in groups.values():
            _check_units(group, spec.read_names)
    order = list(groups.values())
    if spec.source == "listing":
        order.sort(key=lambda g: (int(g.sample_number) if g.sample_number else 1 << 30, g.value))
    items: list[Item] = []
    incomplete: list[Item] = []
    skipped: list[str] = []
    for group in order:
        if group.value in spec.skipped:
            skipped.append(group.value)
            continue
        key = item_key(sensor, trigger, location.bucket, location.prefix, group.value)
        data = _item_data(spec, location, group, key)
        if not group.problems:
            items.append(Item(group.value, key, data))
            continue
        missing = tuple(dict.fromkeys(m for m, _ in group.problems))
        data["missing"] = list(missing)
        data["reason"] = (
            f"{spec.group_field} {group.value} of run {location.run} is incomplete: "
            + "; ".join(dict.fromkeys(text for _, text in group.problems))
        )
        incomplete.append(Item(group.value, key, data, missing))
    return Plan(location, tuple(items), tuple(incomplete), tuple(skipped), tuple(ignored))


# --------------------------------------------------------------------------- firings


def item_event(item: Item, as_: str, time: datetime) -> Event:
    """The synthetic event that carries ``item`` to parameters as dependency ``as_``."""
    return Event(
        id=item.key,
        source=FANOUT_SOURCE,
        subject=as_,
        type=FANOUT_EVENT_TYPE,
        time=time,
        data=dict(item.data),
    )


def item_fire(parent: Fire, item: Item, as_: str, time: datetime) -> Fire:
    """The firing of one item: the parent's events (the marker...) plus the item's under ``as_``,
    keyed by the item (not by the marker event)."""
    events = {name: event for name, event in parent.events.items() if name != as_}
    events[as_] = item_event(item, as_, time)
    return Fire(parent.sensor, parent.trigger, events, item.key)


def incomplete_fire(parent: Fire, item: Item, as_: str, time: datetime, on_incomplete: str) -> Fire:
    """The ``onIncomplete`` firing of an incomplete item (one per item, whatever the marker event)."""
    fire = item_fire(parent, item, as_, time)
    data = fire.events[as_].data
    key = item_key(parent.sensor, on_incomplete, str(data["bucket"]), str(data["prefix"]), item.group)
    return Fire(parent.sensor, on_incomplete, fire.events, key)


# --------------------------------------------------------------------------- load-time checks


def marker_dependency(spec: FanOut, conditions: str, names: Sequence[str]) -> str | None:
    """The dependency whose event names the run: ``fanOut.dependency``, else the only dependency of
    the conditions (None when there is none or several, or the conditions do not parse)."""
    if spec.dependency is not None:
        return spec.dependency
    try:
        used = parse_conditions(conditions, names).dependencies
    except ConditionsError:
        return None
    return next(iter(used)) if len(used) == 1 else None


def sensor_fanout_problems(spec: SensorSpec) -> list[str]:
    """What is wrong with the fan-out triggers of a sensor as a whole (empty: nothing).

    ``fanOut.dependency`` must be a dependency of the trigger's conditions (it defaults to the only
    one); ``as`` must not be a dependency's name; an ``onIncomplete`` name must differ from every
    trigger's, ``onExpire``'s and other ``onIncomplete``'s. Conditions that do not parse are left
    to the conditions check.
    """
    problems: list[str] = []
    names = [dep.name for dep in spec.dependencies]
    taken = {trigger.name for trigger in spec.triggers}
    for trigger in spec.triggers:
        correlation = trigger.template.correlation
        if correlation is not None and correlation.on_expire is not None:
            taken.add(correlation.on_expire.name)
    for trigger in spec.triggers:
        fan_out = trigger.template.fan_out
        if fan_out is None:
            continue
        where = f"trigger {trigger.name!r} fanOut"
        if fan_out.as_ in names:
            problems.append(
                f"{where}.as is {fan_out.as_!r}, which is also a dependency's name; parameters could not "
                "tell the item from that dependency's event: choose another name (default: sample)"
            )
        try:
            used = sorted(parse_conditions(trigger.template.conditions, names).dependencies)
        except ConditionsError:
            used = None
        if used is not None:
            if fan_out.dependency is None and len(used) != 1:
                problems.append(
                    f"{where}.dependency is not set and the conditions name {len(used)} dependencies "
                    f"({', '.join(used)}); say which event names the run"
                )
            elif fan_out.dependency is not None and fan_out.dependency not in used:
                problems.append(
                    f"{where}.dependency {fan_out.dependency!r} is not a dependency of the trigger's "
                    f"conditions {trigger.template.conditions!r}; conditions name: {', '.join(used)}"
                )
        if fan_out.on_incomplete is not None:
            name = fan_out.on_incomplete.name
            if name in taken:
                problems.append(
                    f"{where}.onIncomplete is named {name!r}, which another trigger, onExpire or "
                    "onIncomplete uses; names must be unique within a sensor"
                )
            taken.add(name)
    return problems
