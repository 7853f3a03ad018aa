"""`facegan serve`'s API, in process: a real server on a free port, real HTTP requests."""

from __future__ import annotations

import base64
import collections
import http.client
import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

import facegan
from conftest import serving_in_thread
from facegan.cli import main
from facegan.seeds import MAX_SEED
from facegan.serve import FaceApp, make_server


@contextmanager
def _serving(run_dir):
    """A FaceServer for `run_dir` on a free loopback port, answering in a thread."""
    app = FaceApp(facegan.load(run_dir))
    app.warm_up()
    with serving_in_thread(make_server("127.0.0.1", 0, app)) as server:
        yield server


@pytest.fixture(scope="module")
def plain(tiny_run):
    with _serving(tiny_run) as server:
        yield server


@pytest.fixture(scope="module")
def conditional(tiny_conditional_run):
    with _serving(tiny_conditional_run) as server:
        yield server


def _get(server, target: str, method: str = "GET", headers: dict | None = None):
    """(status, headers, body) of one raw request: the target is sent exactly as written."""
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request(method, target, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _json(server, target: str):
    status, headers, body = _get(server, target)
    assert headers["Content-Type"].startswith("application/json"), headers
    return status, json.loads(body)


def _decode(data_url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    return _pixels(base64.b64decode(data_url[len(prefix) :]))


def _pixels(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return np.asarray(image)


# ------------------------------------------------------------------ the page


def test_the_page_and_its_files_are_served(plain):
    status, headers, body = _get(plain, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"/static/app.js" in body and b"/static/style.css" in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for path, kind in (
        ("/static/app.js", "text/javascript"),
        ("/static/style.css", "text/css"),
        ("/index.html", "text/html"),
    ):
        status, headers, body = _get(plain, path)
        assert status == 200 and headers["Content-Type"].startswith(kind) and body


# ------------------------------------------------------------------ info


def test_info_describes_the_run(plain):
    status, info = _json(plain, "/api/info")
    assert status == 200
    assert info["run"] == "run" and info["step"] == 2
    assert (info["arch"], info["resolution"], info["latent_dim"]) == ("dcgan", 16, 16)
    assert info["conditional"] is False and info["attributes"] == []
    assert info["limits"]["faces"] == 64 and info["limits"]["frames"] == 120
    assert info["limits"]["seed"] == MAX_SEED


def test_info_lists_the_attributes_and_their_classes(conditional):
    _, info = _json(conditional, "/api/info")
    assert info["conditional"] is True
    attributes = {a["name"]: a for a in info["attributes"]}
    assert list(attributes) == ["age", "gender"]
    assert attributes["age"]["binned"] is True
    assert attributes["age"]["classes"] == [
        {"value": "0", "label": "0–30"},
        {"value": "30", "label": "30–120"},
    ]
    assert [c["value"] for c in attributes["gender"]["classes"]] == ["0", "1"]
    assert attributes["gender"]["param"] == "gender"


# ------------------------------------------------------------------ faces


def test_faces_are_pngs_of_the_run_resolution_one_per_seed(plain):
    status, data = _json(plain, "/api/faces?seed=5&n=4")
    assert status == 200 and data["seeds"] == [5, 6, 7, 8] and data["labels"] is None
    images = [_decode(url) for url in data["images"]]
    assert len(images) == 4 and all(image.shape == (16, 16, 3) for image in images)
    _, resized = _json(plain, "/api/faces?seed=5&n=1&size=40")
    assert _decode(resized["images"][0]).shape == (40, 40, 3)


def test_face_png_is_the_face_generate_makes_for_that_seed(plain):
    status, headers, body = _get(plain, "/api/face.png?seed=3")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert "seed0003.png" in headers["Content-Disposition"]
    expected = plain.app.run.generate(1, seed=3)[0]  # what `facegan generate --seed 3` draws first
    np.testing.assert_array_equal(_pixels(body), expected)
    _, faces = _json(plain, "/api/faces?seed=3&n=2")
    np.testing.assert_array_equal(_decode(faces["images"][0]), expected)
    status, _, big = _get(plain, "/api/face.png?seed=3&size=128")
    assert status == 200 and _pixels(big).shape == (128, 128, 3)


def test_the_same_seed_gives_the_same_bytes_and_another_seed_another_face(plain):
    first = _get(plain, "/api/face.png?seed=11")[2]
    assert _get(plain, "/api/face.png?seed=11")[2] == first
    other = _get(plain, "/api/face.png?seed=12")[2]
    assert not np.array_equal(_pixels(first), _pixels(other))


def test_the_largest_seed_works(plain):
    status, _, body = _get(plain, f"/api/face.png?seed={MAX_SEED}")
    assert status == 200 and _pixels(body).shape == (16, 16, 3)


def test_truncation_zero_gives_every_seed_the_average_face(plain):
    _, full = _json(plain, "/api/faces?seed=0&n=2&truncation=1")
    _, none = _json(plain, "/api/faces?seed=0&n=2&truncation=0")
    full_a, full_b = (_decode(url) for url in full["images"])
    none_a, none_b = (_decode(url) for url in none["images"])
    assert not np.array_equal(full_a, full_b)
    np.testing.assert_array_equal(none_a, none_b)  # dcgan: z * 0 for every seed
    assert none["truncation"] == 0.0


# ------------------------------------------------------------------ labels


def test_labels_change_the_face_and_are_reported(conditional):
    run = conditional.app.run
    _, women = _json(conditional, "/api/faces?seed=4&n=3&gender=1&age=45")
    _, men = _json(conditional, "/api/faces?seed=4&n=3&gender=0&age=45")
    assert women["labels"] == [{"age": "30–120", "gender": "1"}] * 3
    assert men["labels"][0]["gender"] == "0"
    assert not np.array_equal(_decode(women["images"][0]), _decode(men["images"][0]))
    expected = run.generate(1, seed=4, labels={"gender": "1", "age": "45"})[0]
    np.testing.assert_array_equal(_decode(women["images"][0]), expected)
    # an attribute left free ("random", or absent) is drawn from the seed, as generate does
    _, free = _json(conditional, "/api/faces?seed=4&n=1&gender=random")
    assert free["labels"][0] == {
        "age": ["0–30", "30–120"][run.labels_for(1, 4)[0, 0]],
        "gender": ["0", "1"][run.labels_for(1, 4)[0, 1]],
    }
    np.testing.assert_array_equal(_decode(free["images"][0]), run.generate(1, seed=4)[0])


# ------------------------------------------------------------------ interpolation


def test_interpolation_runs_from_one_seed_to_the_other(plain):
    status, data = _json(plain, "/api/interpolate?from=1&to=2&frames=5")
    assert status == 200 and data["frames"] == 5 and len(data["images"]) == 5
    frames = [_decode(url).astype(int) for url in data["images"]]
    ends = plain.app.run.generate_from_latents(plain.app.run.latents_for_seeds([1, 2]))
    # slerp's ends are the seeds' latents (to float rounding)
    assert np.abs(frames[0] - ends[0]).max() <= 1 and np.abs(frames[-1] - ends[1]).max() <= 1
    assert not np.array_equal(frames[1], frames[3])


def test_interpolation_holds_the_labels(conditional):
    _, data = _json(conditional, "/api/interpolate?from=3&to=9&frames=3&gender=1")
    assert data["labels"]["gender"] == "1"
    start = conditional.app.run.generate(1, seed=3, labels={"gender": "1"})[0].astype(int)
    assert np.abs(_decode(data["images"][0]).astype(int) - start).max() <= 1


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "target, message",
    [
        ("/api/faces?n=65", "`n` must be an integer from 1 to 64; received '65'"),
        ("/api/faces?n=0", "`n` must be an integer from 1 to 64"),
        ("/api/faces?seed=-1", "`seed` must be an integer from 0 to 9223372036854775807"),
        ("/api/faces?seed=1.5", "`seed` must be an integer"),
        ("/api/faces?seed=abc", "received 'abc'"),
        (f"/api/face.png?seed={MAX_SEED + 1}", "`seed` must be an integer from 0"),
        (f"/api/faces?seed={MAX_SEED}&n=2", "pass the largest seed"),
        ("/api/faces?truncation=1.5", "`truncation` must be a number from 0 to 1; received '1.5'"),
        ("/api/faces?truncation=-0.1", "`truncation` must be a number from 0 to 1"),
        ("/api/faces?truncation=nan", "`truncation` must be a number from 0 to 1"),
        ("/api/face.png?truncation=", "`truncation` must be a number"),
        ("/api/face.png?size=5000", "`size` must be an integer from 8 to 1024"),
        ("/api/faces?size=1024", "`size` must be an integer from 8 to 256"),
        ("/api/interpolate?from=1&to=2&frames=121", "`frames` must be an integer from 2 to 120"),
        ("/api/interpolate?from=1&to=2&frames=1", "`frames` must be an integer from 2 to 120"),
        ("/api/interpolate?to=2", "`from` is required"),
        ("/api/faces?colour=red", "unknown parameter 'colour' for /api/faces; it takes seed, n"),
        ("/api/face.png?n=4", "unknown parameter 'n' for /api/face.png"),
        ("/api/info?seed=1", "unknown parameter 'seed' for /api/info; it takes no parameters"),
        ("/api/faces?seed=1&seed=2", "parameter `seed` is given twice"),
        ("/api/faces?gender=1", "unknown parameter 'gender'"),  # the plain run has no labels
        ("/api/faces?seed", "the query string is malformed"),
    ],
)
def test_bad_parameters_are_400_with_a_message(plain, target, message):
    status, body = _json(plain, target)
    assert status == 400 and message in body["error"], body


@pytest.mark.parametrize(
    "target, message",
    [
        ("/api/faces?gender=7", "gender must be one of 0, 1"),
        ("/api/face.png?age=500", "age must be a number from 0 to below 120"),
        ("/api/interpolate?from=0&to=1&age=old", "age must be a number"),
        (
            "/api/faces?race=1",
            "unknown parameter 'race' for /api/faces; it takes seed, n, "
            "truncation, size, age, gender",
        ),
    ],
)
def test_unknown_label_values_are_400_with_what_is_allowed(conditional, target, message):
    status, body = _json(conditional, target)
    assert status == 400 and message in body["error"], body


# ------------------------------------------------------------------ nothing else


@pytest.mark.parametrize(
    "target",
    [
        "/static/../server.py",
        "/static/..%2fserver.py",
        "/static/%2e%2e/server.py",
        "/../../../../etc/passwd",
        "/static/../../../../etc/passwd",
        "/static//etc/passwd",
        "/etc/passwd",
        "/static/",
        "/static",
        "/static/app.js/",
        "/static/app.js/../server.py",
        "/server.py",
        "/__init__.py",
        "/static/APP.JS",
        "/static/%61pp.js",
        "//etc/passwd",
        "/api",
        "/api/",
        "/api/nope",
        "/api/info/",
        "/api/../static/app.js",
        "/favicon.ico",
    ],
)
def test_anything_but_the_page_and_the_api_is_404(plain, target):
    status, headers, body = _get(plain, target)
    assert status == 404 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["error"].startswith("nothing at")
    assert b"import" not in body and b"root:" not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_only_get_and_head_are_answered(plain, method):
    status, headers, body = _get(plain, "/api/info", method=method)
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert method in json.loads(body)["error"]


def test_an_unknown_method_is_a_json_error_too(plain):
    status, _, body = _get(plain, "/", method="BREW")
    assert status == 501 and "error" in json.loads(body)


def test_head_sends_the_headers_without_a_body(plain):
    status, headers, body = _get(plain, "/api/face.png?seed=1", method="HEAD")
    assert status == 200 and headers["Content-Type"] == "image/png" and body == b""
    assert int(headers["Content-Length"]) > 0


def test_requests_for_another_host_name_are_refused(plain):
    """DNS rebinding: a page on evil.example that resolves its name to 127.0.0.1."""
    status, _, body = _get(plain, "/api/info", headers={"Host": "evil.example:8000"})
    assert status == 403 and "localhost" in json.loads(body)["error"]
    assert _get(plain, "/api/info", headers={"Host": "localhost:8000"})[0] == 200


def test_urllib_sees_clear_errors(plain):
    """What a script using the API gets: an HTTPError whose body says what was wrong."""
    host, port = plain.server_address[:2]
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"http://{host}:{port}/api/faces?n=100", timeout=30)
    assert error.value.code == 400 and "`n`" in json.loads(error.value.read())["error"]


# ------------------------------------------------------------------ the command


def test_serve_prints_the_url_and_ctrl_c_stops_it(tiny_run, capsys, monkeypatch):
    from facegan.serve.server import FaceServer

    seen = {}

    def interrupted(self, poll_interval=0.5):
        seen["address"] = self.server_address
        seen["app"] = self.app
        raise KeyboardInterrupt

    monkeypatch.setattr(FaceServer, "serve_forever", interrupted)
    code = main(["serve", "--run", str(tiny_run), "--port", "0"])
    out, err = capsys.readouterr()
    host, port = seen["address"][:2]
    assert code == 130 and err.endswith("facegan: interrupted\n")
    assert f"http://127.0.0.1:{port}/" in out and seen["app"] is not None
    with socket.socket() as probe:  # the port was given back
        probe.bind((host, port))


def test_a_port_in_use_is_a_one_line_error(tiny_run, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["serve", "--run", str(tiny_run), "--port", str(port)])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"facegan: error: port {port} on 127.0.0.1 is in use")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--run", "no-such-run"], "run directory 'no-such-run' does not exist"),
        (["--run", "x", "--port", "70000"], "must be a port from 0 to 65535"),
    ],
)
def test_serve_user_errors_exit_2(argv, message, capsys):
    try:
        code = main(["serve", *argv])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    _, err = capsys.readouterr()
    assert code == 2 and message in err and err.startswith("facegan: error: ")


