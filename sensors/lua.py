"""Sandboxed Lua for script filters and script transforms (Argo's gopher-lua, re-done safely).

Argo Events runs ``filters.script`` and ``transform.script`` in a fresh gopher-lua state with the
*whole* standard library (``os.execute``, ``io.open``...). triggergate runs them in Lua 5.4
(``lupa.lua54``) inside a sandbox:

* **Globals**: ``event`` (the event data), ``string``, ``table``, ``math``, ``utf8``, ``assert``,
  ``error``, ``ipairs``, ``next``, ``pairs``, ``pcall``, ``xpcall``, ``select``, ``tonumber``,
  ``tostring``, ``type``, ``unpack``, ``rawequal``, ``rawget``, ``rawlen``, ``rawset``,
  ``getmetatable``, ``setmetatable``, ``print`` (does nothing: ``sensors/`` does no I/O), ``_G``,
  ``_VERSION``; plus ``math.pow`` and ``table.getn`` for scripts written for Lua 5.1 (gopher-lua).
  ``os``, ``io``, ``require``, ``load``, ``loadstring``, ``dofile``, ``loadfile``, ``package``,
  ``debug``, ``collectgarbage``, ``coroutine``, ``warn`` and ``string.dump`` are absent: using one
  fails with ``'<name>' is not available in the Lua sandbox``. Binary (precompiled) chunks are
  refused. ``math.random`` is kept (sampling filters use it) and is the only non-deterministic
  function.
* **Isolation**: every call gets a fresh global table and fresh copies of the library tables, so
  nothing a script does (globals, ``string.upper = nil``) survives into the next event, as in
  Argo where each event gets a new state.
* **Limits** (:class:`LuaLimits`): an instruction budget enforced by a count hook (an endless loop
  fails with an error, and ``pcall`` cannot swallow it), and a memory cap (lupa's ``max_memory``:
  a memory bomb fails with an error). Converting the result back counts against the same budget.
  Known gap: one library call is one instruction and cannot be interrupted, so pattern matching
  with heavy backtracking (``("a"):rep(1e5):find(".-.-.-b")``), or many operations on strings
  close to the memory cap, take time bounded only by their size, not tightly.

Conversions:

* Python -> Lua: JSON objects become tables with string keys (``null`` members are absent, as in
  Argo), arrays become 1-indexed tables whose metatable is ``{__is_array = true}`` (a ``null``
  element is a hole; a trailing ``null`` is lost), integers stay Lua integers (beyond 64 bits:
  floats), floats stay floats; strings and booleans as themselves.
* Lua -> Python (Argo's rule, ``transform.go``): a table whose metatable has ``__is_array ==
  true`` is an array of ``t[1..n]`` (``n`` = the largest positive integer key; holes -> ``None``;
  other keys ignored); otherwise a table whose keys are exactly ``1..n`` (``n >= 1``) is an array;
  any other table, including the empty one, is an object with its keys as strings (``tostring``),
  sorted like Go's JSON encoder sorts them. Unlike Argo, a table mixing integer and string keys
  keeps all of them (as an object) instead of dropping the string keys. NaN, infinities,
  functions and other values that JSON cannot hold are errors.

A script's result is its **last** returned value (Argo reads the top of the Lua stack); no return
value is ``nil``.

Each :class:`LuaScript` owns one Lua runtime and compiles its chunk once; a call flattens the data
(one crossing into Lua), runs the chunk and flattens the result back. Calls on one script are
serialized by lupa's runtime lock, so sharing a script between threads is safe but not parallel.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, cast

import lupa.lua54 as _lupa

__all__ = [
    "DEFAULT_LIMITS",
    "LUA_VERSION",
    "LuaError",
    "LuaLimits",
    "LuaScript",
    "LuaScriptFilter",
    "compile_script_filter",
]

LUA_VERSION: Final = "Lua 5.4"
_HOOK_EVERY: Final = 1000  # instructions between two runs of the count hook
_MAX_DEPTH: Final = 256  # nesting of JSON values / Lua tables converted either way
_MAX_HOLES: Final = 100_000  # nil slots tolerated in an ``__is_array`` table


class LuaError(ValueError):
    """A Lua script that does not compile, fails, exceeds a sandbox limit or returns non-JSON."""


@dataclass(frozen=True, slots=True)
class LuaLimits:
    """The budget of one call: Lua VM instructions, and bytes of memory held by the runtime."""

    max_instructions: int = 10_000_000
    max_memory: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_instructions < _HOOK_EVERY:
            raise ValueError(f"max_instructions must be at least {_HOOK_EVERY}, got {self.max_instructions}")
        if self.max_memory < 1024 * 1024:
            raise ValueError(f"max_memory must be at least 1 MiB (1048576 bytes), got {self.max_memory}")


DEFAULT_LIMITS: Final = LuaLimits()

# Runs once per runtime, with the full standard library, and returns (compile, run). Nothing
# reachable from the sandbox environment leads back to the real globals.
_BOOTSTRAP: Final = r"""
local max_steps, hook_every, MAX_DEPTH, MAX_HOLES = ...
local debug_sethook, debug_setupvalue = debug.sethook, debug.setupvalue
local debug_getmetatable = debug.getmetatable
local co_create, co_resume = coroutine.create, coroutine.resume
local load, pcall, xpcall, error = load, pcall, xpcall, error
local type, next, select, tostring = type, next, select, tostring
local setmetatable, getmetatable, rawget = setmetatable, getmetatable, rawget
local string_format, string_byte = string.format, string.byte
local table_concat, table_sort = table.concat, table.sort
local math_type, huge = math.type, math.huge

