"""`facegan serve`: a local web page (and a JSON/PNG API) for browsing a trained run.

    facegan serve --run runs/faces          # then open http://127.0.0.1:8000/

See `facegan.serve.server` for the API. Importing this package loads no TensorFlow.
"""

from facegan.serve.server import FaceApp, FaceServer, ServeError, make_server, serve

__all__ = ["FaceApp", "FaceServer", "ServeError", "make_server", "serve"]
