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
  refused, and so are metatables with ``__gc`` or ``__close`` (Lua runs those outside the
  instruction budget). ``math.random`` is kept (sampling filters use it): it is the only
  non-deterministic function.
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

Each :class:`LuaScript` owns one Lua runtime (about 50 KiB) and compiles its chunk once; a call
flattens the data (one crossing into Lua), runs the chunk and encodes the result as JSON text in
Lua, under the same limits (one crossing back). Calls on one script are serialized by a lock, so
sharing a script between threads is safe but not parallel; the engine is single-threaded anyway.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any, Final, cast

import lupa.lua54 as _lupa
import orjson

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
local max_steps, hook_every, MAX_DEPTH, MAX_HOLES, limit_memory = ...
local debug_sethook, debug_setupvalue = debug.sethook, debug.setupvalue
local debug_getmetatable = debug.getmetatable
local co_create, co_resume = coroutine.create, coroutine.resume
local load, pcall, xpcall, error = load, pcall, xpcall, error
local type, next, select, tostring = type, next, select, tostring
local setmetatable, getmetatable, rawget = setmetatable, getmetatable, rawget
local string_format, string_byte = string.format, string.byte
local string_gsub, string_find = string.gsub, string.find
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

-- After the hook raises the limit error, Lua runs the xpcall message handler with hooks off:
-- the user's handler must not run then.
local function safe_xpcall(f, handler, ...)
  local function guarded(e)
    if exhausted then return e end
    return handler(e)
  end
  return rethrow_if_exhausted(xpcall(f, guarded, ...))
end

-- Finalizers (__gc) and __close handlers can run with hooks off, outside the budget.
local function safe_setmetatable(t, mt)
  if type(mt) == "table" and (rawget(mt, "__gc") ~= nil or rawget(mt, "__close") ~= nil) then
    error("__gc and __close metamethods are not available in the Lua sandbox", 2)
  end
  return setmetatable(t, mt)
end

local BASE = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  pcall = function(f, ...) return rethrow_if_exhausted(pcall(f, ...)) end,
  xpcall = safe_xpcall,
  select = select, tonumber = tonumber, tostring = tostring, type = type, unpack = table.unpack,
  rawequal = rawequal, rawget = rawget, rawlen = rawlen, rawset = rawset,
  getmetatable = getmetatable, setmetatable = safe_setmetatable,
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

local ESCAPES = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
                 ["\r"] = "\\r", ["\t"] = "\\t"}
local function escape(c) return ESCAPES[c] or string_format("\\u%04x", string_byte(c)) end
local function quote(s) return '"' .. string_gsub(s, '[%c"\\]', escape) .. '"' end
local function by_key(a, b) return a[1] < b[1] end

-- The value as JSON text (objects with sorted keys). Runs inside the budget, in the coroutine.
local function encode(value)
  local parts, n = {}, 0
  local function walk(v, depth)
    local t = type(v)
    if t == "nil" then
      n = n + 1; parts[n] = "null"
    elseif t == "boolean" then
      n = n + 1; parts[n] = v and "true" or "false"
    elseif t == "string" then
      n = n + 1; parts[n] = quote(v)
    elseif t == "number" then
      local text
      if math_type(v) == "integer" then
        text = string_format("%d", v)
      elseif v ~= v or v == huge or v == -huge then
        bad_result("the number " .. tostring(v) .. ", which JSON cannot hold")
      else
        text = string_format("%.17g", v)
        if not string_find(text, "[.eE]") then text = text .. ".0" end  -- 2.0 stays a float
      end
      n = n + 1; parts[n] = text
    elseif t == "table" then
      if depth >= MAX_DEPTH then
        bad_result("tables nested deeper than " .. MAX_DEPTH .. " levels (a table that contains itself?)")
      end
      local count, ints, maxn = 0, 0, 0
      for k in next, v do
        count = count + 1
        if math_type(k) == "integer" and k > 0 then
          ints = ints + 1
          if k > maxn then maxn = k end
        end
      end
      local mt = debug_getmetatable(v)
      local marked = type(mt) == "table" and rawget(mt, "__is_array") == true
      if marked or (count > 0 and ints == count and maxn == count) then
        if maxn - ints > MAX_HOLES then
          bad_result(string_format("an array with %d elements but index %d: more than %d holes",
                                   ints, maxn, MAX_HOLES))
        end
        n = n + 1; parts[n] = "["
        for i = 1, maxn do
          if i > 1 then n = n + 1; parts[n] = "," end
          walk(rawget(v, i), depth + 1)
        end
        n = n + 1; parts[n] = "]"
      else
        local members, m = {}, 0
        for k, x in next, v do
          m = m + 1; members[m] = {key_text(k), x}
        end
        table_sort(members, by_key)
        n = n + 1; parts[n] = "{"
        for i = 1, m do
          if i > 1 then n = n + 1; parts[n] = "," end
          n = n + 1; parts[n] = quote(members[i][1])
          n = n + 1; parts[n] = ":"
          walk(members[i][2], depth + 1)
        end
        n = n + 1; parts[n] = "}"
      end
    else
      bad_result(a_type(v) .. ", which JSON cannot hold")
    end
  end
  walk(value, 0)
  return table_concat(parts, "", 1, n)
end

