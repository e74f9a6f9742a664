"""Check emulator responses against the vendors' own OpenAPI descriptions.

The specs live outside the project (``../shared/specs``, or the directory in ``SYNCD_API_SPECS``) and are never
copied in. A response body is validated against the schema the spec declares for (path, method, status), with
``$ref`` resolved against the whole document, using the OpenAPI 3.0 dialect (``nullable`` and friends).

A missing spec directory fails loudly: a conformance suite that silently skips proves nothing.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_FILES = {"jira": "jira-cloud.v3.json", "trello": "trello.v3.json", "asana": "asana.oas.yaml"}
_ROOT = Path(__file__).resolve().parent.parent


def specs_dir() -> Path:
    """Where the vendors' specs are: ``SYNCD_API_SPECS`` or ``../shared/specs`` beside the project."""
    configured = os.environ.get("SYNCD_API_SPECS")
    path = Path(configured) if configured else _ROOT.parent / "shared" / "specs"
    if not path.is_dir():
        raise FileNotFoundError(
            f"API specs not found at {path}: set SYNCD_API_SPECS to the directory holding {sorted(SPEC_FILES.values())}"
        )
    return path


@functools.cache
def load_spec(api: str) -> dict[str, Any]:
    """The parsed spec of one API (cached: the Asana one is 3 MB of YAML)."""
    path = specs_dir() / SPEC_FILES[api]
    with path.open(encoding="utf-8") as handle:
        if path.suffix == ".json":
            raw: Any = json.load(handle)
        else:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            raw = yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader, chosen for speed
    spec: dict[str, Any] = _normalise(raw)
    return spec


def _normalise(node: Any) -> Any:
    """Make the spec mean what its authors meant, for a JSON Schema validator.

    YAML reads ``200:`` as an integer key; JSON pointers (and JSON specs) need strings. And OAS 3.0's
    ``nullable: true`` only takes effect beside a ``type``; the vendors also put it beside ``allOf``/``$ref`` or
    inside one member of an ``allOf`` (Asana's task ``assignee``, ``parent``), where they mean "this reference,
    or null": say that explicitly.
    """
    if isinstance(node, list):
        return [_normalise(value) for value in node]
    if not isinstance(node, dict):
        return node
    result = {str(key): _normalise(value) for key, value in node.items()}
    members = result.get("allOf")
    if isinstance(members, list) and any(isinstance(m, dict) and m.get("nullable") is True for m in members):
        # `allOf: [{$ref: X}, {nullable: true, ...}]`: every member must hold, so the nullable one alone cannot
        # admit null; the authors mean "X or null".
        result["allOf"] = [
            {k: v for k, v in m.items() if k != "nullable"} if isinstance(m, dict) else m for m in members
        ]
        result["nullable"] = True
    # Beside a `$ref` every other keyword is ignored (OAS 3.0), `type` included: null must be admitted explicitly.
    composite = "$ref" in result or ("type" not in result and {"allOf", "oneOf", "anyOf"} & set(result))
    if result.get("nullable") is True and composite:
        inner = {key: value for key, value in result.items() if key != "nullable"}
        return {"anyOf": [{"enum": [None]}, inner]}
    return result


@functools.cache
def _registry(api: str) -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(load_spec(api), default_specification=DRAFT4)
    registry: Registry[Any] = Registry().with_resource(_uri(api), resource)
    return registry


def _uri(api: str) -> str:
    return f"urn:syncd-spec:{api}"


def _pointer(*parts: str) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def _deref(spec: dict[str, Any], node: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Follow a local ``$ref`` chain; returns the node and the pointer it was found at (None if inline)."""
    pointer: str | None = None
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, not {ref}")
        pointer = ref[1:]
        target: Any = spec
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node, pointer


def response_schema_pointer(api: str, method: str, path: str, status: int) -> str:
    """The JSON pointer (into the spec) of the schema of one documented response."""
    spec = load_spec(api)
    try:
        operation = spec["paths"][path][method.lower()]
    except KeyError:
        raise AssertionError(f"{api} spec documents no {method.upper()} {path}") from None
    responses = operation["responses"]
    key = str(status) if str(status) in responses else "default"
    if key not in responses:
        raise AssertionError(f"{api} spec documents no {status} answer for {method.upper()} {path}")
    response, ref_pointer = _deref(spec, responses[key])
    base = ref_pointer or _pointer("paths", path, method.lower(), "responses", key)
    content = response.get("content", {})
    media = next((m for m in content if m.startswith("application/json")), None)
    if media is None or "schema" not in content[media]:
        raise AssertionError(f"{api} spec gives no JSON schema for {status} of {method.upper()} {path}")
    return base + _pointer("content", media, "schema")


def assert_conforms(api: str, method: str, path: str, status: int, body: object) -> None:
    """Assert that ``body`` is what the vendor's spec says ``method path`` answers with ``status``."""
    pointer = response_schema_pointer(api, method, path, status)
    validator = OAS30Validator({"$ref": f"{_uri(api)}#{pointer}"}, registry=_registry(api))
    errors = sorted(validator.iter_errors(body), key=lambda error: list(error.absolute_path))
    if errors:
        lines = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:20]]
        raise AssertionError(
            f"{api} {method.upper()} {path} -> {status} does not match the spec:\n  " + "\n  ".join(lines)
        )


__all__ = ["ValidationError", "assert_conforms", "load_spec", "response_schema_pointer", "specs_dir"]