---------------------------------------------------------------- instruction budget
local LIMIT = "\0instruction limit"
local exhausted, steps_left = false, 0

local function hook()
  steps_left = steps_left - 1
  if steps_left < 0 then
    exhausted = true
    error(LIMIT, 0)
  end
end

-- pcall/xpcall must not swallow the instruction limit.
local function rethrow_if_exhausted(...)
  if exhausted then error(LIMIT, 0) end
  return ...
end

---------------------------------------------------------------- the sandbox environment
local function copy(t)
  local c = {}
  for k, v in next, t do c[k] = v end
  return c
end

local FORBIDDEN = {}
for _, name in ipairs({"os", "io", "require", "load", "loadstring", "dofile", "loadfile", "package",
                       "debug", "collectgarbage", "coroutine", "python", "setfenv", "getfenv",
                       "module", "newproxy", "warn"}) do
  FORBIDDEN[name] = true
end

local SAFE_STRING = copy(string)
SAFE_STRING.dump = function()
  error("'string.dump' is not available in the Lua sandbox", 2)
end
local string_mt = getmetatable("")
string_mt.__index = SAFE_STRING   -- ("x"):dump() finds the stub too
string_mt.__metatable = false     -- getmetatable("") cannot reach the library table

local LIBS = {string = SAFE_STRING, table = copy(table), math = copy(math), utf8 = utf8 and copy(utf8)}
LIBS.math.pow = function(x, y) return x ^ y end
LIBS.table.getn = function(t) return #t end

local BASE = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  pcall = function(f, ...) return rethrow_if_exhausted(pcall(f, ...)) end,
  xpcall = function(f, h, ...) return rethrow_if_exhausted(xpcall(f, h, ...)) end,
  select = select, tonumber = tonumber, tostring = tostring, type = type, unpack = table.unpack,
  rawequal = rawequal, rawget = rawget, rawlen = rawlen, rawset = rawset,
  getmetatable = getmetatable, setmetatable = setmetatable,
  print = function() end, _VERSION = _VERSION,
}

