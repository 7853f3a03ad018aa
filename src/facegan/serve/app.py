"""The application behind `facegan serve`: the page's files and the JSON/PNG API.

The page (static/index.html, app.js and style.css; no build step) shows a grid
of faces by seed, an enlarged face with a PNG download, a truncation slider,
one select per label attribute of a conditional run, and a looping
interpolation between two seeds. It reads everything from this API:

    GET /api/info                         the run: name, step, arch, resolution,
                                          latent_dim, label attributes and their
                                          classes, the limits below
    GET /api/faces?seed=S&n=N             JSON: the faces of seeds S .. S+N-1 as
                                          PNG data URLs, with their labels
    GET /api/face.png?seed=S&size=P       one face as image/png, P x P pixels
    GET /api/interpolate?from=A&to=B&frames=F
                                          JSON: F frames from seed A's face to B's

Each image endpoint also takes `truncation` (0 to 1, default 1), `size` (pixels,
default the run's resolution) and, for a conditional run, one parameter per
attribute: a value the attribute allows (as `facegan generate --label` takes
it) or `random`. The face of seed s is `run.generate(1, seed=s)`'s image,
labels included, so a face found on the page is one command away. A wrong
parameter, an unknown one or one given twice is answered 400 with
{"error": "..."}; any path but the page's and the API's 404.

Only GET and HEAD are answered. The page's files are read into memory at start
and looked up by exact path, never joined to a folder, so no request path can
reach another file. One lock serialises generation: the server's threads share
one TensorFlow model.

This module knows nothing of sockets (`facegan.serve.server` is the HTTP side)
and imports no TensorFlow itself: it is handed a loaded run.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np

from facegan.artifacts.images import png_bytes
from facegan.errors import UserError
from facegan.seeds import MAX_SEED, seed_file_name

STATIC_DIR = Path(__file__).resolve().parent / "static"

MAX_FACES = 64  # faces in one /api/faces answer
MAX_FRAMES = 120  # frames in one /api/interpolate answer
MAX_SIZE = 1024  # pixels of /api/face.png
MAX_BATCH_SIZE = 256  # pixels of each image of an answer that holds many
DEFAULT_FACES = 16
DEFAULT_FRAMES = 24
RANDOM = "random"  # an attribute left free: drawn from the seed

_IMAGE_PARAMS = ("truncation", "size")
_ENDPOINT_PARAMS = {
    "/api/info": (),
    "/api/faces": ("seed", "n") + _IMAGE_PARAMS,
    "/api/face.png": ("seed",) + _IMAGE_PARAMS,
    "/api/interpolate": ("from", "to", "frames") + _IMAGE_PARAMS,
}
_RESERVED = {name for names in _ENDPOINT_PARAMS.values() for name in names}

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
_INTEGER = re.compile(r"[0-9]{1,20}")
_DECIMAL = re.compile(r"(?:[0-9]{1,20}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})(?:[eE][-+]?[0-9]{1,3})?")


class ServeError(UserError):
    """`facegan serve` cannot start (a port in use, a host that does not resolve)."""


class BadRequest(Exception):
    """A request the API refuses; answered 400 with {"error": message}."""


@dataclasses.dataclass(frozen=True)
class Response:
    """What the handler sends: a status, a body and its type, extra headers."""

    status: int
    body: bytes
    content_type: str
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


def json_response(payload: object, status: int = 200, **headers: str) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return Response(
        status, body, "application/json; charset=utf-8", {"Cache-Control": "no-store", **headers}
    )


def error_response(status: int, message: str, **headers: str) -> Response:
    return json_response({"error": message}, status, **headers)


# ------------------------------------------------------------------ the application


class FaceApp:
    """Answers the page's and the API's requests for one run; knows nothing of sockets.

    Args:
        run: a loaded run (`facegan.load(dir)`), with at least one checkpoint.
    """

    def __init__(self, run):
        self.run = run
        model = run.config.model
        self.schema = None
        if model.conditional:
            from facegan.data.labels import schema_from_config

            self.schema = schema_from_config(run.config.data, model.label_classes)
        # query key -> attribute; an attribute named like a parameter goes by `label.NAME`
        names = self.schema.names if self.schema else []
        self.label_params = {
            (f"label.{name}" if name in _RESERVED else name): name for name in names
        }
        self._lock = threading.Lock()
        self._static = _load_static()
        self._routes: dict[str, Callable[[dict[str, str]], Response]] = {
            "/api/info": self.info,
            "/api/faces": self.faces,
            "/api/face.png": self.face_png,
            "/api/interpolate": self.interpolate,
        }

    def warm_up(self) -> None:
        """Restores the generator and traces sampling now: the first page load is then
        quick, and a run without a usable checkpoint fails at start, not on a request."""
        self._generate([0], {}, 1.0)

    def respond(self, target: str) -> Response:
        """The response to GET `target` (the request's path and query string)."""
        path, _, query = target.partition("?")
        static = self._static.get(path)
        if static is not None:
            return static
        route = self._routes.get(path)
        if route is None:
            return error_response(404, f"nothing at {_show(path, 80)}")
        try:
            return route(self._parse_query(path, query))
        except BadRequest as err:
            return error_response(400, str(err))

    # -------------------------------------------------------------- endpoints

    def info(self, params: dict[str, str]) -> Response:
        model = self.run.config.model
        return json_response(
            {
                "run": self.run.name,
                "step": self.run.step,
                "arch": model.arch,
                "resolution": model.resolution,
                "channels": model.channels,
                "latent_dim": model.latent_dim,
                "conditional": model.conditional,
                "attributes": [
                    self._describe_attribute(param, name)
                    for param, name in self.label_params.items()
                ],
                "limits": {
                    "faces": MAX_FACES,
                    "frames": MAX_FRAMES,
                    "seed": MAX_SEED,
                    "size": MAX_SIZE,
                    "batch_size": MAX_BATCH_SIZE,
                },
                "defaults": {"faces": DEFAULT_FACES, "frames": DEFAULT_FRAMES, "truncation": 1.0},
            }
        )

    def faces(self, params: dict[str, str]) -> Response:
        seed = _integer(params, "seed", 0, 0, MAX_SEED)
        count = _integer(params, "n", DEFAULT_FACES, 1, MAX_FACES)
        if seed + count - 1 > MAX_SEED:
            raise BadRequest(
                f"seeds {seed} to {seed + count - 1} pass the largest seed, "
                f"{MAX_SEED}; lower `seed` or `n`"
            )
        truncation = _truncation(params)
        size = _integer(params, "size", self.run.config.model.resolution, 8, MAX_BATCH_SIZE)
        request = self._label_request(params)
        seeds = list(range(seed, seed + count))
        images, labels = self._generate(seeds, request, truncation)
        return json_response(
            {
                "seeds": seeds,
                "truncation": truncation,
                "size": size,
                "labels": self._describe_labels(labels),
                "images": [_data_url(png_bytes(image, size)) for image in images],
            }
        )

    def face_png(self, params: dict[str, str]) -> Response:
        seed = _integer(params, "seed", 0, 0, MAX_SEED)
        truncation = _truncation(params)
        size = _integer(params, "size", self.run.config.model.resolution, 8, MAX_SIZE)
        images, _ = self._generate([seed], self._label_request(params), truncation)
        name = re.sub(r"[^A-Za-z0-9._-]", "-", self.run.name)
        return Response(
            200,
            png_bytes(images[0], size),
            "image/png",
            {
                "Cache-Control": "no-store",
                "Content-Disposition": f'inline; filename="{name}-{seed_file_name(seed)}"',
            },
        )

    def interpolate(self, params: dict[str, str]) -> Response:
        start = _integer(params, "from", None, 0, MAX_SEED)
        end = _integer(params, "to", None, 0, MAX_SEED)
        frames = _integer(params, "frames", DEFAULT_FRAMES, 2, MAX_FRAMES)
        truncation = _truncation(params)
        size = _integer(params, "size", self.run.config.model.resolution, 8, MAX_BATCH_SIZE)
        # Seed A's labels for every frame: only the latent moves.
        labels = self._labels([start], self._label_request(params))
        if labels is not None:
            labels = np.repeat(labels, frames, axis=0)
        from facegan.artifacts.animation import walk_latents

        with self._lock:
            # One segment of frames - 1 steps plus its end: both seeds' faces exactly.
            latents = walk_latents(self.run.latents_for_seeds([start, end]), frames - 1)
            images = self.run.generate_from_latents(latents, labels=labels, truncation=truncation)
        described = self._describe_labels(labels)
        return json_response(
            {
                "from": start,
                "to": end,
                "frames": frames,
                "truncation": truncation,
                "size": size,
                "labels": described[0] if described else None,
                "images": [_data_url(png_bytes(image, size)) for image in images],
            }
        )

    # -------------------------------------------------------------- helpers

    def _parse_query(self, path: str, query: str) -> dict[str, str]:
        try:
            pairs = parse_qsl(
                query,
                keep_blank_values=True,
                strict_parsing=bool(query),
                max_num_fields=32,
                errors="strict",
            )
        except ValueError:  # also a UnicodeDecodeError, and too many fields
            raise BadRequest(
                "the query string is malformed: give at most 32 key=value "
                "pairs joined by & (UTF-8, percent-encoded)"
            ) from None
        allowed = list(_ENDPOINT_PARAMS[path])
        if path != "/api/info":
            allowed += list(self.label_params)
        params: dict[str, str] = {}
        for key, value in pairs:
            if key not in allowed:
                takes = ", ".join(allowed) if allowed else "no parameters"
                raise BadRequest(f"unknown parameter {_show(key)} for {path}; it takes {takes}")
            if key in params:
                raise BadRequest(f"parameter `{key}` is given twice")
            params[key] = value
        return params

    def _label_request(self, params: Mapping[str, str]) -> dict[str, str]:
        """{attribute: raw value} of the attributes the request fixes (validated)."""
        request = {}
        for key, name in self.label_params.items():
            value = params.get(key, RANDOM).strip()
            if value and value != RANDOM:
                request[name] = value
        if request:
            try:
                self.schema.encode(request)
            except UserError as err:
                raise BadRequest(f"{err} (or {RANDOM})") from None
        return request

    def _labels(self, seeds: list[int], request: dict[str, str]) -> np.ndarray | None:
        """Class indices [N, A]: seed s's row is `generate(1, seed=s, labels=request)`'s."""
        if self.schema is None:
            return None
        return self.run.labels_for_seeds(seeds, request)

    def _generate(
        self, seeds: list[int], request: dict[str, str], truncation: float
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """uint8 [N, R, R, C] (and the labels used): the face of each seed."""
        labels = self._labels(seeds, request)
        with self._lock:
            latents = self.run.latents_for_seeds(seeds)
            images = self.run.generate_from_latents(latents, labels=labels, truncation=truncation)
        return images, labels

    def _describe_attribute(self, param: str, name: str) -> dict:
        attribute = self.schema.attribute(name)
        classes = []
        for index, label in enumerate(attribute.class_names()):
            value = (
                _number_text(attribute.edges[index])
                if attribute.binned
                else attribute.values[index]
            )
            assert attribute.class_of(value) == index, (name, value, index)
            classes.append({"value": value, "label": _short_label(name, label)})
        return {"name": name, "param": param, "binned": attribute.binned, "classes": classes}

    def _describe_labels(self, labels: np.ndarray | None) -> list[dict[str, str]] | None:
        """Per image, {attribute: readable class}, e.g. {"age": "30–120", "gender": "1"}."""
        if labels is None:
            return None
        names = {
            a.name: [_short_label(a.name, c) for c in a.class_names()]
            for a in self.schema.attributes
        }
        return [
            {name: names[name][int(index)] for name, index in zip(self.schema.names, row)}
            for row in labels
        ]


# ------------------------------------------------------------------ small helpers


def _load_static() -> dict[str, Response]:
    """The page's files by request path, read once (nothing is looked up on disk later)."""
    pages = {}
    for path in sorted(STATIC_DIR.glob("*")):
        if path.is_file() and path.suffix in _CONTENT_TYPES:
            pages[f"/static/{path.name}"] = Response(
                200, path.read_bytes(), _CONTENT_TYPES[path.suffix], {"Cache-Control": "no-cache"}
            )
    if "/static/index.html" not in pages:
        raise ServeError(
            f"the web page's files are missing from this installation of "
            f"facegan ({STATIC_DIR}); reinstall it"
        )
    pages["/"] = pages["/index.html"] = pages.pop("/static/index.html")
    return pages


def _integer(params: Mapping[str, str], key: str, default: int | None, low: int, high: int) -> int:
    text = params.get(key)
    if text is None:
        if default is None:
            raise BadRequest(f"`{key}` is required: an integer from {low} to {high}")
        return default
    if not _INTEGER.fullmatch(text) or not low <= int(text) <= high:
        raise BadRequest(f"`{key}` must be an integer from {low} to {high}; received {_show(text)}")
    return int(text)


def _truncation(params: Mapping[str, str]) -> float:
    text = params.get("truncation")
    if text is None:
        return 1.0
    if not _DECIMAL.fullmatch(text) or not 0.0 <= float(text) <= 1.0:
        raise BadRequest(f"`truncation` must be a number from 0 to 1; received {_show(text)}")
    return float(text)


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _short_label(name: str, class_name: str) -> str:
    """`age 30–120` -> `30–120`: the page shows the attribute's name beside it."""
    prefix = f"{name} "
    return class_name[len(prefix) :] if class_name.startswith(prefix) else class_name


def _number_text(value: float) -> str:
    """A bin edge as a request value: `30`, `2.5`."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _show(text: str, limit: int = 40) -> str:
    """A received value for a message: quoted, cut to `limit` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "…")
