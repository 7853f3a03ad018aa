"""`facegan serve`: a local web page (and a JSON/PNG API) for browsing a trained run.

    facegan serve --run runs/faces          # then open http://127.0.0.1:8000/

`app` answers the page's and the API's requests (see its docstring for the
API); `server` is the HTTP side. Importing this package loads no TensorFlow.
"""

from facegan.serve.app import FaceApp, ServeError
from facegan.serve.server import FaceServer, make_server, serve

__all__ = ["FaceApp", "FaceServer", "ServeError", "make_server", "serve"]