def test_200_simultaneous_requests_all_get_an_http_answer(plain):
    """Every request is answered: 200, or 503 with Retry-After once the queue is full."""
    host, port = plain.server_address[:2]
    start = threading.Barrier(200)
    answers: list = [None] * 200

    def ask(i: int) -> None:
        start.wait()
        try:
            connection = http.client.HTTPConnection(host, port, timeout=120)
            connection.request("GET", f"/api/faces?seed={i}&n=4")
            response = connection.getresponse()
            body = response.read()
            answers[i] = (response.status, response.getheader("Retry-After"), len(body))
            connection.close()
        except Exception as err:  # a reset or a timeout: no HTTP answer
            answers[i] = ("no answer", type(err).__name__, 0)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    statuses = collections.Counter(a[0] for a in answers)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] >= plain.max_in_flight  # the queue's worth at least
    assert all(a[1] == "1" for a in answers if a[0] == 503)


def test_idle_and_half_sent_connections_are_closed(plain, monkeypatch):
    monkeypatch.setattr(plain, "request_timeout", 0.5)
    host, port = plain.server_address[:2]
    for sent in (b"", b"GET /api/info HTTP/1.1\r\nHo"):
        with socket.create_connection((host, port), timeout=10) as client:
            client.sendall(sent)
            began = time.monotonic()
            assert client.recv(1024) == b""  # closed by the server, not by our timeout
            assert time.monotonic() - began < 5
