"""Plotly's JavaScript served from our own static files, straight out of the installed plotly package.

The plotly Python package ships the matching plotly.min.js (licence header included); this finder
exposes it as ``pages/vendor/plotly.min.js`` so collectstatic and WhiteNoise serve it like our own
files, always the version requirements.txt pins, and nothing is ever loaded from a CDN.
"""

from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

PREFIX = "pages/vendor"
FILES = ("plotly.min.js",)


def plotly_package_data() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data"


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=str(plotly_package_data()))
        self.storage.prefix = PREFIX  # collectstatic copies each file to PREFIX/<name>

    def check(self, **kwargs):
        return [
            Error(f"{name} is missing from the installed plotly package ({self.storage.location}).",
                  hint="Reinstall plotly (requirements.txt).", id="pages.E001")
            for name in FILES if not self.storage.exists(name)
        ]

    def find(self, path, find_all=False, **kwargs):
        name = path.removeprefix(f"{PREFIX}/")
        found = self.storage.path(name) if name in FILES and path != name and self.storage.exists(name) else None
        if find_all:
            return [found] if found else []
        return found

    def list(self, ignore_patterns):
        for name in FILES:
            yield name, self.storage