-- What the caller wants from the script's returned values (the last one counts):
-- TRUTH: whether it is `true`; JSON: it as JSON text; TABLE: the same, and it must be a table.
local TRUTH, JSON, TABLE = 0, 1, 2
local function shape(mode, ...)
  local n = select("#", ...)
  local last = nil
  if n > 0 then last = (select(n, ...)) end
  if mode == TRUTH then return last == true end
  if mode == TABLE and type(last) ~= "table" then
    error({[RESULT] = "must return a Lua table, it returned " .. a_type(last)}, 0)
  end
  return encode(last)
end

-- The body of the coroutine: rebuild the event, run the chunk in a fresh environment, shape.
local function body(chunk, kinds, vals, mode)
  local event = vals
  if kinds ~= nil then event = unflatten(kinds, vals) end
  debug_setupvalue(chunk, 1, new_env(event))
  return shape(mode, chunk())
end

---------------------------------------------------------------- one call
local function finish(chunk, ok, ...)
  limit_memory(false)
  debug_setupvalue(chunk, 1, nil)
  if ok then return true, ..., nil end
  local err = ...
  if exhausted then return false, "instructions", nil end
  if err == "not enough memory" then return false, "memory", nil end
  local kind = type(err)
  if kind == "string" or kind == "number" then return false, "error", err end
  if kind == "table" and rawget(err, RESULT) ~= nil then return false, "result", rawget(err, RESULT) end
  return false, "error", "(error object is " .. a_type(err) .. " value)"
end

-- Everything that runs the script's code or holds its data runs in a coroutine of its own (the
-- count hook belongs to it) with the memory limit on (a memory error there is caught by resume).
local function run(chunk, kinds, vals, mode)
  exhausted, steps_left = false, max_steps
  local co = co_create(body)
  debug_sethook(co, hook, "", hook_every)
  limit_memory(true)
  return finish(chunk, co_resume(co, chunk, kinds, vals, mode))
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


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n} bytes"


class _MemoryLimit:
    """Switches the runtime's memory limit on and off; the Lua side calls it around the script.

    Outside the script the limit is off: lupa converts values outside a protected call, where an
    allocation failure would abort the whole process (Lua "panic"). The Lua side holds this object,
    so the runtime is reached through it and :meth:`detach` breaks the cycle
    (runtime -> Lua -> this -> runtime) when the owning :class:`LuaScript` goes away.
    """

    def __init__(self, runtime: Any, limit: int) -> None:
        self.runtime: Any = runtime
        self.limit = limit

    def __call__(self, on: bool) -> None:
        self.runtime.set_max_memory(self.limit if on else 0)

    def detach(self) -> None:
        self.runtime = None


_TRUTH, _JSON, _TABLE = 0, 1, 2  # what ``run`` in the bootstrap returns (see ``shape`` there)


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
        self._lock = threading.Lock()  # one call at a time: the memory switch is per runtime
        switch = _MemoryLimit(self._runtime, limits.max_memory)
        weakref.finalize(self, switch.detach)
        steps = -(-limits.max_instructions // _HOOK_EVERY)
        compile_chunk, self._run = self._runtime.execute(
            _BOOTSTRAP, steps, _HOOK_EVERY, _MAX_DEPTH, _MAX_HOLES, switch
        )
        switch(False)
        ok, chunk = compile_chunk(source)
        if not ok:
            raise LuaError(f"{field} is not valid {LUA_VERSION}: {chunk}")
        self._chunk = chunk

    def __repr__(self) -> str:
        return f"LuaScript(field={self.field!r}, source={self.source!r})"

    def run_predicate(self, data: Any) -> bool:
        """Whether the script's last returned value is Lua ``true`` (nothing else counts)."""
        return self._execute(data, _TRUTH) is True

    def run(self, data: Any) -> Any:
        """The script's last returned value as JSON (``nil`` and no value -> ``None``)."""
        return self._parse(self._execute(data, _JSON))

    def run_table(self, data: Any) -> Any:
        """The script's returned table as JSON (a ``dict`` or a ``list``); any other value is an error."""
        return self._parse(self._execute(data, _TABLE))

    # ------------------------------------------------------------------ internals

    def _execute(self, data: Any, mode: int) -> object:
        kinds: list[str] = []
        vals: list[object] = []
        _flatten(data, kinds, vals, 0, self.field)
        memory = f"{self.field} failed: the script and its event data need more than " + (
            f"{_size(self.limits.max_memory)} of memory (the sandbox limit)"
        )
        with self._lock:
            ok, first, second = self._call_lua(kinds, vals, mode, memory)
        if ok:
            return first
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

    def _call_lua(
        self, kinds: list[str], vals: list[object], mode: int, memory: str
    ) -> tuple[bool, object, object]:
        result: tuple[bool, object, object]
        try:
            if kinds[0] in "vn":
                result = self._run(self._chunk, None, vals[0] if vals else None, mode)
            else:
                result = self._run(self._chunk, "".join(kinds), self._runtime.table_from(vals), mode)
            return result
        except _lupa.LuaMemoryError:  # pragma: no cover - the Lua side reports memory errors itself
            raise LuaError(memory) from None
        except _lupa.LuaError as exc:  # pragma: no cover - the Lua side catches the script's errors
            raise LuaError(f"{self.field} failed: {exc}") from None
        except UnicodeEncodeError as exc:
            raise LuaError(
                f"{self.field}: the event data holds a string that is not valid Unicode: {exc}"
            ) from None
        except UnicodeDecodeError:
            raise LuaError(f"{self.field} returned a string that is not valid UTF-8") from None
        finally:
            self._runtime.set_max_memory(0)

    @staticmethod
    def _parse(text: object) -> Any:
        return orjson.loads(cast(str, text))


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