local allowed = {"event", "_G"}
for name in next, BASE do allowed[#allowed + 1] = name end
for name in next, LIBS do allowed[#allowed + 1] = name end
table_sort(allowed)
local ALLOWED = table_concat(allowed, ", ")

local ENV_MT = {
  __index = function(_, name)
    if FORBIDDEN[name] then
      error(string_format("'%s' is not available in the Lua sandbox (available: %s)", name, ALLOWED), 2)
    end
    return nil
  end,
  __metatable = false,
}

local function new_env(event)
  local env = copy(BASE)
  for name, lib in next, LIBS do env[name] = copy(lib) end
  env._G = env
  env.event = event
  return setmetatable(env, ENV_MT)
end

local function compile(source)
  local chunk, err = load(source, "=script", "t", {})
  if not chunk then return false, err end
  return true, chunk
end

---------------------------------------------------------------- flattened JSON
-- A JSON value travels as `kinds` (one letter per node: v scalar, n null, o object, a array) and
-- `vals` (scalars; the size of each container; each object key before its value), in pre-order.
local V, O, A = string_byte("v"), string_byte("o"), string_byte("a")

local function unflatten(kinds, vals)
  local marker = {__is_array = true}
  local ki, vi = 0, 0
  local node
  node = function()
    ki = ki + 1
    local kind = string_byte(kinds, ki)
    if kind == V then
      vi = vi + 1
      return vals[vi]
    elseif kind == O then
      vi = vi + 1
      local t = {}
      for _ = 1, vals[vi] do
        vi = vi + 1
        local key = vals[vi]
        t[key] = node()
      end
      return t
    elseif kind == A then
      vi = vi + 1
      local t = setmetatable({}, marker)
      for i = 1, vals[vi] do t[i] = node() end
      return t
    end
    return nil
  end
  return node()
end

local RESULT = {}  -- private key: an error about the returned value, not from the script
local function bad_result(message) error({[RESULT] = "returned " .. message}, 0) end

local function a_type(v)
  local t = type(v)
  if t == "nil" then return "nil" end
  return "a " .. t
end

local function key_text(k)
  local t = type(k)
  if t == "string" then return k end
  if t == "number" and math_type(k) == "integer" then return string_format("%d", k) end
  if t == "number" or t == "boolean" then return tostring(k) end
  bad_result("a table with " .. a_type(k) .. " as a key; JSON object keys are strings")
end

local function flatten(value)
  local kinds, vals, ki, vi = {}, {}, 0, 0
  local function walk(v, depth)
    local t = type(v)
    ki = ki + 1
    if t == "nil" then
      kinds[ki] = "n"
    elseif t == "string" or t == "boolean" then
      kinds[ki] = "v"; vi = vi + 1; vals[vi] = v
    elseif t == "number" then
      if v ~= v or v == huge or v == -huge then
        bad_result("the number " .. tostring(v) .. ", which JSON cannot hold")
      end
      kinds[ki] = "v"; vi = vi + 1; vals[vi] = v
    elseif t == "table" then
      if depth >= MAX_DEPTH then
        bad_result("tables nested deeper than " .. MAX_DEPTH .. " levels (a table that contains itself?)")
      end
      local count, n, maxn = 0, 0, 0
      for k in next, v do
        count = count + 1
        if math_type(k) == "integer" and k > 0 then
          n = n + 1
          if k > maxn then maxn = k end
        end
      end
      local mt = debug_getmetatable(v)
      local marked = type(mt) == "table" and rawget(mt, "__is_array") == true
      if marked or (count > 0 and n == count and maxn == count) then
        if maxn - n > MAX_HOLES then
          bad_result(string_format("an array with %d elements but index %d: more than %d holes",
                                   n, maxn, MAX_HOLES))
        end
        kinds[ki] = "a"; vi = vi + 1; vals[vi] = maxn
        for i = 1, maxn do walk(rawget(v, i), depth + 1) end
      else
        kinds[ki] = "o"; vi = vi + 1; vals[vi] = count
        for k, x in next, v do
          vi = vi + 1; vals[vi] = key_text(k)
          walk(x, depth + 1)
        end
      end
    else
      bad_result(a_type(v) .. ", which JSON cannot hold")
    end
  end
  walk(value, 0)
  return table_concat(kinds), vals
end

-- mode "truth": is the last returned value `true`?  "json": the last value, flattened.
-- "table": the same, and it must be a table.
local function shape(mode, ...)
  local n = select("#", ...)
  local last = nil
  if n > 0 then last = (select(n, ...)) end
  if mode == "truth" then return last == true, nil end
  if mode == "table" and type(last) ~= "table" then
    error({[RESULT] = "must return a Lua table, it returned " .. a_type(last)}, 0)
  end
  return flatten(last)
end

---------------------------------------------------------------- one call
local function finish(chunk, ok, ...)
  debug_setupvalue(chunk, 1, nil)
  if ok then return true, ... end
  local err = ...
  if exhausted then return false, "instructions", nil end
  if err == "not enough memory" then return false, "memory", nil end
  local kind = type(err)
  if kind == "string" or kind == "number" then return false, "error", err end
  if kind == "table" and rawget(err, RESULT) ~= nil then return false, "result", rawget(err, RESULT) end
  return false, "error", "(error object is " .. a_type(err) .. " value)"
end

-- The script runs in a coroutine of its own: the count hook belongs to that coroutine only.
local function run(chunk, kinds, vals, mode)
  local event = vals
  if kinds ~= nil then event = unflatten(kinds, vals) end
  exhausted, steps_left = false, max_steps
  debug_setupvalue(chunk, 1, new_env(event))
  local co = co_create(function() return shape(mode, chunk()) end)
  debug_sethook(co, hook, "", hook_every)
  return finish(chunk, co_resume(co))
end

python = nil
return compile, run
"""


def _plain(value: bool | int | float | str) -> bool | int | float | str:
    """An instance of a subclass of a JSON scalar type (``IntEnum``, ``StrEnum``) as the built-in value."""
    for base in (bool, int, float, str):
        if isinstance(value, base):
            return base(value)
    raise TypeError(value)  # pragma: no cover - the caller checked the types


def _flatten(value: Any, kinds: list[str], vals: list[object], depth: int, field: str) -> None:
    """Append the flattened form of a JSON value (see ``unflatten`` in the bootstrap)."""
    kind = type(value)
    if kind is str or kind is float or kind is bool:
        kinds.append("v")
        vals.append(value)
    elif kind is int:
        kinds.append("v")
        vals.append(value if -(2**63) <= value < 2**63 else float(value))
    elif value is None:
        kinds.append("n")
    elif depth >= _MAX_DEPTH:
        raise LuaError(f"{field}: the event data is nested deeper than {_MAX_DEPTH} levels")
    elif isinstance(value, dict):
        kinds.append("o")
        count_at = len(vals)
        vals.append(0)
        count = 0
        for key, item in value.items():
            if type(key) is not str:
                raise LuaError(f"{field}: the event data has a non-string object key {key!r}")
            if item is not None:
                vals.append(key)
                _flatten(item, kinds, vals, depth + 1, field)
                count += 1
        vals[count_at] = count
    elif isinstance(value, list | tuple):
        kinds.append("a")
        vals.append(len(value))
        for item in value:
            _flatten(item, kinds, vals, depth + 1, field)
    elif isinstance(value, bool | int | float | str):
        _flatten(_plain(value), kinds, vals, depth, field)
    else:
        raise LuaError(f"{field}: the event data holds a {type(value).__name__}, which is not a JSON value")


def _unflatten(kinds: Iterator[str], vals: Iterator[object]) -> Any:
    """The JSON value that ``flatten`` in the bootstrap wrote; object keys come out sorted."""
    kind = next(kinds)
    if kind == "v":
        return next(vals)
    if kind == "o":
        size = cast(int, next(vals))
        members: dict[str, Any] = {}
        for _ in range(size):
            key = cast(str, next(vals))
            members[key] = _unflatten(kinds, vals)
        return {key: members[key] for key in sorted(members)}
    if kind == "a":
        return [_unflatten(kinds, vals) for _ in range(cast(int, next(vals)))]
    return None


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n} bytes"


class LuaScript:
    """One Lua chunk compiled in a sandboxed runtime of its own (see the module docstring).

    ``field`` names the manifest field in error messages (``filters.script``, ``transform.script``).
    A syntax error raises :class:`LuaError` here, at load time. Every ``run*`` method sets the
    global ``event`` to ``data`` and raises :class:`LuaError` when the script fails or exceeds a
    limit.
    """

    def __init__(self, source: str, *, field: str = "script", limits: LuaLimits = DEFAULT_LIMITS) -> None:
        self.source = source
        self.field = field
        self.limits = limits
        self._runtime = _lupa.LuaRuntime(
            register_eval=False, register_builtins=False, max_memory=limits.max_memory
        )
        steps = -(-limits.max_instructions // _HOOK_EVERY)
        compile_chunk, self._run = self._runtime.execute(
            _BOOTSTRAP, steps, _HOOK_EVERY, _MAX_DEPTH, _MAX_HOLES
        )
        try:
            ok, chunk = compile_chunk(source)
        except _lupa.LuaMemoryError:
            raise LuaError(
                f"{field} does not fit in the Lua memory limit ({_size(limits.max_memory)})"
            ) from None
        if not ok:
            raise LuaError(f"{field} is not valid {LUA_VERSION}: {chunk}")
        self._chunk = chunk

    def __repr__(self) -> str:
        return f"LuaScript(field={self.field!r}, source={self.source!r})"

    def run_predicate(self, data: Any) -> bool:
        """Whether the script's last returned value is Lua ``true`` (nothing else counts)."""
        passed, _ = self._execute(data, "truth")
        return passed is True

    def run(self, data: Any) -> Any:
        """The script's last returned value as JSON (``nil`` and no value -> ``None``)."""
        kinds, vals = self._execute(data, "json")
        return self._from_lua(kinds, vals)

    def run_table(self, data: Any) -> Any:
        """The script's returned table as JSON (a ``dict`` or a ``list``); any other value is an error."""
        kinds, vals = self._execute(data, "table")
        return self._from_lua(kinds, vals)

    # ------------------------------------------------------------------ internals

    def _execute(self, data: Any, mode: str) -> tuple[object, object]:
        kinds: list[str] = []
        vals: list[object] = []
        _flatten(data, kinds, vals, 0, self.field)
        memory = f"{self.field} failed: the script and its event data need more than " + (
            f"{_size(self.limits.max_memory)} of memory (the sandbox limit)"
        )
        try:
            if kinds[0] in "vn":
                arguments: tuple[object, object] = (None, vals[0] if vals else None)
            else:
                arguments = ("".join(kinds), self._runtime.table_from(vals))
            ok, first, second = self._run(self._chunk, *arguments, mode)
        except _lupa.LuaMemoryError:
            raise LuaError(memory) from None
        except UnicodeEncodeError as exc:
            raise LuaError(
                f"{self.field}: the event data holds a string that is not valid Unicode: {exc}"
            ) from None
        if ok:
            return first, second
        if first == "instructions":
            raise LuaError(
                f"{self.field} failed: it ran more than {self.limits.max_instructions} Lua instructions "
                "(the sandbox limit); look for an endless loop"
            )
        if first == "memory":
            raise LuaError(memory)
        if first == "result":
            raise LuaError(f"{self.field} {second}")
        raise LuaError(f"{self.field} failed: {second}")

    def _from_lua(self, kinds: object, vals: object) -> Any:
        try:
            by_index = dict(cast(Any, vals).items())
        except UnicodeDecodeError:
            raise LuaError(f"{self.field} returned a string that is not valid UTF-8") from None
        values = (by_index[i] for i in range(1, len(by_index) + 1))
        return _unflatten(iter(cast(str, kinds)), values)


class LuaScriptFilter:
    """Argo's script filter: passes when the script returns Lua ``true``; ``None`` data passes.

    Any other returned value is ``False``. A failing script raises :class:`LuaError`; Argo treats it
    as an error that ends the filter evaluation even with ``filtersLogicalOperator: or``.
    """

    def __init__(self, script: LuaScript) -> None:
        self.script = script

    @property
    def source(self) -> str:
        return self.script.source

    def evaluate(self, data: Any) -> bool:
        if data is None:
            return True
        return self.script.run_predicate(data)


def compile_script_filter(script: str, *, limits: LuaLimits = DEFAULT_LIMITS) -> LuaScriptFilter:
    """Compile ``filters.script`` once (a syntax error is a :class:`LuaError` now, not per event)."""
    return LuaScriptFilter(LuaScript(script, field="filters.script", limits=limits))
